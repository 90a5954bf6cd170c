// Package store is airlock's local store: ONE OCI image layout on disk
// (oci-layout, index.json, blobs/sha256/...) with one shared blob pool for
// every image of every repository, so the same layer mirrored from many
// repositories is stored once.
//
// Each top-level image is one entry of index.json, named by the annotation
// org.opencontainers.image.ref.name = "REPO:TAG" (or "REPO@DIGEST" for an
// image stored by digest only), where REPO is the repository path inside the
// store ("ns/app"). That is the name skopeo and podman expect:
//
//	skopeo inspect oci:DIR:ns/app:v1
//
// (skopeo 1.9.3 only follows index.json entries with OCI media types;
// containers/image since about v5.29 and go-containerregistry's layout
// package, which crane uses, also follow Docker v2 ones. The store keeps the
// media type of the content as it is, since changing it changes the digest.)
//
// The entry also carries AnnotationSource, the full reference the image was
// copied from, so a store can be audited without any other file. Manifests of
// index children are blobs of the pool and have no entry of their own.
//
// Crash safety: a blob is written to a temporary file in blobs/sha256/,
// verified against its digest and size, fsynced and only then renamed to its
// final name; index.json is rewritten the same way (temp + fsync + rename)
// under an exclusive lock (in-process mutex and flock), so concurrent writers
// in one or several processes never lose each other's entries, and a crash
// never leaves a corrupt blob or index under a final name.
package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	// AnnotationRefName is the OCI annotation naming an image in index.json.
	AnnotationRefName = "org.opencontainers.image.ref.name"
	// AnnotationSource holds the full reference the image was copied from.
	AnnotationSource = "io.airlock.image.source"
	// AnnotationRef holds the store reference "REPO:TAG" / "REPO@DIGEST"
	// (equal to AnnotationRefName in a store; kept separately because plain
	// oci:// layouts name images by tag only).
	AnnotationRef = "io.airlock.image.ref"
	// AnnotationSubject holds the digest a referrer (signature, SBOM,
	// attestation) refers to, and AnnotationArtifactType its artifact
	// type, so the store answers referrers queries as a registry does.
	AnnotationSubject      = "io.airlock.image.subject"
	AnnotationArtifactType = "io.airlock.image.artifactType"

	layoutFile  = "oci-layout"
	indexFile   = "index.json"
	lockFile    = ".airlock.lock"
	tmpPrefix   = ".tmp-"
	layoutValue = `{"imageLayoutVersion":"1.0.0"}`
)

// ErrNotFound is wrapped when a blob or image is not in the store.
var ErrNotFound = errors.New("not found in store")

var digestRE = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)

// Store is an open OCI layout. Methods are safe for concurrent use.
type Store struct {
	dir string
	mu  sync.Mutex // serialises index.json read-modify-write in this process
}

// Open opens the layout at dir, creating it (directories, oci-layout, an
// empty index.json) when it does not exist. A directory that exists with
// other content but no oci-layout is refused, so a typo never turns a home
// directory into a store.
func Open(dir string) (*Store, error) {
	if dir == "" {
		return nil, fmt.Errorf("opening store: empty directory name")
	}
	s := &Store{dir: dir}
	_, err := os.Stat(filepath.Join(dir, layoutFile))
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist):
		entries, rerr := os.ReadDir(dir)
		if rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			return nil, fmt.Errorf("opening store %s: %w", dir, rerr)
		}
		if !onlyOurs(entries) {
			return nil, fmt.Errorf("opening store %s: directory exists, is not empty and has no %s file; "+
				"choose an empty or new directory for the store", dir, layoutFile)
		}
		if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
			return nil, fmt.Errorf("creating store %s: %w", dir, err)
		}
		idx, _ := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{}})
		if err := writeFileAtomic(filepath.Join(dir, indexFile), idx); err != nil {
			return nil, fmt.Errorf("creating store %s: %w", dir, err)
		}
		// oci-layout last: its presence marks a complete layout.
		if err := writeFileAtomic(filepath.Join(dir, layoutFile), []byte(layoutValue)); err != nil {
			return nil, fmt.Errorf("creating store %s: %w", dir, err)
		}
	default:
		return nil, fmt.Errorf("opening store %s: %w", dir, err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return nil, fmt.Errorf("opening store %s: %w", dir, err)
	}
	s.removeStaleTemps()
	return s, nil
}

// staleAfter is how long a temp file must sit unmodified before Open
// deletes it: a live writer (maybe another process) touches its temp file
// continuously, a killed one never again.
const staleAfter = 15 * time.Minute

// removeStaleTemps deletes temp files left by writers that were killed, so
// interrupted runs do not leak disk.
func (s *Store) removeStaleTemps() {
	for _, d := range []string{s.dir, filepath.Join(s.dir, "blobs", "sha256")} {
		entries, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), tmpPrefix) {
				continue
			}
			if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > staleAfter {
				os.Remove(filepath.Join(d, e.Name()))
			}
		}
	}
}

// Dir is the layout directory.
func (s *Store) Dir() string { return s.dir }

// BlobPath is the final path of a blob.
func (s *Store) BlobPath(digest string) (string, error) {
	if !digestRE.MatchString(digest) {
		return "", fmt.Errorf("blob digest %q: want sha256:<64 lowercase hex>", digest)
	}
	return filepath.Join(s.dir, "blobs", "sha256", digest[len("sha256:"):]), nil
}

// HasBlob reports whether the blob is stored and its size.
func (s *Store) HasBlob(digest string) (int64, bool) {
	p, err := s.BlobPath(digest)
	if err != nil {
		return 0, false
	}
	fi, err := os.Stat(p)
	if err != nil || !fi.Mode().IsRegular() {
		return 0, false
	}
	return fi.Size(), true
}

// OpenBlob opens a stored blob for reading.
func (s *Store) OpenBlob(digest string) (*os.File, int64, error) {
	p, err := s.BlobPath(digest)
	if err != nil {
		return nil, 0, err
	}
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, 0, fmt.Errorf("blob %s in %s: %w", digest, s.dir, ErrNotFound)
		}
		return nil, 0, fmt.Errorf("opening blob %s: %w", digest, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("opening blob %s: %w", digest, err)
	}
	return f, fi.Size(), nil
}

// ReadBlob reads a small blob (a manifest or config) whole and checks its
// digest, so a damaged store is reported rather than used.
func (s *Store) ReadBlob(digest string) ([]byte, error) {
	f, _, err := s.OpenBlob(digest)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("reading blob %s: %w", digest, err)
	}
	if got := sha256Digest(b); got != digest {
		return nil, fmt.Errorf("blob %s in %s is corrupt (content hashes to %s); delete the file and copy the image again", digest, s.dir, got)
	}
	return b, nil
}

// WriteBlob streams r into the pool under digest, verifying digest and size
// (size < 0: unknown) before the rename. It returns the bytes read from r
// (0 when the blob was already present, in which case r is not read).
func (s *Store) WriteBlob(digest string, size int64, r io.Reader) (int64, error) {
	final, err := s.BlobPath(digest)
	if err != nil {
		return 0, err
	}
	if _, ok := s.HasBlob(digest); ok {
		return 0, nil
	}
	f, err := os.CreateTemp(filepath.Dir(final), tmpPrefix+digest[7:19]+"-*")
	if err != nil {
		return 0, fmt.Errorf("writing blob %s: %w", digest, err)
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
	n, err := io.Copy(io.MultiWriter(f, h), r)
	if err != nil {
		return n, fmt.Errorf("writing blob %s: %w", digest, err)
	}
	if size >= 0 && n != size {
		return n, fmt.Errorf("writing blob %s: got %d bytes, want %d", digest, n, size)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != digest {
		return n, fmt.Errorf("writing blob %s: content hashes to %s", digest, got)
	}
	if err := f.Sync(); err != nil {
		return n, fmt.Errorf("writing blob %s: %w", digest, err)
	}
	if err := f.Close(); err != nil {
		return n, fmt.Errorf("writing blob %s: %w", digest, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return n, fmt.Errorf("writing blob %s: %w", digest, err)
	}
	ok = true
	return n, nil
}

// PutBytes stores a small blob (manifest, config) given whole.
func (s *Store) PutBytes(b []byte) (string, error) {
	d := sha256Digest(b)
	_, err := s.WriteBlob(d, int64(len(b)), bytes.NewReader(b))
	return d, err
}

// Index returns the entries of index.json.
func (s *Store) Index() (*v1.IndexManifest, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, indexFile))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", filepath.Join(s.dir, indexFile), err)
	}
	var im v1.IndexManifest
	if err := json.Unmarshal(b, &im); err != nil {
		return nil, fmt.Errorf("parsing %s: %w; the file is damaged, restore it or remove the store", filepath.Join(s.dir, indexFile), err)
	}
	return &im, nil
}

// Lookup finds the image named name ("REPO:TAG" or "REPO@DIGEST" in a store,
// "TAG" in a plain layout). With a digest name it also accepts any entry of
// the same repository with that digest.
func (s *Store) Lookup(name string) (v1.Descriptor, error) {
	im, err := s.Index()
	if err != nil {
		return v1.Descriptor{}, err
	}
	repo, dig, byDigest := strings.Cut(name, "@")
	for _, d := range im.Manifests {
		n := d.Annotations[AnnotationRefName]
		if n == name {
			return d, nil
		}
		// In a plain layout (repo "") names are bare tags: any entry with
		// the digest will do.
		if byDigest && d.Digest.String() == dig && (repo == "" || repoOf(n) == repo || repoOf(d.Annotations[AnnotationRef]) == repo) {
			return d, nil
		}
	}
	return v1.Descriptor{}, fmt.Errorf("image %s in store %s: %w", name, s.dir, ErrNotFound)
}

// Referrers lists the entries of repo recorded as referrers of subject,
// each with its artifact type, as the OCI referrers API lists them.
func (s *Store) Referrers(repo, subject string) ([]v1.Descriptor, error) {
	im, err := s.Index()
	if err != nil {
		return nil, err
	}
	var out []v1.Descriptor
	seen := map[string]bool{}
	for _, d := range im.Manifests {
		if d.Annotations[AnnotationSubject] != subject || seen[d.Digest.String()] {
			continue
		}
		if r := d.Annotations[AnnotationRef]; repo != "" && repoOf(r) != repo {
			continue
		}
		seen[d.Digest.String()] = true
		out = append(out, v1.Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest,
			ArtifactType: d.Annotations[AnnotationArtifactType]})
	}
	return out, nil
}

// Tags lists the tags of repo ("" in a plain layout: every name).
func (s *Store) Tags(repo string) ([]string, error) {
	im, err := s.Index()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range im.Manifests {
		n := d.Annotations[AnnotationRefName]
		if n == "" || strings.Contains(n, "@") {
			continue
		}
		if repo == "" {
			out = append(out, n)
		} else if repoOf(n) == repo {
			out = append(out, n[len(repo)+1:])
		}
	}
	return out, nil
}

// repoOf strips ":tag" or "@digest" from a store name.
func repoOf(name string) string {
	if i := strings.Index(name, "@"); i >= 0 {
		name = name[:i]
	}
	if i := strings.LastIndex(name, ":"); i >= 0 && i > strings.LastIndex(name, "/") {
		name = name[:i]
	}
	return name
}

// Record names desc in index.json as name, replacing an entry of the same
// name (name "" records an unnamed entry, kept once per digest). The manifest blob must already be stored (children first, names
// last). annotations are added to the entry (e.g. AnnotationSource).
func (s *Store) Record(name string, desc v1.Descriptor, annotations map[string]string) error {
	if _, ok := s.HasBlob(desc.Digest.String()); !ok {
		return fmt.Errorf("recording %s in %s: manifest %s is not stored", name, s.dir, desc.Digest)
	}
	d := v1.Descriptor{MediaType: desc.MediaType, Size: desc.Size, Digest: desc.Digest, Platform: desc.Platform,
		Annotations: map[string]string{}}
	if name != "" {
		d.Annotations[AnnotationRefName] = name
	}
	for k, v := range annotations {
		d.Annotations[k] = v
	}
	return s.update(func(im *v1.IndexManifest) {
		out := im.Manifests[:0]
		for _, m := range im.Manifests {
			n := m.Annotations[AnnotationRefName]
			// A name moves to the new image; an unnamed entry (plain layout,
			// digest only) is replaced by the same digest.
			if n == name && (name != "" || m.Digest == desc.Digest) {
				continue
			}
			out = append(out, m)
		}
		im.Manifests = append(out, d)
	})
}

// update applies fn to index.json under the process and file locks and
// writes the result atomically.
func (s *Store) update(fn func(*v1.IndexManifest)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	lf, err := os.OpenFile(filepath.Join(s.dir, lockFile), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("locking store %s: %w", s.dir, err)
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("locking store %s: %w", s.dir, err)
	}
	defer syscall.Flock(int(lf.Fd()), syscall.LOCK_UN)
	im, err := s.Index()
	if err != nil {
		return err
	}
	if im.Manifests == nil {
		im.Manifests = []v1.Descriptor{}
	}
	if im.SchemaVersion == 0 {
		im.SchemaVersion = 2
	}
	fn(im)
	b, err := json.Marshal(im)
	if err != nil {
		return fmt.Errorf("encoding index of %s: %w", s.dir, err)
	}
	if err := writeFileAtomic(filepath.Join(s.dir, indexFile), b); err != nil {
		return fmt.Errorf("writing index of %s: %w", s.dir, err)
	}
	return nil
}

// writeFileAtomic writes b to a temp file beside path, fsyncs it and
// renames it over path, then fsyncs the directory.
func writeFileAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), tmpPrefix+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// onlyOurs reports whether a directory without oci-layout holds nothing but
// what Open itself creates first (a store whose creation was interrupted),
// or the working-dir/ that
// `airlock plan` and `mirror` keep beside the store (oc-mirror's layout).
func onlyOurs(entries []fs.DirEntry) bool {
	for _, e := range entries {
		n := e.Name()
		if n != "blobs" && n != indexFile && n != lockFile && n != "working-dir" && !strings.HasPrefix(n, tmpPrefix) && !transferFile(n) {
			return false
		}
	}
	return true
}

// transferFile reports whether n is a file of a transfer set
// (internal/transfer): segments, the manifest, its signature and temp
// files, which the receiving side unpacks into the same directory. The
// names are repeated here because transfer imports store.
func transferFile(n string) bool {
	return transferSegmentRE.MatchString(n) || n == "airlock-transfer.json" || n == "airlock-transfer.json.sig" ||
		strings.HasPrefix(n, ".airlock-transfer-tmp-")
}

var transferSegmentRE = regexp.MustCompile(`^mirror_[0-9]{6}\.tar$`)

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
