package engine

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/store"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

// TestRegistryToStoreToRegistry mirrors to disk and back (oc's --dir /
// --from-dir workflow): digests survive, the two images share their base
// layer in the one blob pool, and skopeo reads the store as an OCI layout.
func TestRegistryToStoreToRegistry(t *testing.T) {
	src := regtest.Start(t)
	dst := regtest.Start(t)
	base := synth.Layer(99, 4096)
	img, _ := synth.Image(31, synth.WithBase(base))
	idx, _ := synth.Index(32, []string{"linux/amd64", "linux/arm64", "linux/s390x"}, synth.WithBase(base))
	dImg := push(t, img, src.Host+"/ns/app:v1")
	dIdx := push(t, idx, src.Host+"/ns/multi:v2")
	// skopeo 1.9.3 reads only OCI media types from index.json.
	ociIdx, _ := synth.Index(33, []string{"linux/amd64", "linux/arm64"}, synth.WithBase(base), synth.WithOCI())
	dOCI := push(t, ociIdx, src.Host+"/ns/oci:v3")
	ociImg, _ := synth.Image(34, synth.WithBase(base), synth.WithOCI())
	dOCIImg := push(t, ociImg, src.Host+"/ns/ociimg:v4")
	storeDir := filepath.Join(t.TempDir(), "mirror")

	toDisk := plan.Plan{Items: []plan.Item{
		{Source: mustRef(t, src.Host+"/ns/app:v1"), Dests: []ref.Ref{mustRef(t, "file://ns/app:v1")}},
		{Source: mustRef(t, src.Host+"/ns/multi:v2"), Dests: []ref.Ref{mustRef(t, "file://ns/multi:v2")}},
		{Source: mustRef(t, src.Host+"/ns/oci:v3"), Dests: []ref.Ref{mustRef(t, "file://ns/oci:v3")}},
		{Source: mustRef(t, src.Host+"/ns/ociimg:v4"), Dests: []ref.Ref{mustRef(t, "file://ns/ociimg:v4")}},
		// by digest only: recorded as REPO@DIGEST
		{Source: mustRef(t, src.Host+"/ns/app@"+dImg), Dests: []ref.Ref{mustRef(t, "file://other/app")}},
	}}
	e := newTestEngine(t, nil, func(o *Options) { o.StoreDir = storeDir })
	rep, err := e.Run(context.Background(), toDisk)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Stats.BlobsCopied == 0 {
		t.Fatalf("nothing copied: %+v", rep.Stats)
	}

	s, err := store.Open(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"ns/app:v1": dImg, "ns/multi:v2": dIdx, "other/app@" + dImg: dImg} {
		d, err := s.Lookup(name)
		if err != nil {
			t.Fatalf("store entry %s: %v", name, err)
		}
		if d.Digest.String() != want {
			t.Errorf("store %s = %s, want %s", name, d.Digest, want)
		}
		if !strings.Contains(d.Annotations[store.AnnotationSource], src.Host+"/ns/") {
			t.Errorf("store %s: source annotation %q", name, d.Annotations[store.AnnotationSource])
		}
	}
	// The base layer is stored once for all images (one pool).
	bp, _ := s.BlobPath(mustDigest(t, base))
	if _, err := os.Stat(bp); err != nil {
		t.Errorf("base layer not in pool: %v", err)
	}

	// skopeo reads the store (oci:DIR:NAME) and reports the same digest.
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Fatalf("skopeo is required for this test (apt-get install skopeo): %v", err)
	}
	out, err := exec.Command(skopeo, "inspect", "--raw", "oci:"+storeDir+":ns/oci:v3").Output()
	if err != nil {
		t.Fatalf("skopeo inspect: %v", exitErr(err))
	}
	if got := digestOf(out); got != dOCI {
		t.Errorf("skopeo inspect --raw: digest %s, want %s", got, dOCI)
	}
	// skopeo copies an image out of the store, keeping its digest. (Not an
	// index: skopeo 1.9.3 re-serialises OCI indexes and then refuses
	// --preserve-digests, whatever layout they come from.)
	cmd := exec.Command(skopeo, "copy", "--preserve-digests", "--dest-tls-verify=false",
		"oci:"+storeDir+":ns/ociimg:v4", "docker://"+dst.Host+"/skopeo/ociimg:v4")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy from store: %v\n%s", err, out)
	}
	if got := headDigest(t, dst.Host+"/skopeo/ociimg:v4"); got != dOCIImg {
		t.Errorf("skopeo copy from store: %s, want %s", got, dOCIImg)
	}

	// go-containerregistry's layout package (crane's) reads Docker media
	// types too, through Image/Index.
	ii, err := e.Index(context.Background(), mustRef(t, "file://ns/multi:v2"))
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := ii.Digest(); h.String() != dIdx {
		t.Errorf("Index digest %s, want %s", h, dIdx)
	}
	im, err := e.Image(context.Background(), mustRef(t, "file://ns/app:v1"))
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := im.Digest(); h.String() != dImg {
		t.Errorf("Image digest %s, want %s", h, dImg)
	}

	// Disk -> registry with a fresh engine (the disconnected side).
	fromDisk := plan.Plan{Items: []plan.Item{
		{Source: mustRef(t, "file://ns/app:v1"), Dests: []ref.Ref{mustRef(t, dst.Host+"/m/app:v1")}},
		{Source: mustRef(t, "file://ns/multi:v2"), Dests: []ref.Ref{mustRef(t, dst.Host+"/m/multi:v2")}},
	}}
	e2 := newTestEngine(t, nil, func(o *Options) { o.StoreDir = storeDir })
	if _, err := e2.Run(context.Background(), fromDisk); err != nil {
		t.Fatal(err)
	}
	for r, want := range map[string]string{dst.Host + "/m/app:v1": dImg, dst.Host + "/m/multi:v2": dIdx} {
		if got := headDigest(t, r); got != want {
			t.Errorf("%s = %s, want %s", r, got, want)
		}
		validateRemote(t, r)
	}

	// A re-run to disk writes no blob.
	rep, err = newTestEngine(t, nil, func(o *Options) { o.StoreDir = storeDir }).Run(context.Background(), toDisk)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Stats.BlobsCopied != 0 || rep.Stats.Bytes != 0 {
		t.Errorf("re-run to disk copied %d blobs, %d bytes", rep.Stats.BlobsCopied, rep.Stats.Bytes)
	}
}

func TestFileRefWithoutStoreDirUsesFirstComponent(t *testing.T) {
	src := regtest.Start(t)
	img, _ := synth.Image(41)
	d := push(t, img, src.Host+"/a/b:v1")
	wd := t.TempDir()
	t.Chdir(wd)
	e := newTestEngine(t, nil, nil)
	if _, err := e.Run(context.Background(), plan.Plan{Items: []plan.Item{
		{Source: mustRef(t, src.Host+"/a/b:v1"), Dests: []ref.Ref{mustRef(t, "file://disk/a/b:v1")}}}}); err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(filepath.Join(wd, "disk"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Lookup("a/b:v1"); err != nil || got.Digest.String() != d {
		t.Fatalf("Lookup = %v, %v", got.Digest, err)
	}
	// A single component has no repository: a clear error.
	_, err = e.Resolve(context.Background(), mustRef(t, "file://justone:v1"))
	if err == nil || !strings.Contains(err.Error(), "--dir") {
		t.Errorf("Resolve(file://justone) = %v, want a hint about --dir", err)
	}
}

// TestOCILayoutDestinationIsReadableBySkopeo writes a plain oci:// layout
// (images named by tag only) and reads it with skopeo.
func TestOCILayoutDestinationIsReadableBySkopeo(t *testing.T) {
	src := regtest.Start(t)
	// OCI media types: skopeo 1.9.3 reads only those from index.json
	// (newer containers/image also reads Docker ones).
	idx, _ := synth.Index(51, []string{"linux/amd64", "linux/arm64"}, synth.WithOCI())
	d := push(t, idx, src.Host+"/a/b:v1")
	dir := filepath.Join(t.TempDir(), "layout")
	e := newTestEngine(t, nil, nil)
	if _, err := e.Run(context.Background(), plan.Plan{Items: []plan.Item{
		{Source: mustRef(t, src.Host+"/a/b:v1"), Dests: []ref.Ref{mustRef(t, "oci://"+dir+":v1")}}}}); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("skopeo", "inspect", "--raw", "oci:"+dir+":v1").Output()
	if err != nil {
		ij, _ := os.ReadFile(filepath.Join(dir, "index.json"))
		t.Fatalf("skopeo inspect: %v\nindex.json: %s", exitErr(err), ij)
	}
	if got := digestOf(out); got != d {
		t.Errorf("skopeo sees %s, want %s", got, d)
	}
	var im struct {
		Manifests []json.RawMessage `json:"manifests"`
	}
	json.Unmarshal(out, &im)
	if len(im.Manifests) != 2 {
		t.Errorf("index has %d children", len(im.Manifests))
	}
	desc, err := e.Resolve(context.Background(), mustRef(t, "oci://"+dir+":v1"))
	if err != nil || desc.Digest.String() != d {
		t.Errorf("Resolve(oci) = %v, %v", desc.Digest, err)
	}
}

// TestCorruptStoreBlobIsNeverCopied damages a layer in the store: copying
// out must fail naming the digest, and the destination must not get it.
func TestCorruptStoreBlobIsNeverCopied(t *testing.T) {
	src := regtest.Start(t)
	dst := regtest.Start(t)
	img, _ := synth.Image(61, synth.WithLayers(1), synth.WithLayerSize(64<<10))
	push(t, img, src.Host+"/a/b:v1")
	storeDir := t.TempDir() + "/s"
	e := newTestEngine(t, nil, func(o *Options) { o.StoreDir = storeDir })
	if _, err := e.Run(context.Background(), plan.Plan{Items: []plan.Item{
		{Source: mustRef(t, src.Host+"/a/b:v1"), Dests: []ref.Ref{mustRef(t, "file://a/b:v1")}}}}); err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	s, _ := store.Open(storeDir)
	p, _ := s.BlobPath(ld.String())
	b, _ := os.ReadFile(p)
	b[len(b)/2] ^= 0xff
	os.WriteFile(p, b, 0o644)

	e2 := newTestEngine(t, nil, func(o *Options) { o.StoreDir = storeDir; o.RetryTimes = 1 })
	_, err := e2.Run(context.Background(), plan.Plan{Items: []plan.Item{
		{Source: mustRef(t, "file://a/b:v1"), Dests: []ref.Ref{mustRef(t, dst.Host+"/a/b:v1")}}}})
	if err == nil || !strings.Contains(err.Error(), ld.String()) || !strings.Contains(err.Error(), "hashes to") {
		t.Fatalf("err = %v, want a digest mismatch naming %s", err, ld)
	}
	c, err := (&hostPool{e: e2, hosts: map[string]*hostEntry{}, lims: map[string]*hostLimit{}}).get(context.Background(), dst.Host)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := c.hasBlob(context.Background(), "a/b", ld.String()); err != nil || ok {
		t.Errorf("corrupt blob reached the destination (present=%v, err=%v)", ok, err)
	}
}

func mustDigest(t testing.TB, x interface {
	Digest() (v1.Hash, error)
}) string {
	t.Helper()
	h, err := x.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

func exitErr(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return err.Error() + ": " + string(ee.Stderr)
	}
	return err.Error()
}
