// Package storeview serves an airlock store (package store: one OCI image
// layout with a shared blob pool, images named in index.json) to the
// embedded distribution registry read-only and in place, without pushing it
// into a second copy: `airlock registry serve --from file://DIR`.
//
// It is a distribution storage driver. distribution keeps content in its own
// on-disk layout under /docker/registry/v2 (blobs/sha256/xx/<hex>/data, and
// per repository the tag, revision and layer link files that make a digest
// visible there). Build computes that layout once from index.json, walking
// every entry's manifests (index children, config and layers, subjects of
// referrers), and keeps it in memory: link files are small strings, and a
// blob's data path maps to the store's own blobs/sha256/<hex> file, which
// Reader opens and seeks, so no byte is copied. ocicompat's referrers index
// (_referrers/<subject>/<referrer> entries) is computed the same way, so the
// referrers API and tag-style cosign signatures (REPO:sha256-<hex>.sig
// entries, plain tags) both work.
//
// Every write method fails with ErrReadOnly; the registry also runs in
// distribution's maintenance read-only mode, so a push gets a proper
// registry error before it reaches the driver. The view is a snapshot: a
// store changed while served is seen after a restart.
package storeview

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/airlock-mirror/airlock/internal/store"
)

// storageRoot is distribution's root inside its driver (registry/storage
// paths.go in distribution v3; the same constant ocicompat uses).
const storageRoot = "/docker/registry/v2"

// maxManifestSize bounds a manifest read at start, as distribution bounds a
// pushed one (4 MiB): a bigger "manifest" is a damaged or foreign blob.
const maxManifestSize = 4 << 20

// tagRE is distribution's tag grammar (reference.TagRegexp, anchored).
var tagRE = regexp.MustCompile(`^[\w][\w.-]{0,127}$`)

// node is one virtual file: either content held in memory (link files and
// referrer entries) or a blob of the store's pool on disk.
type node struct {
	content []byte
	blob    string // absolute path in the store pool; "" for in-memory
	size    int64
	mod     time.Time
}

// Stats counts what a Layout serves.
type Stats struct {
	Repositories int
	Tags         int
	Manifests    int // distinct manifest digests (index children included)
	Blobs        int // distinct blobs of the pool served (manifests, configs, layers)
	Bytes        int64
	Referrers    int // referrer entries (per repository and subject)
}

// Layout is the distribution layout computed over one store.
type Layout struct {
	dir   string
	files map[string]*node
	dirs  map[string][]string // directory -> sorted full paths of children
	// Warnings name what index.json references but the store lacks (or
	// holds damaged); those images are served without the missing parts.
	Warnings []string
	// AbsentChildren counts index children not in the store: a
	// platform-filtered mirror keeps only the chosen platforms' manifests
	// on purpose, so these are not warnings.
	AbsentChildren int
	Stats          Stats
}

// Dir is the store directory served.
func (l *Layout) Dir() string { return l.dir }

// ErrNotStore is wrapped when a directory is not a store.
var ErrNotStore = errors.New("not an airlock store")

// CheckDir reports, with what to do about it, why dir cannot be served: it
// does not exist, is an unextracted transfer set, or is no OCI layout.
func CheckDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("store %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("store %s is a file, not a directory: %w", dir, ErrNotStore)
	}
	if _, err := os.Stat(filepath.Join(dir, "index.json")); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("store %s: %w", dir, err)
	}
	if isTransferSet(dir) {
		return fmt.Errorf("%s is a transfer set (mirror_*.tar segments, airlock-transfer.json), not a store: "+
			"run `airlock archive extract %s file://STORE` first and serve STORE: %w", dir, dir, ErrNotStore)
	}
	return fmt.Errorf("%s has no index.json: %w; --from takes a store written by `airlock mirror` or `airlock archive extract`", dir, ErrNotStore)
}

// isTransferSet reports whether dir holds a transfer set's files (the
// names are those of internal/transfer, which imports store: kept literal
// here to stay independent of the archive code).
func isTransferSet(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, "airlock-transfer.json")); err == nil {
		return true
	}
	m, _ := filepath.Glob(filepath.Join(dir, "mirror_[0-9][0-9][0-9][0-9][0-9][0-9].tar"))
	return len(m) > 0
}

// Build reads dir's index.json and computes the layout. It fails only when
// the store cannot be read at all; missing or damaged blobs become Warnings
// and the rest is served.
func Build(dir string) (*Layout, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", dir, err)
	}
	if err := CheckDir(abs); err != nil {
		return nil, err
	}
	idxPath := filepath.Join(abs, "index.json")
	raw, err := os.ReadFile(idxPath)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", idxPath, err)
	}
	var idx v1.Index
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, fmt.Errorf("parsing %s: %w; the file is damaged, restore it from the transfer set or the mirror", idxPath, err)
	}
	b := &builder{
		l:      &Layout{dir: abs, files: map[string]*node{}, dirs: map[string][]string{}},
		pool:   filepath.Join(abs, "blobs", "sha256"),
		parsed: map[digest.Digest]*manifest{},
		done:   map[string]bool{},
		repos:  map[string]bool{},
		warned: map[string]bool{},
	}
	if fi, err := os.Stat(idxPath); err == nil {
		b.mod = fi.ModTime()
	}
	for i, e := range idx.Manifests {
		b.entry(i, e)
	}
	b.finish()
	return b.l, nil
}

// manifest is what the walk needs of a manifest or index.
type manifest struct {
	raw          []byte
	MediaType    string          `json:"mediaType"`
	ArtifactType string          `json:"artifactType"`
	Config       *v1.Descriptor  `json:"config"`
	Layers       []v1.Descriptor `json:"layers"`
	Manifests    []v1.Descriptor `json:"manifests"`
	Subject      *v1.Descriptor  `json:"subject"`
	Annotations  map[string]string
}

type builder struct {
	l      *Layout
	pool   string
	mod    time.Time
	parsed map[digest.Digest]*manifest // nil value: unreadable (already warned)
	done   map[string]bool             // repo + "@" + digest walked
	repos  map[string]bool
	warned map[string]bool
	blobs  int
	bytes  int64
}

func (b *builder) warn(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if !b.warned[msg] {
		b.warned[msg] = true
		b.l.Warnings = append(b.l.Warnings, msg)
	}
}

// entry serves one index.json entry: its name gives the repository and,
// for "REPO:TAG", the tag.
func (b *builder) entry(i int, e v1.Descriptor) {
	// The store writes both names alike; io.airlock.image.ref is preferred
	// because a layout copied by other tools may have had its
	// org.opencontainers.image.ref.name shortened to a bare tag.
	name := e.Annotations[store.AnnotationRef]
	if name == "" {
		name = e.Annotations[store.AnnotationRefName]
	}
	repo, tag, ok := splitName(name)
	if !ok {
		b.warn("index.json entry %d (%s): name %q is not REPO:TAG or REPO@DIGEST; not served", i, e.Digest, name)
		return
	}
	if _, err := reference.WithName(repo); err != nil {
		b.warn("index.json entry %d (%s): repository %q is not a valid registry repository name; not served", i, e.Digest, repo)
		return
	}
	if tag != "" && !tagRE.MatchString(tag) {
		b.warn("index.json entry %d: tag %q of %s is not a valid registry tag; not served", i, tag, repo)
		return
	}
	if err := e.Digest.Validate(); err != nil || e.Digest.Algorithm() != digest.SHA256 {
		b.warn("index.json entry %s: digest %q is not a sha256 digest; not served", name, e.Digest)
		return
	}
	if !b.walk(repo, e, name) {
		return
	}
	b.repos[repo] = true
	if tag != "" {
		tagDir := path.Join(storageRoot, "repositories", repo, "_manifests", "tags", tag)
		b.link(path.Join(tagDir, "current", "link"), e.Digest)
		b.link(path.Join(tagDir, "index", "sha256", e.Digest.Encoded(), "link"), e.Digest)
		b.l.Stats.Tags++
	}
}

// splitName splits "REPO:TAG" / "REPO@DIGEST" (tag "" for the latter).
func splitName(name string) (repo, tag string, ok bool) {
	if r, d, found := strings.Cut(name, "@"); found {
		if _, err := digest.Parse(d); err != nil || r == "" {
			return "", "", false
		}
		return r, "", true
	}
	i := strings.LastIndex(name, ":")
	if i <= 0 || i < strings.LastIndex(name, "/") || i == len(name)-1 {
		return "", "", false
	}
	return name[:i], name[i+1:], true
}

// walk makes manifest desc and everything it references visible in repo.
// via names the image for warnings. It reports whether desc itself can be
// served (its blob is present and sound).
func (b *builder) walk(repo string, desc v1.Descriptor, via string) bool {
	key := repo + "@" + desc.Digest.String()
	if done, seen := b.done[key]; seen {
		return done
	}
	b.done[key] = false // cycles: a manifest reached again while walked is not re-entered
	m := b.read(desc.Digest, via)
	if m == nil {
		return false
	}
	b.done[key] = true
	b.blob(desc.Digest, int64(len(m.raw)))
	b.link(path.Join(storageRoot, "repositories", repo, "_manifests", "revisions", "sha256", desc.Digest.Encoded(), "link"), desc.Digest)
	for _, c := range m.Manifests {
		if !b.present(c.Digest) {
			// Deliberate in a platform-filtered mirror (sparse index); the
			// registry already accepts sparse indexes on push.
			b.l.AbsentChildren++
			continue
		}
		b.walk(repo, c, fmt.Sprintf("%s (child %s)", via, c.Digest))
	}
	var layers []v1.Descriptor
	if m.Config != nil {
		layers = append(layers, *m.Config)
	}
	layers = append(layers, m.Layers...)
	for _, d := range layers {
		size, ok := b.stat(d.Digest)
		switch {
		case !ok && len(d.URLs) > 0:
			// A non-distributable layer: clients fetch it from its URLs.
		case !ok:
			b.warn("%s: blob %s (%s) referenced by manifest %s is missing from %s; pulls of this image fail on it",
				via, d.Digest, d.MediaType, desc.Digest, b.pool)
		case d.Size > 0 && size != d.Size:
			b.warn("%s: blob %s is %d bytes in the store, the manifest says %d; the store is damaged, copy the image again",
				via, d.Digest, size, d.Size)
		default:
			b.blob(d.Digest, size)
			b.link(path.Join(storageRoot, "repositories", repo, "_layers", "sha256", d.Digest.Encoded(), "link"), d.Digest)
		}
	}
	if m.Subject != nil && m.Subject.Digest.Validate() == nil {
		b.referrer(repo, m.Subject.Digest, desc.Digest, m)
	}
	return true
}

// referrer records the referrers-index entry ocicompat lists for subject,
// with the descriptor the referrers API returns (see ocicompat's
// referrerDescriptor: artifactType, else the config media type).
func (b *builder) referrer(repo string, subject, ref digest.Digest, m *manifest) {
	at := m.ArtifactType
	if at == "" && m.Config != nil {
		at = m.Config.MediaType
	}
	mt := m.MediaType
	if mt == "" {
		mt = sniff(m)
	}
	desc := v1.Descriptor{MediaType: mt, Digest: ref, Size: int64(len(m.raw)), ArtifactType: at, Annotations: m.Annotations}
	j, err := json.Marshal(desc)
	if err != nil {
		return // cannot happen: strings and maps only
	}
	p := path.Join(storageRoot, "repositories", repo, "_referrers", subject.Algorithm().String(), subject.Encoded(),
		ref.Algorithm().String()+"_"+ref.Encoded())
	if _, dup := b.l.files[p]; !dup {
		b.l.Stats.Referrers++
	}
	b.l.files[p] = &node{content: j, size: int64(len(j)), mod: b.mod}
}

func sniff(m *manifest) string {
	if m.Manifests != nil {
		return v1.MediaTypeImageIndex
	}
	return v1.MediaTypeImageManifest
}

// read reads and verifies a manifest blob once; nil (after a warning) when
// it is missing, damaged or not a manifest.
func (b *builder) read(d digest.Digest, via string) *manifest {
	if m, ok := b.parsed[d]; ok {
		return m
	}
	b.parsed[d] = nil
	p := filepath.Join(b.pool, d.Encoded())
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		b.warn("%s: manifest %s is missing from %s; not served", via, d, b.pool)
		return nil
	}
	if err != nil {
		b.warn("%s: manifest %s: %v; not served", via, d, err)
		return nil
	}
	raw, err := io.ReadAll(io.LimitReader(f, maxManifestSize+1))
	f.Close()
	if err != nil {
		b.warn("%s: reading manifest %s: %v; not served", via, d, err)
		return nil
	}
	if len(raw) > maxManifestSize {
		b.warn("%s: manifest %s is larger than %d bytes, not a manifest; not served", via, d, maxManifestSize)
		return nil
	}
	sum := sha256.Sum256(raw)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != d.String() {
		b.warn("%s: manifest %s in %s is corrupt (content hashes to %s); not served, copy the image again", via, d, b.pool, got)
		return nil
	}
	m := &manifest{raw: raw}
	if err := json.Unmarshal(raw, m); err != nil {
		b.warn("%s: manifest %s is not JSON (%v); not served", via, d, err)
		return nil
	}
	b.l.Stats.Manifests++
	b.parsed[d] = m
	return m
}

func (b *builder) present(d digest.Digest) bool {
	_, ok := b.stat(d)
	return ok
}

func (b *builder) stat(d digest.Digest) (int64, bool) {
	if d.Validate() != nil || d.Algorithm() != digest.SHA256 {
		return 0, false
	}
	fi, err := os.Stat(filepath.Join(b.pool, d.Encoded()))
	if err != nil || !fi.Mode().IsRegular() {
		return 0, false
	}
	return fi.Size(), true
}

// blob maps distribution's data path of d to the pool file.
func (b *builder) blob(d digest.Digest, size int64) {
	p := blobDataPath(d)
	if _, ok := b.l.files[p]; ok {
		return
	}
	file := filepath.Join(b.pool, d.Encoded())
	mod := b.mod
	if fi, err := os.Stat(file); err == nil {
		mod = fi.ModTime()
	}
	b.l.files[p] = &node{blob: file, size: size, mod: mod}
	b.blobs++
	b.bytes += size
}

// link adds a distribution link file: the digest as text, no newline, as
// distribution writes it.
func (b *builder) link(p string, d digest.Digest) {
	c := []byte(d.String())
	b.l.files[p] = &node{content: c, size: int64(len(c)), mod: b.mod}
}

func blobDataPath(d digest.Digest) string {
	enc := d.Encoded()
	return path.Join(storageRoot, "blobs", d.Algorithm().String(), enc[:2], enc, "data")
}

// finish derives the directory listing from the file paths.
func (b *builder) finish() {
	children := map[string]map[string]bool{}
	for p := range b.l.files {
		for p != "/" {
			parent := path.Dir(p)
			if children[parent] == nil {
				children[parent] = map[string]bool{}
			}
			if children[parent][p] {
				break // the rest of the chain is already recorded
			}
			children[parent][p] = true
			p = parent
		}
	}
	for d, c := range children {
		list := make([]string, 0, len(c))
		for p := range c {
			list = append(list, p)
		}
		sort.Strings(list)
		b.l.dirs[d] = list
	}
	b.l.Stats.Repositories = len(b.repos)
	b.l.Stats.Blobs = b.blobs
	b.l.Stats.Bytes = b.bytes
	slices.Sort(b.l.Warnings)
}
