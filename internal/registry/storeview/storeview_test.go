package storeview_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/factory"
	"github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/airlock-mirror/airlock/internal/registry/storeview"
	"github.com/airlock-mirror/airlock/internal/store"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

const root = "/docker/registry/v2"

// fixture is a store holding every shape the view must serve.
type fixture struct {
	dir string
	// multi is a two-platform index (mirror/ns/multi:v1), children its
	// platform manifests.
	multi    v1.Hash
	children []v1.Hash
	// app is a single image (mirror/ns/app:v1) with its layers.
	app       v1.Hash
	appLayers []v1.Hash
	// sig is a cosign-style signature, tag sha256-<app>.sig.
	sig    v1.Hash
	sigTag string
	// referrer is an OCI artifact whose subject is app, stored by digest.
	referrer v1.Hash
	// brokenLayer was deleted from the pool after mirror/ns/broken:v1 was
	// stored.
	broken      v1.Hash
	brokenLayer v1.Hash
	// sparse is an index (mirror/ns/sparse:v1) with one child absent.
	sparse v1.Hash
}

const referrerType = "application/vnd.example.sbom.v1+json"

func putImage(t *testing.T, s *store.Store, img v1.Image) (v1.Hash, []v1.Hash) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var digests []v1.Hash
	for _, l := range layers {
		d, _ := l.Digest()
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.WriteBlob(d.String(), -1, rc); err != nil {
			t.Fatal(err)
		}
		rc.Close()
		digests = append(digests, d)
	}
	cfg, _ := img.RawConfigFile()
	if _, err := s.PutBytes(cfg); err != nil {
		t.Fatal(err)
	}
	raw, _ := img.RawManifest()
	d, err := s.PutBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := v1.NewHash(d)
	return h, digests
}

func record(t *testing.T, s *store.Store, name string, raw []byte, mt types.MediaType) {
	t.Helper()
	d := sha(raw)
	ann := map[string]string{store.AnnotationRef: name}
	if err := s.Record(name, v1.Descriptor{MediaType: mt, Size: int64(len(raw)), Digest: d}, ann); err != nil {
		t.Fatal(err)
	}
}

func sha(b []byte) v1.Hash {
	h, _, _ := v1.SHA256(bytes.NewReader(b))
	return h
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir()}
	s, err := store.Open(f.dir)
	if err != nil {
		t.Fatal(err)
	}

	idx, err := synth.Index(7, []string{"linux/amd64", "linux/arm64"}, synth.WithOCI(), synth.WithLayerSize(300))
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	for _, c := range im.Manifests {
		img, err := idx.Image(c.Digest)
		if err != nil {
			t.Fatal(err)
		}
		d, _ := putImage(t, s, img)
		f.children = append(f.children, d)
	}
	raw, _ := idx.RawManifest()
	if _, err := s.PutBytes(raw); err != nil {
		t.Fatal(err)
	}
	f.multi = sha(raw)
	record(t, s, "mirror/ns/multi:v1", raw, types.OCIImageIndex)

	app, err := synth.Image(8, synth.WithLayers(2), synth.WithLayerSize(1000))
	if err != nil {
		t.Fatal(err)
	}
	f.app, f.appLayers = putImage(t, s, app)
	appRaw, _ := app.RawManifest()
	record(t, s, "mirror/ns/app:v1", appRaw, types.DockerManifestSchema2)

	sig, err := synth.Image(9, synth.WithOCI(), synth.WithLayerSize(50))
	if err != nil {
		t.Fatal(err)
	}
	f.sig, _ = putImage(t, s, sig)
	f.sigTag = "sha256-" + f.app.Hex + ".sig"
	sigRaw, _ := sig.RawManifest()
	record(t, s, "mirror/ns/app:"+f.sigTag, sigRaw, types.OCIManifestSchema1)

	// An OCI 1.1 artifact referring to app, as the engine stores one: by
	// digest, with the subject annotations.
	empty := []byte("{}")
	if _, err := s.PutBytes(empty); err != nil {
		t.Fatal(err)
	}
	sbom := []byte(`{"spdx":"fixture"}`)
	if _, err := s.PutBytes(sbom); err != nil {
		t.Fatal(err)
	}
	ref := map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"artifactType":  referrerType,
		"config":        map[string]any{"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha(empty).String(), "size": 2},
		"layers":        []any{map[string]any{"mediaType": "application/spdx+json", "digest": sha(sbom).String(), "size": len(sbom)}},
		"subject":       map[string]any{"mediaType": string(types.DockerManifestSchema2), "digest": f.app.String(), "size": len(appRaw)},
		"annotations":   map[string]string{"org.example.kind": "sbom"},
	}
	refRaw, _ := json.Marshal(ref)
	if _, err := s.PutBytes(refRaw); err != nil {
		t.Fatal(err)
	}
	f.referrer = sha(refRaw)
	name := "mirror/ns/app@" + f.referrer.String()
	if err := s.Record(name, v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: int64(len(refRaw)), Digest: f.referrer},
		map[string]string{store.AnnotationRef: name, store.AnnotationSubject: f.app.String(), store.AnnotationArtifactType: referrerType}); err != nil {
		t.Fatal(err)
	}

	broken, err := synth.Image(10, synth.WithLayerSize(64))
	if err != nil {
		t.Fatal(err)
	}
	var bl []v1.Hash
	f.broken, bl = putImage(t, s, broken)
	f.brokenLayer = bl[len(bl)-1]
	brokenRaw, _ := broken.RawManifest()
	record(t, s, "mirror/ns/broken:v1", brokenRaw, types.DockerManifestSchema2)
	if err := os.Remove(filepath.Join(f.dir, "blobs", "sha256", f.brokenLayer.Hex)); err != nil {
		t.Fatal(err)
	}

	// A sparse index: the arm64 child of multi is referenced, plus a child
	// that was filtered out and never stored.
	sparse := map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests": []any{
			map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": f.children[1].String(), "size": 1,
				"platform": map[string]string{"os": "linux", "architecture": "arm64"}},
			map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + strings.Repeat("ab", 32), "size": 1,
				"platform": map[string]string{"os": "linux", "architecture": "s390x"}},
		},
	}
	sparseRaw, _ := json.Marshal(sparse)
	if _, err := s.PutBytes(sparseRaw); err != nil {
		t.Fatal(err)
	}
	f.sparse = sha(sparseRaw)
	record(t, s, "mirror/ns/sparse:v1", sparseRaw, types.OCIImageIndex)
	return f
}

func build(t *testing.T, dir string) (*storeview.Layout, *storeview.Driver) {
	t.Helper()
	l, err := storeview.Build(dir)
	if err != nil {
		t.Fatal(err)
	}
	return l, storeview.New(l)
}

func content(t *testing.T, d storagedriver.StorageDriver, p string) string {
	t.Helper()
	b, err := d.GetContent(context.Background(), p)
	if err != nil {
		t.Fatalf("GetContent %s: %v", p, err)
	}
	return string(b)
}

func repoPath(repo string, parts ...string) string {
	return path.Join(append([]string{root, "repositories", repo}, parts...)...)
}

func blobPath(h v1.Hash) string {
	return path.Join(root, "blobs", "sha256", h.Hex[:2], h.Hex, "data")
}

// TestLayoutMapsStoreToDistributionPaths: every image of index.json is
// visible where distribution looks for it: tag links, revision links of
// the index and of its children, layer links, blob data equal to the pool
// files, and the referrers entries ocicompat lists.
func TestLayoutMapsStoreToDistributionPaths(t *testing.T) {
	f := newFixture(t)
	l, d := build(t, f.dir)
	ctx := context.Background()

	if got := content(t, d, repoPath("mirror/ns/multi", "_manifests/tags/v1/current/link")); got != f.multi.String() {
		t.Errorf("multi:v1 current link = %q, want %s", got, f.multi)
	}
	if got := content(t, d, repoPath("mirror/ns/multi", "_manifests/tags/v1/index/sha256", f.multi.Hex, "link")); got != f.multi.String() {
		t.Errorf("multi:v1 tag index link = %q", got)
	}
	for _, h := range append([]v1.Hash{f.multi}, f.children...) {
		if got := content(t, d, repoPath("mirror/ns/multi", "_manifests/revisions/sha256", h.Hex, "link")); got != h.String() {
			t.Errorf("revision link of %s = %q", h, got)
		}
		pool, err := os.ReadFile(filepath.Join(f.dir, "blobs", "sha256", h.Hex))
		if err != nil {
			t.Fatal(err)
		}
		if got := content(t, d, blobPath(h)); got != string(pool) {
			t.Errorf("blob data of %s differs from the pool file", h)
		}
	}
	// A child is served in its index's repository only.
	if _, err := d.Stat(ctx, repoPath("mirror/ns/app", "_manifests/revisions/sha256", f.children[0].Hex, "link")); !isNotFound(err) {
		t.Errorf("child of multi visible in app: %v", err)
	}
	for _, h := range f.appLayers {
		if got := content(t, d, repoPath("mirror/ns/app", "_layers/sha256", h.Hex, "link")); got != h.String() {
			t.Errorf("layer link of %s = %q", h, got)
		}
		fi, err := d.Stat(ctx, blobPath(h))
		if err != nil {
			t.Fatal(err)
		}
		pfi, _ := os.Stat(filepath.Join(f.dir, "blobs", "sha256", h.Hex))
		if fi.Size() != pfi.Size() || fi.IsDir() {
			t.Errorf("Stat of layer %s: size %d dir %v, pool file %d", h, fi.Size(), fi.IsDir(), pfi.Size())
		}
	}

	tags, err := d.List(ctx, repoPath("mirror/ns/app", "_manifests/tags"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{repoPath("mirror/ns/app", "_manifests/tags", f.sigTag), repoPath("mirror/ns/app", "_manifests/tags/v1")}
	if strings.Join(tags, ",") != strings.Join(want, ",") {
		t.Errorf("tags of app = %v, want %v", tags, want)
	}

	// The referrer: revision link (it is pullable by digest) and the
	// referrers entry with the descriptor the API lists.
	content(t, d, repoPath("mirror/ns/app", "_manifests/revisions/sha256", f.referrer.Hex, "link"))
	entry := content(t, d, repoPath("mirror/ns/app", "_referrers/sha256", f.app.Hex, "sha256_"+f.referrer.Hex))
	var desc struct {
		MediaType, ArtifactType string
		Digest                  string
		Size                    int64
		Annotations             map[string]string
	}
	if err := json.Unmarshal([]byte(entry), &desc); err != nil {
		t.Fatal(err)
	}
	if desc.Digest != f.referrer.String() || desc.ArtifactType != referrerType || desc.Annotations["org.example.kind"] != "sbom" ||
		desc.MediaType != "application/vnd.oci.image.manifest.v1+json" || desc.Size == 0 {
		t.Errorf("referrers entry = %s", entry)
	}

	// The catalog walk finds exactly the repositories.
	var repos []string
	err = d.Walk(ctx, root+"/repositories", func(fi storagedriver.FileInfo) error {
		if path.Base(fi.Path()) == "_manifests" {
			repos = append(repos, strings.TrimPrefix(path.Dir(fi.Path()), root+"/repositories/"))
			return storagedriver.ErrSkipDir
		}
		if strings.HasPrefix(path.Base(fi.Path()), "_") {
			return storagedriver.ErrSkipDir
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(repos, ","); got != "mirror/ns/app,mirror/ns/broken,mirror/ns/multi,mirror/ns/sparse" {
		t.Errorf("walk found repositories %s", got)
	}
	if l.Stats.Repositories != 4 || l.Stats.Tags != 5 || l.Stats.Referrers != 1 {
		t.Errorf("stats = %+v", l.Stats)
	}
}

// TestMissingBlobNamedAtBuild: a layer index.json reaches but the pool
// lacks is a warning naming it and its image; the image's other parts are
// still served, the missing one has no link (a 404, not a 500, later).
// The filtered-out child of a sparse index is counted, not warned.
func TestMissingBlobNamedAtBuild(t *testing.T) {
	f := newFixture(t)
	l, d := build(t, f.dir)
	if len(l.Warnings) != 1 {
		t.Fatalf("warnings = %q, want exactly the missing layer", l.Warnings)
	}
	w := l.Warnings[0]
	if !strings.Contains(w, f.brokenLayer.String()) || !strings.Contains(w, "mirror/ns/broken:v1") || !strings.Contains(w, "missing") {
		t.Errorf("warning %q does not name the missing blob and its image", w)
	}
	ctx := context.Background()
	if _, err := d.Stat(ctx, repoPath("mirror/ns/broken", "_layers/sha256", f.brokenLayer.Hex, "link")); !isNotFound(err) {
		t.Errorf("missing layer still linked: %v", err)
	}
	if _, err := d.Stat(ctx, blobPath(f.brokenLayer)); !isNotFound(err) {
		t.Errorf("missing layer has blob data: %v", err)
	}
	content(t, d, repoPath("mirror/ns/broken", "_manifests/tags/v1/current/link"))
	if l.AbsentChildren != 1 {
		t.Errorf("AbsentChildren = %d, want 1 (the sparse index's filtered child)", l.AbsentChildren)
	}
	content(t, d, repoPath("mirror/ns/sparse", "_manifests/revisions/sha256", f.children[1].Hex, "link"))

	// A manifest that is damaged (bytes changed) is not served at all.
	p := filepath.Join(f.dir, "blobs", "sha256", f.app.Hex)
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(`{"schemaVersion":2}`), 0o644); err != nil {
		t.Fatal(err)
	}
	l, d = build(t, f.dir)
	found := false
	for _, w := range l.Warnings {
		found = found || strings.Contains(w, f.app.String()) && strings.Contains(w, "corrupt")
	}
	if !found {
		t.Errorf("damaged manifest not reported: %q", l.Warnings)
	}
	if _, err := d.Stat(ctx, repoPath("mirror/ns/app", "_manifests/tags/v1/current/link")); !isNotFound(err) {
		t.Errorf("tag of a damaged manifest still served: %v", err)
	}
}

func isNotFound(err error) bool {
	var nf storagedriver.PathNotFoundError
	return errors.As(err, &nf)
}

// TestDriverRefusesWrites: every write method fails with ErrReadOnly and
// the store directory is unchanged.
func TestDriverRefusesWrites(t *testing.T) {
	f := newFixture(t)
	_, d := build(t, f.dir)
	before := snapshot(t, f.dir)
	ctx := context.Background()
	p := repoPath("mirror/ns/app", "_manifests/tags/v1/current/link")
	errs := map[string]error{
		"PutContent": d.PutContent(ctx, p, []byte("x")),
		"Move":       d.Move(ctx, p, p+"2"),
		"Delete":     d.Delete(ctx, repoPath("mirror/ns/app")),
	}
	_, errs["Writer"] = d.Writer(ctx, root+"/repositories/x/_uploads/u/data", false)
	for op, err := range errs {
		if !errors.Is(err, storeview.ErrReadOnly) {
			t.Errorf("%s: err = %v, want ErrReadOnly", op, err)
		}
	}
	if after := snapshot(t, f.dir); after != before {
		t.Errorf("store changed:\nbefore %s\nafter  %s", before, after)
	}
}

// snapshot lists every file of dir with its size, mode and mtime.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		b.WriteString(p + " " + fi.Mode().String() + " " + fi.ModTime().String() + " " + strconv.FormatInt(fi.Size(), 10) + "\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestReaderSeeksInPool: Reader starts at the offset (range requests,
// resumed pulls), reads nothing at the end, refuses beyond it.
func TestReaderSeeksInPool(t *testing.T) {
	f := newFixture(t)
	_, d := build(t, f.dir)
	ctx := context.Background()
	h := f.appLayers[0]
	pool, err := os.ReadFile(filepath.Join(f.dir, "blobs", "sha256", h.Hex))
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{0, 17, int64(len(pool))} {
		rc, err := d.Reader(ctx, blobPath(h), off)
		if err != nil {
			t.Fatalf("Reader at %d: %v", off, err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, pool[off:]) {
			t.Errorf("Reader at %d: %d bytes (%v), want %d", off, len(got), err, len(pool)-int(off))
		}
	}
	var inv storagedriver.InvalidOffsetError
	if _, err := d.Reader(ctx, blobPath(h), int64(len(pool))+1); !errors.As(err, &inv) {
		t.Errorf("Reader past the end: %v, want InvalidOffsetError", err)
	}
	link := repoPath("mirror/ns/app", "_layers/sha256", h.Hex, "link")
	rc, err := d.Reader(ctx, link, 7)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	if string(got) != h.String()[7:] {
		t.Errorf("Reader of a link at 7 = %q", got)
	}
	if _, err := d.Reader(ctx, root+"/nothing", 0); !isNotFound(err) {
		t.Errorf("Reader of a missing path: %v", err)
	}
	if _, err := d.List(ctx, root+"/nothing"); !isNotFound(err) {
		t.Errorf("List of a missing path: %v", err)
	}
}

// TestCheckDirSaysWhatToDo: a transfer set, an empty directory and a
// missing one are refused with the reason.
func TestCheckDirSaysWhatToDo(t *testing.T) {
	set := t.TempDir()
	for _, n := range []string{"mirror_000001.tar", "airlock-transfer.json"} {
		if err := os.WriteFile(filepath.Join(set, n), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cases := map[string]string{
		set:                                   "run `airlock archive extract",
		t.TempDir():                           "has no index.json",
		filepath.Join(t.TempDir(), "missing"): "no such file",
	}
	for dir, want := range cases {
		err := storeview.CheckDir(dir)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), dir) {
			t.Errorf("CheckDir(%s) = %v, want it to name the path and say %q", dir, err, want)
		}
	}
	if _, err := storeview.Build(set); err == nil {
		t.Error("Build of a transfer set succeeded")
	}
	// An extracted set keeps its segments beside the store: it is a store.
	f := newFixture(t)
	if err := os.WriteFile(filepath.Join(f.dir, "mirror_000001.tar"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := storeview.CheckDir(f.dir); err != nil {
		t.Errorf("extracted set refused: %v", err)
	}
}

// TestFactoryCreates: distribution creates the driver by name, from a
// directory or from a built layout.
func TestFactoryCreates(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	d, err := factory.Create(ctx, storeview.DriverName, map[string]any{storeview.ParamDir: f.dir})
	if err != nil {
		t.Fatal(err)
	}
	content(t, d, repoPath("mirror/ns/app", "_manifests/tags/v1/current/link"))
	l, _ := build(t, f.dir)
	d, err = factory.Create(ctx, storeview.DriverName, map[string]any{storeview.ParamLayout: l})
	if err != nil {
		t.Fatal(err)
	}
	content(t, d, repoPath("mirror/ns/multi", "_manifests/tags/v1/current/link"))
	if _, err := factory.Create(ctx, storeview.DriverName, map[string]any{}); err == nil {
		t.Error("factory without parameters succeeded")
	}
}
