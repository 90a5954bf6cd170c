package transfer

import (
	"archive/tar"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/airlock-mirror/airlock/internal/atomicfile"
	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/store"
)

// CreateOptions configure one Create.
type CreateOptions struct {
	// Store is the local store directory; Out the directory of the set.
	Store, Out string
	// SegmentSize is the maximum size of a segment in bytes.
	SegmentSize int64
	// Full ships every blob, ignoring the history.
	Full bool
	// Since, when set, ships only blobs added (written) after it.
	Since          time.Time
	AirlockVersion string
	Warn           func(string)
	Now            func() time.Time
}

// item is one file to pack: a store blob or a metadata file.
type item struct {
	name string // entry name in the tar
	path string // file on disk
	size int64
}

// tarSize is the bytes an entry of n bytes takes in a tar stream: a
// 512-byte header plus the content padded to 512 (no PAX records: names
// are short ASCII and sizes below 8 GiB use the plain header; larger
// blobs get a PAX record, counted by paxReserve).
func tarSize(n int64) int64 {
	s := 512 + (n+511)/512*512
	if n >= 8<<30 {
		s += paxReserve
	}
	return s
}

const (
	paxReserve = 1024 // a PAX header block and its record, rounded up
	tarTrailer = 1024 // two zero blocks ending a tar stream
)

// Create writes a transfer set of the store into o.Out and records the
// shipped blobs in the store's history.
func Create(o CreateOptions) (*Manifest, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Warn == nil {
		o.Warn = func(string) {}
	}
	if o.SegmentSize < 4096 {
		return nil, fmt.Errorf("segment size %d bytes: want at least 4096", o.SegmentSize)
	}
	st, err := store.Open(o.Store)
	if err != nil {
		return nil, err
	}
	images, err := storeImages(st)
	if err != nil {
		return nil, err
	}
	hist, err := readHistory(o.Store)
	if err != nil {
		return nil, err
	}
	m := &Manifest{FormatVersion: FormatVersion, AirlockVersion: o.AirlockVersion, SetID: newSetID(o.Now()),
		Created: o.Now().UTC(), Images: images, Full: o.Full && o.Since.IsZero()}
	if !o.Since.IsZero() {
		s := o.Since.UTC()
		m.Since = &s
	}
	if err := describeRecord(o.Store, m); err != nil {
		return nil, err
	}
	ship, err := selectBlobs(st, m, hist, o)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", o.Out, err)
	}
	if err := refuseExisting(o.Out); err != nil {
		return nil, err
	}
	meta := metadataItems(o.Store)
	if m.Metadata, err = embedMetadata(meta); err != nil {
		return nil, err
	}
	groups := pack(meta, ship, o.SegmentSize, o.Warn)
	bySeg := map[string]string{}
	for i, g := range groups {
		seg, err := writeSegment(o.Out, i+1, g, m)
		if err != nil {
			return nil, err
		}
		m.Segments = append(m.Segments, seg)
		for _, it := range g {
			if strings.HasPrefix(it.name, "blobs/sha256/") {
				bySeg["sha256:"+it.name[len("blobs/sha256/"):]] = seg.Name
			}
		}
	}
	for i := range m.Blobs {
		if s, ok := bySeg[m.Blobs[i].Digest]; ok {
			m.Blobs[i].Segment = s
		}
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	// The manifest last: a set without it is visibly incomplete.
	if err := atomicfile.Write(filepath.Join(o.Out, ManifestName), append(b, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("writing %s: %w", filepath.Join(o.Out, ManifestName), err)
	}
	return m, recordShipped(o.Store, hist, m)
}

// refuseExisting keeps a new set from mixing with the segments of an
// older one in the same directory.
func refuseExisting(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if segmentRE.MatchString(e.Name()) || e.Name() == ManifestName {
			return fmt.Errorf("%s already holds a transfer set (%s): write the new set to another directory, or move the old one away", dir, e.Name())
		}
	}
	return nil
}

func newSetID(now time.Time) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// selectBlobs fills m.Blobs (every blob the images need, and every pool
// blob) and returns the items to ship: not in an earlier set (unless
// Full), and written after Since.
func selectBlobs(st *store.Store, m *Manifest, hist *History, o CreateOptions) ([]item, error) {
	shippedIn := shippedSets(hist, o.Full)
	pool := filepath.Join(st.Dir(), "blobs", "sha256")
	entries, err := os.ReadDir(pool)
	if err != nil {
		return nil, fmt.Errorf("listing blobs of %s: %w", st.Dir(), err)
	}
	deps := map[string]bool{}
	var ship []item
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") || len(e.Name()) != 64 {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			return nil, err
		}
		d := "sha256:" + e.Name()
		b := Blob{Digest: d, Size: fi.Size()}
		switch {
		case shippedIn[d] != "":
			b.InSet = shippedIn[d]
			deps[b.InSet] = true
		case !o.Since.IsZero() && !fi.ModTime().After(o.Since):
			b.InSet = "before-since"
		default:
			ship = append(ship, item{name: "blobs/sha256/" + e.Name(), path: filepath.Join(pool, e.Name()), size: fi.Size()})
		}
		m.Blobs = append(m.Blobs, b)
	}
	ship = groupByImage(ship, m.Images)
	for s := range deps {
		m.DependsOn = append(m.DependsOn, s)
	}
	sort.Strings(m.DependsOn)
	if len(deps) == 0 && o.Since.IsZero() {
		m.Full = true
	}
	return ship, nil
}

// embedMetadata reads the metadata files for the manifest. The history
// is recorded as it was before this set (as segment 1 carries it).
func embedMetadata(meta []item) ([]MetadataFile, error) {
	var out []MetadataFile
	for _, it := range meta {
		b, err := os.ReadFile(it.path)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", it.path, err)
		}
		if int64(len(b)) != it.size {
			return nil, fmt.Errorf("%s changed while the set was written (%d bytes, then %d): run again", it.path, it.size, len(b))
		}
		sum := sha256.Sum256(b)
		out = append(out, MetadataFile{Name: it.name, SHA256: hex.EncodeToString(sum[:]), Data: b})
	}
	return out, nil
}

// groupByImage orders the blobs image by image (in index order, each
// image's blobs by digest), then the blobs no image names: an image's
// blobs are contiguous, so a damaged segment affects the fewest images
// and --partial pushes the most. The order is still a function of the
// store alone (the same store gives the same bytes).
func groupByImage(ship []item, images []Image) []item {
	byDigest := make(map[string]int, len(ship))
	for i, it := range ship {
		byDigest["sha256:"+it.name[len("blobs/sha256/"):]] = i
	}
	out := make([]item, 0, len(ship))
	taken := make([]bool, len(ship))
	for _, img := range images {
		for _, d := range img.Blobs {
			if i, ok := byDigest[d]; ok && !taken[i] {
				taken[i] = true
				out = append(out, ship[i])
			}
		}
	}
	for i, it := range ship {
		if !taken[i] {
			out = append(out, it)
		}
	}
	return out
}

// shippedSets maps every blob an earlier set shipped to the first such
// set (none with full: a full set ships everything again).
func shippedSets(hist *History, full bool) map[string]string {
	out := map[string]string{}
	if full {
		return out
	}
	for _, s := range hist.Sets {
		for _, d := range s.Blobs {
			if _, ok := out[d]; !ok {
				out[d] = s.SetID
			}
		}
	}
	return out
}

func metadataItems(storeDir string) []item {
	var out []item
	for _, n := range metadataFiles {
		p := filepath.Join(storeDir, filepath.FromSlash(n))
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			out = append(out, item{name: n, path: p, size: fi.Size()})
		}
	}
	return out
}

// pack cuts the items into segments of at most limit bytes, in order,
// metadata first. An item that alone exceeds a segment gets one of its
// own, with a warning (the only case a segment is larger than limit).
func pack(meta, blobs []item, limit int64, warn func(string)) [][]item {
	header := tarSize(1024) // the segment header entry, generously
	var groups [][]item
	var cur []item
	used := header + tarTrailer
	for _, it := range append(meta, blobs...) {
		sz := tarSize(it.size)
		if header+tarTrailer+sz > limit {
			warn(fmt.Sprintf("blob %s (%d bytes) is larger than a segment (%d bytes): it gets a segment of its own, larger than archiveSize", it.name, it.size, limit))
			// Close the open segment first: segments keep the order of
			// the items, so the metadata stays in segment 1 and an
			// image's blobs stay together.
			if len(cur) > 0 {
				groups = append(groups, cur)
				cur, used = nil, header+tarTrailer
			}
			groups = append(groups, []item{it})
			continue
		}
		if used+sz > limit && len(cur) > 0 {
			groups = append(groups, cur)
			cur, used = nil, header+tarTrailer
		}
		cur = append(cur, it)
		used += sz
	}
	if len(cur) > 0 || len(groups) == 0 {
		groups = append(groups, cur)
	}
	return groups
}

// countingHash counts and hashes what the tar writer emits, so the
// segment is hashed while it is written, never read back.
type countingHash struct {
	w io.Writer
	n int64
}

func (c *countingHash) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// writeSegment streams the items into DIR/mirror_NNNNNN.tar through a
// temp file that is fsynced and renamed only when complete.
func writeSegment(dir string, n int, items []item, m *Manifest) (Segment, error) {
	name := SegmentName(n)
	f, err := os.CreateTemp(dir, TempPrefix+name+"-*")
	if err != nil {
		return Segment{}, fmt.Errorf("creating segment %s: %w", name, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	h := sha256.New()
	cw := &countingHash{w: io.MultiWriter(f, h)}
	tw := tar.NewWriter(cw)
	hdr, _ := json.Marshal(segmentHeader{FormatVersion: FormatVersion, SetID: m.SetID, PlanDigest: m.PlanDigest, Segment: name})
	if err := writeEntry(tw, SegmentHeaderName, int64(len(hdr)), strings.NewReader(string(hdr))); err != nil {
		return Segment{}, fmt.Errorf("writing segment %s: %w", name, err)
	}
	for _, it := range items {
		if err := copyFile(tw, it); err != nil {
			return Segment{}, fmt.Errorf("writing segment %s: %w", name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return Segment{}, fmt.Errorf("writing segment %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		return Segment{}, fmt.Errorf("writing segment %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return Segment{}, fmt.Errorf("writing segment %s: %w", name, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return Segment{}, fmt.Errorf("writing segment %s: %w", name, err)
	}
	ok = true
	syncDir(dir)
	return Segment{Name: name, Size: cw.n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

func copyFile(tw *tar.Writer, it item) error {
	f, err := os.Open(it.path)
	if err != nil {
		return err
	}
	defer f.Close()
	return writeEntry(tw, it.name, it.size, f)
}

func writeEntry(tw *tar.Writer, name string, size int64, r io.Reader) error {
	// Fixed mode and time: the same store gives the same bytes.
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644,
		ModTime: time.Unix(0, 0), Format: tar.FormatPAX}); err != nil {
		return err
	}
	if _, err := io.CopyN(tw, r, size); err != nil {
		return fmt.Errorf("%s: %w (did the file change while packing?)", name, err)
	}
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// recordShipped appends the set to the store's history, so the next set
// ships only what this one did not.
func recordShipped(storeDir string, h *History, m *Manifest) error {
	hs := HistorySet{SetID: m.SetID, Created: m.Created}
	for _, b := range m.Blobs {
		if b.Segment != "" {
			hs.Blobs = append(hs.Blobs, b.Digest)
		}
	}
	h.Sets = append(h.Sets, hs)
	b, err := json.MarshalIndent(h, "", " ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(storeDir, HistoryPath), b, 0o644)
}

// record is the part of the mirror-to-disk record a set describes.
type record struct {
	Plan     plan.Plan `json:"plan"`
	Releases []struct {
		Version      string `json:"version"`
		Architecture string `json:"architecture"`
	} `json:"releases"`
}

// describeRecord fills the plan digest, catalogs, packages and releases
// from the store's mirror-to-disk record (none: a plain store).
func describeRecord(storeDir string, m *Manifest) error {
	b, err := os.ReadFile(filepath.Join(storeDir, "working-dir", "airlock", "mirror-record.json"))
	if os.IsNotExist(err) {
		sum := sha256.Sum256(nil)
		m.PlanDigest = "sha256:" + hex.EncodeToString(sum[:])
		return nil
	}
	if err != nil {
		return err
	}
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil {
		return fmt.Errorf("parsing the mirror record of %s: %w", storeDir, err)
	}
	pj, _ := json.Marshal(rec.Plan)
	sum := sha256.Sum256(pj)
	m.PlanDigest = "sha256:" + hex.EncodeToString(sum[:])
	cats, pkgs := map[string]bool{}, map[string]bool{}
	for _, it := range rec.Plan.Items {
		if it.Origin.Catalog != "" {
			cats[it.Origin.Catalog] = true
		}
		for _, p := range it.Origin.Packages {
			pkgs[p] = true
		}
	}
	m.Catalogs, m.Packages = keys(cats), keys(pkgs)
	for _, r := range rec.Releases {
		m.Releases = append(m.Releases, r.Version+" "+r.Architecture)
	}
	return nil
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
