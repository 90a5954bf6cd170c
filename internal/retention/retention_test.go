package retention_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/blang/semver/v4"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/airlock-mirror/airlock/internal/catalog"
	"github.com/airlock-mirror/airlock/internal/catalogimage"
	"github.com/airlock-mirror/airlock/internal/engine"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/testutil/clitest"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

func TestMain(m *testing.M) { os.Exit(clitest.Main(m)) }

type pruneJSON struct {
	Decision struct {
		Delete []struct {
			Repository, Digest string
			Tags               []string
		}
		FreedBytes int64
		Catalogs   []struct{ Catalog string }
		Releases   []struct {
			Version string
			Keep    bool
		}
	}
	Applied *struct{ ManifestsDeleted int }
	GC      *struct {
		Blobs     int
		BlobBytes int64
	}
}

func prune(t *testing.T, args ...string) pruneJSON {
	t.Helper()
	out, errOut, err := clitest.Run(t, append([]string{"registry", "prune", "-o", "json"}, args...)...)
	if err != nil {
		t.Fatalf("prune %v: %v\n%s%s", args, err, out, errOut)
	}
	var p pruneJSON
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return p
}

func stop(t *testing.T, reg *regtest.Registry) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := reg.Server.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

func exists(t *testing.T, reg *regtest.Registry, reference string) bool {
	t.Helper()
	r, err := name.ParseReference(reg.Ref(reference), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	_, err = remote.Head(r, remote.WithTransport(reg.Transport))
	if err == nil {
		return true
	}
	if te, ok := err.(*transport.Error); ok && te.StatusCode == http.StatusNotFound {
		return false
	}
	t.Fatalf("HEAD %s: %v", reference, err)
	return false
}

func size(t *testing.T, img v1.Image) int64 {
	m, _ := img.Manifest()
	raw, _ := img.RawManifest()
	n := int64(len(raw)) + m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n
}

func TestPruneTagsKeepsPulledAndSharedAndFreesExactly(t *testing.T) {
	root := t.TempDir()
	reg := regtest.Start(t, regtest.WithRoot(root))
	rt := remote.WithTransport(reg.Transport)
	base := synth.Layer(1, 8192)
	imgs := map[string]v1.Image{}
	for i, tag := range []string{"1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0"} {
		img, err := synth.Image(int64(10+i), synth.WithBase(base), synth.WithLayerSize(4096))
		if err != nil {
			t.Fatal(err)
		}
		imgs[tag] = img
		if _, err := synth.Push(img, reg.Ref("app/a:"+tag), rt); err != nil {
			t.Fatal(err)
		}
	}
	// A signature of 1.0.0 goes with it.
	d0, _ := imgs["1.0.0"].Digest()
	sig, _ := synth.Image(99, synth.WithLayerSize(300))
	if _, err := synth.Push(sig, reg.Ref("app/a:sha256-"+d0.Hex+".sig"), rt); err != nil {
		t.Fatal(err)
	}
	// A protected repository keeps its old tags.
	for i, tag := range []string{"1", "2", "3"} {
		img, _ := synth.Image(int64(50+i), synth.WithLayerSize(512))
		if _, err := synth.Push(img, reg.Ref("app/protected:"+tag), rt); err != nil {
			t.Fatal(err)
		}
	}
	// 1.1.0 is pulled (GET by tag): kept by --keep-pulled-within.
	r, _ := name.ParseReference(reg.Ref("app/a:1.1.0"), name.Insecure)
	if _, err := remote.Get(r, rt); err != nil {
		t.Fatal(err)
	}
	stop(t, reg)

	args := []string{"--root", root, "--keep-last", "2", "--keep-pulled-within", "1h", "--protect", "^app/protected$"}
	dry := prune(t, append(args, "--dry-run")...)
	got := map[string]bool{}
	for _, d := range dry.Decision.Delete {
		for _, tag := range d.Tags {
			got[d.Repository+":"+tag] = true
		}
	}
	if len(dry.Decision.Delete) != 2 || !got["app/a:1.0.0"] || !got["app/a:1.2.0"] || dry.Applied != nil {
		t.Fatalf("dry run decision %+v", dry.Decision.Delete)
	}
	want := size(t, imgs["1.0.0"]) + size(t, imgs["1.2.0"]) // the shared base stays
	want -= 8192 + 0                                        // counted once per image above
	want -= 8192
	baseSize, _ := base.Size()
	want = size(t, imgs["1.0.0"]) + size(t, imgs["1.2.0"]) - 2*baseSize
	if dry.Decision.FreedBytes != want {
		t.Errorf("dry run frees %d, want %d (both images minus the shared base)", dry.Decision.FreedBytes, want)
	}

	res := prune(t, args...)
	if res.GC == nil || res.Applied == nil || res.Applied.ManifestsDeleted != 3 {
		t.Fatalf("prune result %+v", res)
	}
	if res.GC.BlobBytes != want+size(t, sig) {
		t.Errorf("garbage collection freed %d, want %d (the decision) + %d (the signature)", res.GC.BlobBytes, want, size(t, sig))
	}

	reg = regtest.Start(t, regtest.WithRoot(root))
	for ref, want := range map[string]bool{
		"app/a:1.4.0": true, "app/a:1.3.0": true, "app/a:1.1.0": true, "app/a:1.0.0": false, "app/a:1.2.0": false,
		"app/a:sha256-" + d0.Hex + ".sig": false, "app/protected:1": true,
	} {
		if got := exists(t, reg, ref); got != want {
			t.Errorf("%s present=%v, want %v", ref, got, want)
		}
	}
	// The prune is in the registry's audit trail.
	out, errOut, err := clitest.Run(t, "history", "docker://"+reg.Host, "--insecure", "-o", "json")
	if err != nil {
		t.Fatalf("history: %v\n%s", err, errOut)
	}
	var hist []struct {
		Command string
		Deleted []string
		Result  string
	}
	if err := json.Unmarshal([]byte(out), &hist); err != nil || len(hist) != 1 || hist[0].Command != "registry prune" ||
		len(hist[0].Deleted) != 2 || hist[0].Result != "ok" {
		t.Errorf("history %v: %s", err, out)
	}

	// The kept images still pull whole (their shared base survived gc).
	r, _ = name.ParseReference(reg.Ref("app/a:1.1.0"), name.Insecure)
	img, err := remote.Image(r, remote.WithTransport(reg.Transport))
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		rc.Close()
	}
}

func communityDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "testdata", "catalogs", "community-operators-prod-v4.18")
}

// seedKepler pushes the REAL kepler-operator catalog's bundle and related
// images and a catalog image of it (redhat/index:v4.18) to reg, and
// returns the bundles --keep-versions 1 keeps (the highest of each
// channel) and every bundle's images.
func seedKepler(t *testing.T, reg *regtest.Registry) (keep map[string]bool, images map[string][]string) {
	t.Helper()
	ctx := context.Background()
	c, err := catalog.LoadDir(ctx, filepath.Join(communityDir(), "kepler-operator"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := synth.PushCatalogImages(reg.Host, c.Config, 256, reg.Transport, nil); err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.Options{Transport: reg.Transport})
	if err != nil {
		t.Fatal(err)
	}
	base, _ := synth.Index(4242, []string{"linux/amd64"}, synth.WithLayerSize(256))
	baseRef := ref.MustParse(reg.Host + "/operator-framework/opm:latest")
	if err := eng.WriteIndex(ctx, baseRef, base); err != nil {
		t.Fatal(err)
	}
	catRef := ref.MustParse(reg.Host + "/redhat/index:v4.18")
	if _, err := catalogimage.Build(ctx, eng, baseRef, c, catRef); err != nil {
		t.Fatal(err)
	}
	// The expected kept bundles: the highest version of each channel.
	version := map[string]semver.Version{}
	images = map[string][]string{}
	bi, _ := c.Bundles(catalog.Selector{})
	for _, x := range bi {
		version[x.Name] = semver.MustParse(x.Version)
	}
	for _, b := range c.Config.Bundles {
		imgs := []string{b.Image}
		for _, ri := range b.RelatedImages {
			imgs = append(imgs, ri.Image)
		}
		images[b.Name] = imgs
	}
	keep = map[string]bool{}
	for _, ch := range c.Config.Channels {
		best := ""
		for _, e := range ch.Entries {
			if best == "" || version[e.Name].GT(version[best]) {
				best = e.Name
			}
		}
		keep[best] = true
	}
	if len(keep) == len(c.Config.Bundles) || len(keep) == 0 {
		t.Fatalf("fixture: %d of %d bundles kept tests nothing", len(keep), len(c.Config.Bundles))
	}
	return keep, images
}

// checkKepler asserts the catalog at reg was rebuilt with exactly the
// kept bundles, whose images are all there, and that the images only
// dropped bundles named are gone.
func checkKepler(t *testing.T, reg *regtest.Registry, keep map[string]bool, images map[string][]string) {
	t.Helper()
	ctx := context.Background()
	eng, _ := engine.New(engine.Options{Transport: reg.Transport})
	img, err := eng.Image(ctx, ref.MustParse(reg.Host+"/redhat/index:v4.18"))
	if err != nil {
		t.Fatal(err)
	}
	pruned, err := catalog.FromImage(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	gotKept := map[string]bool{}
	for _, b := range pruned.Config.Bundles {
		gotKept[b.Name] = true
	}
	if len(gotKept) != len(keep) {
		t.Errorf("rebuilt catalog keeps %v, want %v", gotKept, keep)
	}
	needed := map[string]bool{}
	for b := range keep {
		if !gotKept[b] {
			t.Errorf("bundle %s missing from the rebuilt catalog", b)
		}
		for _, i := range images[b] {
			needed[i] = true
		}
	}
	for b, imgs := range images {
		for _, i := range imgs {
			r := ref.MustParse(i) // pushed to the first registry's host: same storage
			reference := r.Path + "@" + r.Digest
			if r.Digest == "" {
				reference = r.Path + ":" + r.Tag
			}
			if got := exists(t, reg, reference); got != needed[i] {
				t.Errorf("bundle %s (kept %v): image %s present=%v, want %v", b, keep[b], i, got, needed[i])
			}
		}
	}
}

func TestPruneCatalogKeepsNewestPerChannel(t *testing.T) {
	root := t.TempDir()
	reg := regtest.Start(t, regtest.WithRoot(root))
	keep, images := seedKepler(t, reg)
	stop(t, reg)

	res := prune(t, "--root", root, "--keep-versions", "1")
	if len(res.Decision.Catalogs) != 1 || res.GC == nil || res.GC.Blobs == 0 {
		t.Fatalf("prune result %+v", res)
	}

	reg = regtest.Start(t, regtest.WithRoot(root))
	checkKepler(t, reg, keep, images)
}

// TestPruneCatalogRemote: --keep-versions against a registry reached over
// HTTP (the embedded registry on its loopback listener, running through
// the prune, as a registry airlock does not run would be): the catalog is
// rebuilt and pushed through the API, the dropped bundles' images deleted
// by digest, and no garbage collection is run (the registry's own job).
func TestPruneCatalogRemote(t *testing.T) {
	reg := regtest.Start(t)
	keep, images := seedKepler(t, reg)
	before, err := remoteDigest(reg, "redhat/index:v4.18")
	if err != nil {
		t.Fatal(err)
	}

	dry := prune(t, "--registry", reg.Host, "--keep-versions", "1", "--dry-run")
	if len(dry.Decision.Catalogs) != 1 || dry.Applied != nil || len(dry.Decision.Delete) == 0 {
		t.Fatalf("dry run %+v", dry)
	}
	if after, _ := remoteDigest(reg, "redhat/index:v4.18"); after != before {
		t.Fatalf("the dry run changed the catalog: %s -> %s", before, after)
	}
	res := prune(t, "--registry", reg.Host, "--keep-versions", "1")
	if res.Applied == nil || res.GC != nil || res.Applied.ManifestsDeleted < len(dry.Decision.Delete)+1 {
		t.Fatalf("prune result %+v (dry run deleted %d)", res, len(dry.Decision.Delete))
	}
	if after, _ := remoteDigest(reg, "redhat/index:v4.18"); after == before {
		t.Errorf("the catalog tag still points to the unpruned catalog %s", before)
	}
	checkKepler(t, reg, keep, images)
	// Nothing left to prune.
	again := prune(t, "--registry", reg.Host, "--keep-versions", "1", "--dry-run")
	if len(again.Decision.Catalogs) != 0 || len(again.Decision.Delete) != 0 {
		t.Errorf("second run: %+v", again.Decision)
	}
}

func remoteDigest(reg *regtest.Registry, reference string) (string, error) {
	r, err := name.ParseReference(reg.Ref(reference), name.Insecure)
	if err != nil {
		return "", err
	}
	d, err := remote.Head(r, remote.WithTransport(reg.Transport))
	if err != nil {
		return "", err
	}
	return d.Digest.String(), nil
}
