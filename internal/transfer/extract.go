package transfer

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/airlock-mirror/airlock/internal/atomicfile"
	"github.com/airlock-mirror/airlock/internal/store"
)

// ErrUnsafeEntry is wrapped when a segment holds an entry extraction
// refuses: a link, a device, an absolute or escaping path, a duplicate,
// a name the format does not define, or a size the segment cannot hold.
var ErrUnsafeEntry = errors.New("unsafe tar entry")

var blobEntryRE = regexp.MustCompile(`^blobs/sha256/[a-f0-9]{64}$`)

// maxMetadata bounds a metadata entry read whole (index.json of a very
// large store is a few MB).
const maxMetadata = 256 << 20

// Extract unpacks the good segments of the report into the store at
// storeDir: blobs through the store (hashed, temp + rename), metadata
// files atomically. Entry names never become paths: a blob's path is
// derived from its digest, a metadata file's from the fixed list, so
// nothing can be written outside the store.
func Extract(r *Report, storeDir string) error {
	st, err := store.Open(storeDir)
	if err != nil {
		return err
	}
	sizes := map[string]int64{}
	for _, b := range r.Manifest.Blobs {
		sizes[b.Digest] = b.Size
	}
	names := make([]string, 0, len(r.Paths))
	for n := range r.Paths {
		names = append(names, n)
	}
	sort.Strings(names)
	// With the metadata in the manifest, the copies in segment 1 are
	// checked but not written: the manifest's are there whether or not
	// segment 1 is intact, and are written once, after the blobs.
	fromManifest := len(r.Manifest.Metadata) > 0
	for _, n := range names {
		if err := extractSegment(r.Paths[n], st, sizes, fromManifest); err != nil {
			return fmt.Errorf("extracting segment %s: %w; copy it from the media again", r.Paths[n], err)
		}
	}
	if fromManifest {
		return writeManifestMetadata(r.Manifest, st)
	}
	return nil
}

// writeManifestMetadata writes the metadata files the manifest carries,
// each checked against its sha256 and the fixed list of names first, so a
// damaged or forged manifest writes nothing.
func writeManifestMetadata(m *Manifest, st *store.Store) error {
	seen := map[string]bool{}
	for _, f := range m.Metadata {
		switch {
		case !isMetadata(f.Name):
			return fmt.Errorf("%w: %s lists metadata %q, not a name the format defines", ErrUnsafeEntry, ManifestName, f.Name)
		case seen[f.Name]:
			return fmt.Errorf("%w: %s lists metadata %s twice", ErrUnsafeEntry, ManifestName, f.Name)
		}
		seen[f.Name] = true
		sum := sha256.Sum256(f.Data)
		if got := hex.EncodeToString(sum[:]); got != f.SHA256 {
			return fmt.Errorf("%s: metadata %s hashes to sha256:%s, the manifest says sha256:%s; copy %s from the media again",
				ManifestName, f.Name, short(got), short(f.SHA256), ManifestName)
		}
	}
	for _, f := range m.Metadata {
		if err := writeMetadata(st, f.Name, f.Data); err != nil {
			return fmt.Errorf("writing %s from %s: %w", f.Name, ManifestName, err)
		}
	}
	return nil
}

// counter counts bytes the tar reader consumed, to know how much of a
// plain segment remains behind an entry header.
type counter struct {
	r io.Reader
	n int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func extractSegment(p string, st *store.Store, sizes map[string]int64, skipMetadata bool) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	r, closeFn, gz, err := openSegment(p)
	if err != nil {
		return err
	}
	defer closeFn()
	cr := &counter{r: r}
	tr := tar.NewReader(cr)
	seen := map[string]bool{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading tar: %w", err)
		}
		if err := checkEntry(hdr, seen, sizes); err != nil {
			return err
		}
		// A plain segment cannot hold more than what follows the header:
		// refuse before writing anything (truncation or a forged size).
		// cr.n is exactly what the tar reader consumed (the buffering
		// is below the counter).
		if !gz && hdr.Size > fi.Size()-cr.n {
			return fmt.Errorf("%w: %s declares %d bytes, more than the segment holds", ErrUnsafeEntry, hdr.Name, hdr.Size)
		}
		if skipMetadata && isMetadata(hdr.Name) {
			continue
		}
		if err := writeEntryTo(st, hdr, tr); err != nil {
			return err
		}
	}
}

// checkEntry refuses every entry that is not a regular file of the format
// with a clean, relative, unique name and a size it may have.
func checkEntry(hdr *tar.Header, seen map[string]bool, sizes map[string]int64) error {
	n := hdr.Name
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA:
	case tar.TypeSymlink:
		return fmt.Errorf("%w: %s is a symlink to %q", ErrUnsafeEntry, n, hdr.Linkname)
	case tar.TypeLink:
		return fmt.Errorf("%w: %s is a hardlink to %q", ErrUnsafeEntry, n, hdr.Linkname)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return fmt.Errorf("%w: %s is a device or fifo", ErrUnsafeEntry, n)
	default:
		return fmt.Errorf("%w: %s has type %q, only regular files are allowed", ErrUnsafeEntry, n, hdr.Typeflag)
	}
	switch {
	case strings.HasPrefix(n, "/") || filepath.IsAbs(n):
		return fmt.Errorf("%w: %s is an absolute path", ErrUnsafeEntry, n)
	case n != path.Clean(n) || strings.Contains(n, "..") || strings.Contains(n, `\`):
		return fmt.Errorf("%w: %s is not a clean relative path (.. or redundant elements)", ErrUnsafeEntry, n)
	case seen[n]:
		return fmt.Errorf("%w: %s appears twice in the segment", ErrUnsafeEntry, n)
	case hdr.Size < 0:
		return fmt.Errorf("%w: %s declares a negative size", ErrUnsafeEntry, n)
	}
	seen[n] = true
	if blobEntryRE.MatchString(n) {
		d := "sha256:" + n[len("blobs/sha256/"):]
		want, ok := sizes[d]
		if !ok {
			return fmt.Errorf("%w: blob %s is not listed in %s", ErrUnsafeEntry, d, ManifestName)
		}
		if hdr.Size != want {
			return fmt.Errorf("%w: blob %s declares %d bytes, the manifest %d", ErrUnsafeEntry, d, hdr.Size, want)
		}
		return nil
	}
	if n == SegmentHeaderName || isMetadata(n) {
		if hdr.Size > maxMetadata {
			return fmt.Errorf("%w: %s declares %d bytes, more than a metadata file may have", ErrUnsafeEntry, n, hdr.Size)
		}
		return nil
	}
	return fmt.Errorf("%w: %s is not a name a transfer segment holds", ErrUnsafeEntry, n)
}

func isMetadata(n string) bool {
	for _, m := range metadataFiles {
		if m == n {
			return true
		}
	}
	return false
}

func writeEntryTo(st *store.Store, hdr *tar.Header, r io.Reader) error {
	switch {
	case hdr.Name == SegmentHeaderName:
		return nil
	case blobEntryRE.MatchString(hdr.Name):
		d := "sha256:" + hdr.Name[len("blobs/sha256/"):]
		if _, err := st.WriteBlob(d, hdr.Size, r); err != nil {
			return fmt.Errorf("blob %s: %w", d, err)
		}
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(r, hdr.Size))
	if err != nil {
		return fmt.Errorf("%s: %w", hdr.Name, err)
	}
	if int64(len(b)) != hdr.Size {
		return fmt.Errorf("%w: %s declares %d bytes, the segment holds %d", ErrUnsafeEntry, hdr.Name, hdr.Size, len(b))
	}
	return writeMetadata(st, hdr.Name, b)
}

// writeMetadata writes one file of the fixed metadata list atomically.
func writeMetadata(st *store.Store, name string, b []byte) error {
	if name == HistoryPath {
		// The history of the sending side is shipped for `archive ls`,
		// but the receiving store keeps its own imports apart.
		return atomicfile.Write(filepath.Join(st.Dir(), "working-dir", "airlock", "transfer-history.sent.json"), b, 0o644)
	}
	return atomicfile.Write(filepath.Join(st.Dir(), filepath.FromSlash(name)), b, 0o644)
}

// MissingDependencies lists, for an incremental set, the earlier sets
// whose blobs the store at storeDir lacks, with the images affected.
func MissingDependencies(m *Manifest, storeDir string) map[string][]string {
	st, err := store.Open(storeDir)
	if err != nil {
		return nil
	}
	missingIn := map[string]string{}
	for _, b := range m.Blobs {
		if b.InSet == "" {
			continue
		}
		if _, ok := st.HasBlob(b.Digest); !ok {
			missingIn[b.Digest] = b.InSet
		}
	}
	out := map[string][]string{}
	for _, img := range m.Images {
		for _, b := range img.Blobs {
			if s, ok := missingIn[b]; ok {
				out[s] = append(out[s], img.Name)
				break
			}
		}
	}
	return out
}
