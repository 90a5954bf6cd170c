package transfer

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Problem kinds of a segment.
const (
	ProblemMissing   = "missing"
	ProblemTruncated = "truncated"
	ProblemSize      = "wrong size"
	ProblemChecksum  = "checksum mismatch"
	ProblemForeign   = "from another set"
)

// BadSegment is a segment that cannot be used, with the images that need
// one of its blobs.
type BadSegment struct {
	Name    string
	Path    string // "" when missing
	Problem string
	Detail  string
	Images  []string
}

// Report is the outcome of Verify.
type Report struct {
	Dir      string // where the manifest was found
	Manifest *Manifest
	// Paths maps every good segment to its file.
	Paths map[string]string
	Bad   []BadSegment
	// Gzip lists segments found gzip-compressed (read transparently).
	Gzip []string
}

// OK reports whether every segment is intact.
func (r *Report) OK() bool { return len(r.Bad) == 0 }

// Error names every bad segment, what is wrong and the images affected.
func (r *Report) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "transfer set %s: %d of %d segment(s) unusable:", r.Manifest.SetID, len(r.Bad), len(r.Manifest.Segments))
	for _, s := range r.Bad {
		fmt.Fprintf(&b, "\n  %s: %s", s.Name, s.Problem)
		if s.Detail != "" {
			fmt.Fprintf(&b, " (%s)", s.Detail)
		}
		fmt.Fprintf(&b, "; affects %d image(s)", len(s.Images))
		if len(s.Images) > 0 {
			fmt.Fprintf(&b, ": %s", strings.Join(s.Images, ", "))
		}
	}
	fmt.Fprintf(&b, "\ncopy the segment(s) named above from the source media again (every other segment is intact)")
	return b.String()
}

// Verify finds the manifest in dirs (the first dir holding one), locates
// every segment it lists in any of dirs, in any order, and checks each
// one's size and sha256. The returned error is only for an unreadable
// manifest; bad segments are in the report.
func Verify(dirs []string) (*Report, error) {
	var mdir string
	for _, d := range dirs {
		if HasSet(d) {
			mdir = d
			break
		}
	}
	if mdir == "" {
		return nil, fmt.Errorf("no %s in %s: copy it from the media with the segments", ManifestName, strings.Join(dirs, ", "))
	}
	m, err := ReadManifest(mdir)
	if err != nil {
		return nil, err
	}
	r := &Report{Dir: mdir, Manifest: m, Paths: map[string]string{}}
	cands, unreadable := candidates(dirs)
	// A missing segment is named with every directory looked in (and
	// those that could not be read, e.g. a disk not mounted), so the user
	// knows where it was not found, not only that it was not.
	searched := "looked for in " + strings.Join(dirs, ", ")
	if len(unreadable) > 0 {
		searched += "; could not read " + strings.Join(unreadable, ", ")
	}
	for _, seg := range m.Segments {
		r.checkSegment(seg, cands[seg.Name], searched)
	}
	r.fillImages()
	return r, nil
}

// candidates maps each segment name to the files of that name in dirs,
// and lists the dirs that could not be read (with why).
func candidates(dirs []string) (map[string][]string, []string) {
	out := map[string][]string{}
	var unreadable []string
	for _, d := range dirs {
		entries, err := os.ReadDir(d)
		if err != nil {
			unreadable = append(unreadable, err.Error())
			continue
		}
		for _, e := range entries {
			if segmentRE.MatchString(e.Name()) {
				out[e.Name()] = append(out[e.Name()], filepath.Join(d, e.Name()))
			}
		}
	}
	return out, unreadable
}

// checkSegment picks the first candidate that checks out; otherwise it
// records the most telling problem of the candidates.
func (r *Report) checkSegment(seg Segment, paths []string, searched string) {
	if len(paths) == 0 {
		r.Bad = append(r.Bad, BadSegment{Name: seg.Name, Problem: ProblemMissing, Detail: searched})
		return
	}
	var bad BadSegment
	for _, p := range paths {
		b, gz := checkFile(p, seg, r.Manifest)
		if b == nil {
			r.Paths[seg.Name] = p
			if gz {
				r.Gzip = append(r.Gzip, seg.Name)
			}
			return
		}
		if bad.Name == "" || bad.Problem == ProblemForeign {
			bad = *b
		}
	}
	r.Bad = append(r.Bad, bad)
}

// openSegment opens a segment, transparently decompressing gzip (a
// segment someone compressed on the way is read, not rejected as an
// "invalid tar header").
func openSegment(path string) (io.Reader, func() error, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, false, err
	}
	br := bufio.NewReaderSize(f, 1<<20)
	magic, _ := br.Peek(2)
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, nil, true, fmt.Errorf("segment %s is gzip-compressed but damaged: %w", path, err)
		}
		return zr, f.Close, true, nil
	}
	return br, f.Close, false, nil
}

func checkFile(path string, seg Segment, m *Manifest) (*BadSegment, bool) {
	bad := func(problem, detail string) *BadSegment {
		return &BadSegment{Name: seg.Name, Path: path, Problem: problem, Detail: detail}
	}
	if h, err := readHeader(path); err == nil && (h.SetID != m.SetID || h.PlanDigest != m.PlanDigest) {
		return bad(ProblemForeign, fmt.Sprintf("%s belongs to set %s (plan %s), this set is %s (plan %s)",
			path, h.SetID, short(h.PlanDigest), m.SetID, short(m.PlanDigest))), false
	}
	r, closeFn, gz, err := openSegment(path)
	if err != nil {
		return bad(ProblemChecksum, err.Error()), gz
	}
	defer closeFn()
	h := sha256.New()
	n, err := io.Copy(h, r)
	switch {
	case err != nil && n < seg.Size:
		return bad(ProblemTruncated, fmt.Sprintf("%s: read %d of %d bytes: %v", path, n, seg.Size, err)), gz
	case err != nil:
		return bad(ProblemChecksum, fmt.Sprintf("%s: %v", path, err)), gz
	case n < seg.Size:
		return bad(ProblemTruncated, fmt.Sprintf("%s holds %d of %d bytes", path, n, seg.Size)), gz
	case n != seg.Size:
		return bad(ProblemSize, fmt.Sprintf("%s holds %d bytes, want %d", path, n, seg.Size)), gz
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != seg.SHA256 {
		return bad(ProblemChecksum, fmt.Sprintf("%s hashes to sha256:%s, want sha256:%s", path, short(got), short(seg.SHA256))), gz
	}
	return nil, gz
}

func short(s string) string {
	s = strings.TrimPrefix(s, "sha256:")
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// readHeader reads the segment's first entry (airlock-segment.json).
func readHeader(path string) (*segmentHeader, error) {
	r, closeFn, _, err := openSegment(path)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	tr := tar.NewReader(r)
	hdr, err := tr.Next()
	if err != nil {
		return nil, err
	}
	if hdr.Name != SegmentHeaderName || hdr.Size > 64<<10 {
		return nil, fmt.Errorf("%s: first entry is %q, not %s", path, hdr.Name, SegmentHeaderName)
	}
	var h segmentHeader
	if err := json.NewDecoder(tr).Decode(&h); err != nil {
		return nil, err
	}
	return &h, nil
}

// fillImages names the images needing a blob of each bad segment.
func (r *Report) fillImages() {
	for i := range r.Bad {
		r.Bad[i].Images = r.Manifest.ImagesNeeding(map[string]bool{r.Bad[i].Name: true})
	}
	sort.Slice(r.Bad, func(i, j int) bool { return r.Bad[i].Name < r.Bad[j].Name })
}

// ImagesNeeding lists the images with a blob in one of segs.
func (m *Manifest) ImagesNeeding(segs map[string]bool) []string {
	where := map[string]string{}
	for _, b := range m.Blobs {
		where[b.Digest] = b.Segment
	}
	var out []string
	for _, img := range m.Images {
		for _, b := range img.Blobs {
			if segs[where[b]] {
				out = append(out, img.Name)
				break
			}
		}
	}
	return out
}

// BadSegments is the set of names of the report's bad segments.
func (r *Report) BadSegments() map[string]bool {
	out := map[string]bool{}
	for _, b := range r.Bad {
		out[b.Name] = true
	}
	return out
}
