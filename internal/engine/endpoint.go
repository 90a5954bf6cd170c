package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/store"
)

// endpoint is one repository on some transport: a registry repository, a
// repository of the local store, or a plain OCI layout.
type endpoint interface {
	// location identifies where blobs are shared: a registry host, or a
	// store directory. Dedup and mounts work within one location.
	location() string
	// repoName is the repository (registry path; store repo; "" for oci).
	repoName() string
	String() string

	getManifest(ctx context.Context, reference string) (data []byte, mediaType string, err error)
	headManifest(ctx context.Context, reference string) (manifestInfo, bool, error)
	// putManifest stores a manifest by digest (children and parents); a
	// registry endpoint also takes a tag (stored and tagged at once).
	putManifest(ctx context.Context, reference string, data []byte, mediaType string) error
	// name points tag (or, when tag is "", a digest-only name) at a stored
	// top-level manifest. source is the full reference it came from.
	name(ctx context.Context, tag string, desc v1.Descriptor, data []byte, source string) error

	hasBlob(ctx context.Context, digest string) (bool, error)
	// tags lists the repository's tags (cosign's tag-style signatures are
	// found there).
	tags(ctx context.Context) ([]string, error)
	// referrers lists the manifests whose subject is digest (OCI 1.1
	// referrers: signatures, SBOMs, attestations). tags is the
	// repository's tag list when known (nil otherwise): a registry without
	// the referrers API is only asked for the fallback tag when it exists.
	referrers(ctx context.Context, digest string, tags map[string]bool) ([]v1.Descriptor, error)
	// openBlob reads a blob from offset; start is where the returned body
	// actually begins (0 when the source cannot seek).
	openBlob(ctx context.Context, digest string, offset int64) (body io.ReadCloser, start int64, err error)
}

// endpointFor opens the endpoint of r.
func (e *Engine) endpointFor(ctx context.Context, r ref.Ref) (endpoint, error) {
	switch r.Transport {
	case ref.Docker, "":
		c, err := e.hosts.get(ctx, r.Registry)
		if err != nil {
			return nil, err
		}
		return &registryEndpoint{c: c, repo: r.Path}, nil
	case ref.File:
		dir, repo, err := e.storePath(r)
		if err != nil {
			return nil, err
		}
		s, err := e.openStore(dir)
		if err != nil {
			return nil, err
		}
		return &storeEndpoint{s: s, repo: repo}, nil
	case ref.OCI:
		s, err := e.openStore(r.Path)
		if err != nil {
			return nil, err
		}
		return &storeEndpoint{s: s, repo: "", plain: true}, nil
	}
	return nil, fmt.Errorf("%s: unsupported transport %q", r, r.Transport)
}

// storePath maps a file:// reference to (store directory, repository); see
// the package comment.
func (e *Engine) storePath(r ref.Ref) (dir, repo string, err error) {
	if e.opts.StoreDir != "" {
		return e.opts.StoreDir, r.Path, nil
	}
	d, rest, ok := strings.Cut(r.Path, "/")
	if !ok || rest == "" {
		return "", "", fmt.Errorf("%s: no store directory: write file://DIR/REPO[:TAG] or set the store directory (--dir)", r)
	}
	return d, rest, nil
}

func (e *Engine) openStore(dir string) (*store.Store, error) {
	key := filepath.Clean(dir)
	if s, ok := e.stores.Load(key); ok {
		return s.(*store.Store), nil
	}
	// One Open at a time: concurrent first uses must not race to create
	// the layout.
	e.storeMu.Lock()
	defer e.storeMu.Unlock()
	if s, ok := e.stores.Load(key); ok {
		return s.(*store.Store), nil
	}
	s, err := store.Open(dir)
	if err != nil {
		return nil, err
	}
	e.stores.Store(key, s)
	return s, nil
}

// registryEndpoint is a repository of a registry.
type registryEndpoint struct {
	c    *hostClient
	repo string
}

func (r *registryEndpoint) location() string { return "docker://" + r.c.host }
func (r *registryEndpoint) repoName() string { return r.repo }
func (r *registryEndpoint) String() string   { return r.c.host + "/" + r.repo }

func (r *registryEndpoint) getManifest(ctx context.Context, reference string) ([]byte, string, error) {
	return r.c.getManifest(ctx, r.repo, reference)
}

func (r *registryEndpoint) headManifest(ctx context.Context, reference string) (manifestInfo, bool, error) {
	return r.c.headManifest(ctx, r.repo, reference)
}

func (r *registryEndpoint) putManifest(ctx context.Context, reference string, data []byte, mediaType string) error {
	ack, err := r.c.putManifestAck(ctx, r.repo, reference, data, mediaType)
	if err != nil || ack {
		return err
	}
	subject, artifactType := subjectOf(data)
	if subject == "" {
		return nil
	}
	return r.addToReferrersTag(ctx, subject, v1.Descriptor{MediaType: types.MediaType(mediaType), Size: int64(len(data)),
		Digest: hashOf(digestOf(data)), ArtifactType: artifactType, Annotations: annotationsOf(data)})
}

// addToReferrersTag keeps the OCI referrers tag schema for a registry that
// did not index a pushed manifest's subject (no OCI-Subject in its answer:
// distribution, docker-registry 2.8): the index at tag sha256-<hex of the
// subject> lists the referrer, so cosign, oras and airlock itself find it
// there. The tag is oc-mirror's name for a digest-only image too: when it
// already holds a manifest that is not an index, it is left alone and the
// referrer is reachable by digest only.
func (r *registryEndpoint) addToReferrersTag(ctx context.Context, subject string, desc v1.Descriptor) error {
	tag := strings.Replace(subject, ":", "-", 1)
	mu, _ := r.c.fallbackMu.LoadOrStore(r.repo+"@"+subject, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	im := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	data, _, err := r.c.getManifest(ctx, r.repo, tag)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return fmt.Errorf("reading referrers tag %s:%s: %w", r, tag, err)
	default:
		var old v1.IndexManifest
		if json.Unmarshal(data, &old) != nil || !old.MediaType.IsIndex() || digestOf(data) == subject {
			r.c.e.log.Warn("referrers tag holds an image: referrer reachable by digest only", "repository", r.String(), "tag", tag, "referrer", desc.Digest.String())
			return nil
		}
		for _, m := range old.Manifests {
			if m.Digest == desc.Digest {
				return nil
			}
		}
		im.Manifests = old.Manifests
	}
	im.Manifests = append(im.Manifests, desc)
	out, err := json.Marshal(im)
	if err != nil {
		return err
	}
	if err := r.c.putManifest(ctx, r.repo, tag, out, string(types.OCIImageIndex)); err != nil {
		return fmt.Errorf("writing referrers tag %s:%s: %w", r, tag, err)
	}
	return nil
}

// annotationsOf reads a manifest's annotations (a referrers index carries
// them, so clients filter without fetching each referrer).
func annotationsOf(data []byte) map[string]string {
	var m struct {
		Annotations map[string]string `json:"annotations"`
	}
	json.Unmarshal(data, &m)
	return m.Annotations
}

func (r *registryEndpoint) name(ctx context.Context, tag string, desc v1.Descriptor, data []byte, _ string) error {
	if tag == "" {
		return nil // pushed by digest already
	}
	return r.c.putManifest(ctx, r.repo, tag, data, string(desc.MediaType))
}

func (r *registryEndpoint) tags(ctx context.Context) ([]string, error) {
	return r.c.listTags(ctx, r.repo)
}

// referrers asks the referrers API and, on a registry without it, reads
// the referrers tag schema's index (tag sha256-<hex>). That tag is also
// oc-mirror's name for a digest-only image: a manifest there that hashes
// to the subject itself is that image, not a referrers index.
func (r *registryEndpoint) referrers(ctx context.Context, digest string, tags map[string]bool) ([]v1.Descriptor, error) {
	descs, supported, err := r.c.referrers(ctx, r.repo, digest)
	if err != nil || supported {
		return descs, err
	}
	fallback := strings.Replace(digest, ":", "-", 1)
	if tags != nil && !tags[fallback] {
		return nil, nil
	}
	data, _, err := r.c.getManifest(ctx, r.repo, fallback)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, nil
		}
		return nil, err
	}
	if digestOf(data) == digest {
		return nil, nil
	}
	var im v1.IndexManifest
	if err := json.Unmarshal(data, &im); err != nil || !im.MediaType.IsIndex() {
		return nil, nil
	}
	return im.Manifests, nil
}

func (r *registryEndpoint) hasBlob(ctx context.Context, digest string) (bool, error) {
	return r.c.hasBlob(ctx, r.repo, digest)
}

func (r *registryEndpoint) openBlob(ctx context.Context, digest string, offset int64) (io.ReadCloser, int64, error) {
	return r.c.getBlob(ctx, r.repo, digest, offset)
}

// storeEndpoint is a repository of the local store, or a plain OCI layout
// (plain: images are named by tag only).
type storeEndpoint struct {
	s     *store.Store
	repo  string
	plain bool
}

func (s *storeEndpoint) location() string { return "store:" + filepath.Clean(s.s.Dir()) }
func (s *storeEndpoint) repoName() string { return s.repo }
func (s *storeEndpoint) String() string {
	if s.plain {
		return "oci://" + s.s.Dir()
	}
	return "file://" + s.s.Dir() + "/" + s.repo
}

// entryName is the index.json name of tag or digest in this endpoint.
func (s *storeEndpoint) entryName(reference string) string {
	sep := ":"
	if strings.HasPrefix(reference, "sha256:") || strings.HasPrefix(reference, "sha512:") {
		sep = "@"
	}
	if s.plain {
		if sep == "@" {
			return "@" + reference
		}
		return reference
	}
	return s.repo + sep + reference
}

func (s *storeEndpoint) lookup(reference string) (v1.Descriptor, error) {
	d, err := s.s.Lookup(s.entryName(reference))
	if err != nil && errors.Is(err, store.ErrNotFound) {
		// A child manifest of an index has no entry of its own: accept any
		// stored manifest blob by digest.
		if strings.HasPrefix(reference, "sha256:") {
			if size, ok := s.s.HasBlob(reference); ok {
				return v1.Descriptor{Digest: v1.Hash{Algorithm: "sha256", Hex: reference[7:]}, Size: size}, nil
			}
		}
		// An untagged oci://DIR (resolved as latest) in a layout of one
		// image is that image, as containers/image reads "oci:DIR": what
		// `skopeo copy ... oci:DIR` writes, and what oc-mirror configs name
		// as catalog: oci://DIR.
		if s.plain && reference == "latest" {
			if im, ierr := s.s.Index(); ierr == nil && len(im.Manifests) == 1 {
				return im.Manifests[0], nil
			}
		}
		return v1.Descriptor{}, fmt.Errorf("%s: %w", err.Error(), ErrNotFound)
	}
	return d, err
}

func (s *storeEndpoint) getManifest(_ context.Context, reference string) ([]byte, string, error) {
	d, err := s.lookup(reference)
	if err != nil {
		return nil, "", err
	}
	b, err := s.s.ReadBlob(d.Digest.String())
	if err != nil {
		return nil, "", err
	}
	mt := string(d.MediaType)
	if mt == "" {
		mt = sniffMediaType(b)
	}
	return b, mt, nil
}

func (s *storeEndpoint) headManifest(_ context.Context, reference string) (manifestInfo, bool, error) {
	d, err := s.lookup(reference)
	if errors.Is(err, ErrNotFound) {
		return manifestInfo{}, false, nil
	}
	if err != nil {
		return manifestInfo{}, false, err
	}
	return manifestInfo{Digest: d.Digest.String(), MediaType: string(d.MediaType), Size: d.Size}, true, nil
}

func (s *storeEndpoint) putManifest(_ context.Context, digest string, data []byte, _ string) error {
	got, err := s.s.PutBytes(data)
	if err != nil {
		return err
	}
	if got != digest {
		return fmt.Errorf("manifest hashes to %s, want %s", got, digest)
	}
	return nil
}

func (s *storeEndpoint) name(_ context.Context, tag string, desc v1.Descriptor, data []byte, source string) error {
	ann := map[string]string{}
	if source != "" {
		ann[store.AnnotationSource] = source
	}
	var n string
	switch {
	case s.plain && tag == "":
		n = "" // unnamed entry, found by digest
	case s.plain:
		n = tag
	case tag == "":
		n = s.repo + "@" + desc.Digest.String()
	default:
		n = s.repo + ":" + tag
	}
	if !s.plain {
		ann[store.AnnotationRef] = n
	}
	// A referrer: remembered with its subject so the store answers the
	// referrers query of a later copy out of it (disk-to-mirror).
	if subject, artifactType := subjectOf(data); subject != "" {
		ann[store.AnnotationSubject] = subject
		if artifactType != "" {
			ann[store.AnnotationArtifactType] = artifactType
		}
	}
	return s.s.Record(n, desc, ann)
}

func (s *storeEndpoint) tags(context.Context) ([]string, error) { return s.s.Tags(s.repo) }

func (s *storeEndpoint) referrers(_ context.Context, digest string, _ map[string]bool) ([]v1.Descriptor, error) {
	return s.s.Referrers(s.repo, digest)
}

func (s *storeEndpoint) hasBlob(_ context.Context, digest string) (bool, error) {
	_, ok := s.s.HasBlob(digest)
	return ok, nil
}

func (s *storeEndpoint) openBlob(_ context.Context, digest string, offset int64) (io.ReadCloser, int64, error) {
	f, _, err := s.s.OpenBlob(digest)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, 0, fmt.Errorf("%s: %w", err.Error(), ErrNotFound)
		}
		return nil, 0, err
	}
	if offset > 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			f.Close()
			return nil, 0, fmt.Errorf("seeking blob %s: %w", digest, err)
		}
	}
	return f, offset, nil
}

// sniffMediaType reads the mediaType field of a manifest, falling back on
// its shape (OCI manifests may omit the field).
func sniffMediaType(b []byte) string {
	var m struct {
		MediaType     string          `json:"mediaType"`
		SchemaVersion int             `json:"schemaVersion"`
		Manifests     json.RawMessage `json:"manifests"`
		Layers        json.RawMessage `json:"layers"`
		FSLayers      json.RawMessage `json:"fsLayers"`
	}
	if json.Unmarshal(b, &m) != nil {
		return ""
	}
	switch {
	case m.MediaType != "":
		return m.MediaType
	case m.SchemaVersion == 1 || m.FSLayers != nil:
		return string(types.DockerManifestSchema1)
	case m.Manifests != nil:
		return string(types.OCIImageIndex)
	default:
		return string(types.OCIManifestSchema1)
	}
}
