package catalogimage

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/operator-framework/operator-registry/alpha/declcfg"

	"github.com/airlock-mirror/airlock/internal/catalog"
	"github.com/airlock-mirror/airlock/internal/engine"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

const community = "../../../shared/testdata/catalogs/community-operators-prod-v4.18"

var pkgs = []string{"kubevirt-wol", "shipwright-operator", "ecr-secret-operator"}

func loadCommunity(t *testing.T) *catalog.Catalog {
	t.Helper()
	tmp := t.TempDir()
	for _, p := range pkgs {
		b, err := os.ReadFile(filepath.Join(community, p, "catalog.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tmp, p+".yaml"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c, err := catalog.LoadDir(context.Background(), tmp)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// keepPackage is a minimal stand-in for a filter: only package name.
func keepPackage(c *catalog.Catalog, name string) *catalog.Catalog {
	var cfg declcfg.DeclarativeConfig
	for _, p := range c.Config.Packages {
		if p.Name == name {
			cfg.Packages = append(cfg.Packages, p)
		}
	}
	for _, ch := range c.Config.Channels {
		if ch.Package == name {
			cfg.Channels = append(cfg.Channels, ch)
		}
	}
	for _, b := range c.Config.Bundles {
		if b.Package == name {
			cfg.Bundles = append(cfg.Bundles, b)
		}
	}
	return &catalog.Catalog{Config: &cfg, Format: catalog.FormatFBC}
}

// opmStyleIndex builds what `opm generate dockerfile` + a multi-arch build
// produce: per platform a base, the FBC under /configs, a pre-built cache
// under /tmp/cache, the configs label and a CMD serving with --cache-dir.
func opmStyleIndex(t *testing.T, c *catalog.Catalog, platforms []string, oci bool) v1.ImageIndex {
	t.Helper()
	var opts []synth.Option
	if oci {
		opts = append(opts, synth.WithOCI())
	}
	base, err := synth.Index(7, platforms, opts...)
	if err != nil {
		t.Fatal(err)
	}
	lc := newLayerCache(c)
	out, err := rebuildIndex(context.Background(), base, func(img v1.Image) (v1.Image, error) {
		mt, _ := img.MediaType()
		lmt := layerMediaType(mt)
		cl, err := lc.configsLayer(lmt)
		if err != nil {
			return nil, err
		}
		cacheTar := tarOf(t, map[string]string{"tmp/cache/digest": "stale", "tmp/cache/cache/packages.json": "{}"})
		cache, err := bytesLayer(cacheTar, lmt)
		if err != nil {
			return nil, err
		}
		img, err = mutate.Append(img, mutate.Addendum{Layer: cl, MediaType: lmt}, mutate.Addendum{Layer: cache, MediaType: lmt})
		if err != nil {
			return nil, err
		}
		cf, _ := img.ConfigFile()
		cf = cf.DeepCopy()
		cf.Config.Labels = map[string]string{LabelConfigs: "/configs", "vendor": "test"}
		cf.Config.Entrypoint = []string{"/bin/opm"}
		cf.Config.Cmd = []string{"serve", "/configs", "--cache-dir=/tmp/cache"}
		return mutate.ConfigFile(img, cf)
	}, &Result{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func tarOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	dir := t.TempDir()
	for n, body := range files {
		p := filepath.Join(dir, n)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(body), 0o644)
	}
	b, err := tarDir(dir, ".")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// flatten returns the merged file system of img: path -> content.
func flatten(t *testing.T, img v1.Image) map[string]string {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	files := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			b, _ := io.ReadAll(tr)
			files[strings.TrimPrefix(filepath.Clean("/"+h.Name), "/")] = string(b)
		}
	}
	return files
}

func newEngine(t *testing.T, reg *regtest.Registry) *engine.Engine {
	t.Helper()
	e, err := engine.New(engine.Options{Transport: reg.Transport, Keychain: reg.Keychain})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestRebuildMultiArch(t *testing.T) {
	for _, oci := range []bool{false, true} {
		name := "docker"
		if oci {
			name = "oci"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			reg := regtest.Start(t)
			full := loadCommunity(t)
			platforms := []string{"linux/amd64", "linux/arm64", "linux/ppc64le"}
			src := opmStyleIndex(t, full, platforms, oci)
			srcRef := ref.MustParse(reg.Host + "/olm/community-index:v4.18")
			if _, err := synth.Push(src, srcRef.Name(), remote.WithTransport(reg.Transport)); err != nil {
				t.Fatal(err)
			}
			eng := newEngine(t, reg)
			filtered := keepPackage(full, "kubevirt-wol")
			dst := ref.MustParse(reg.Host + "/mirror/community-index:v4.18")
			res, err := Rebuild(ctx, eng, srcRef, filtered, dst)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(res.Platforms, ",") != strings.Join(platforms, ",") {
				t.Errorf("platforms %v, want %v", res.Platforms, platforms)
			}
			idx, err := eng.Index(ctx, dst)
			if err != nil {
				t.Fatal(err)
			}
			d, _ := idx.Digest()
			if d.String() != res.Digest {
				t.Errorf("pushed digest %s, reported %s", d, res.Digest)
			}
			srcMT, _ := src.MediaType()
			if mt, _ := idx.MediaType(); mt != srcMT {
				t.Errorf("index media type %s, want %s", mt, srcMT)
			}
			im, _ := idx.IndexManifest()
			if len(im.Manifests) != len(platforms) {
				t.Fatalf("%d manifests, want %d", len(im.Manifests), len(platforms))
			}
			for i, m := range im.Manifests {
				if got := descPlatform(m); got != platforms[i] {
					t.Errorf("manifest %d platform %s, want %s", i, got, platforms[i])
				}
				img, err := idx.Image(m.Digest)
				if err != nil {
					t.Fatal(err)
				}
				checkRebuilt(t, img, "kubevirt-wol")
			}
			// The same input gives the same image: a re-run pushes nothing new.
			res2, err := Rebuild(ctx, eng, srcRef, filtered, dst)
			if err != nil {
				t.Fatal(err)
			}
			if res2.Digest != res.Digest {
				t.Errorf("rebuild not reproducible: %s then %s", res.Digest, res2.Digest)
			}
		})
	}
}

// checkRebuilt reads a rebuilt platform image the way OLM and opm will:
// labels, command, and the merged file system.
func checkRebuilt(t *testing.T, img v1.Image, wantPkg string) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.Labels[LabelConfigs] != "/configs" || cf.Config.Labels["vendor"] != "test" {
		t.Errorf("labels %v", cf.Config.Labels)
	}
	if got := strings.Join(cf.Config.Cmd, " "); got != "serve /configs" {
		t.Errorf("cmd %q, want serve /configs (no stale cache)", got)
	}
	if got := strings.Join(cf.Config.Entrypoint, " "); got != "/bin/opm" {
		t.Errorf("entrypoint %q", got)
	}
	files := flatten(t, img)
	for p := range files {
		if strings.HasPrefix(p, "tmp/cache") {
			t.Errorf("stale cache file %s still visible", p)
		}
		if strings.HasPrefix(p, "configs/") && !strings.HasPrefix(p, "configs/"+wantPkg+"/") {
			t.Errorf("unexpected catalog file %s", p)
		}
	}
	if _, ok := files["configs/"+wantPkg+"/catalog.json"]; !ok {
		t.Errorf("configs/%s/catalog.json missing; files: %v", wantPkg, keys(files))
	}
	c, err := catalog.FromImage(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(c.Config.Packages); n != 1 || c.Config.Packages[0].Name != wantPkg {
		t.Errorf("rebuilt catalog has packages %v", c.PackageNames())
	}
	// Every layer uses the manifest's layer media type family.
	mt, _ := img.MediaType()
	ls, _ := img.Layers()
	for _, l := range ls {
		lmt, _ := l.MediaType()
		if (mt == types.DockerManifestSchema2) != (lmt == types.DockerLayer) {
			t.Errorf("layer media type %s in a %s manifest", lmt, mt)
		}
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestRebuildSingleImageAndBuild(t *testing.T) {
	ctx := context.Background()
	reg := regtest.Start(t)
	eng := newEngine(t, reg)
	full := loadCommunity(t)

	// A single-platform opm-style image.
	idx := opmStyleIndex(t, full, []string{"linux/amd64"}, true)
	im, _ := idx.IndexManifest()
	single, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	srcRef := ref.MustParse(reg.Host + "/olm/single:1")
	if _, err := synth.Push(single, srcRef.Name(), remote.WithTransport(reg.Transport)); err != nil {
		t.Fatal(err)
	}
	dst := ref.MustParse(reg.Host + "/mirror/single:1")
	if _, err := Rebuild(ctx, eng, srcRef, keepPackage(full, "ecr-secret-operator"), dst); err != nil {
		t.Fatal(err)
	}
	img, err := eng.Image(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	checkRebuiltCmd(t, img)
	c, err := catalog.FromImage(ctx, img)
	if err != nil || len(c.Config.Packages) != 1 {
		t.Fatalf("read back: %v, %v", c, err)
	}

	// Build from a plain (non-catalog) multi-arch base, like an opm image.
	base, err := synth.Index(11, []string{"linux/amd64", "linux/s390x"})
	if err != nil {
		t.Fatal(err)
	}
	baseRef := ref.MustParse(reg.Host + "/operator-framework/opm:v1")
	if _, err := synth.Push(base, baseRef.Name(), remote.WithTransport(reg.Transport)); err != nil {
		t.Fatal(err)
	}
	built := ref.MustParse(reg.Host + "/catalogs/mine:v1")
	res, err := Build(ctx, eng, baseRef, full, built)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Platforms) != 2 {
		t.Errorf("built platforms %v", res.Platforms)
	}
	bidx, err := eng.Index(ctx, built)
	if err != nil {
		t.Fatal(err)
	}
	bim, _ := bidx.IndexManifest()
	for _, m := range bim.Manifests {
		img, _ := bidx.Image(m.Digest)
		checkRebuiltCmd(t, img)
		c, err := catalog.FromImage(ctx, img)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Config.Packages) != len(pkgs) || len(c.Config.Bundles) != len(full.Config.Bundles) {
			t.Errorf("built catalog has %d packages / %d bundles, want %d / %d", len(c.Config.Packages), len(c.Config.Bundles), len(pkgs), len(full.Config.Bundles))
		}
	}
}

func checkRebuiltCmd(t *testing.T, img v1.Image) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.Labels[LabelConfigs] != "/configs" || strings.Join(cf.Config.Cmd, " ") != "serve /configs" || strings.Join(cf.Config.Entrypoint, " ") != "/bin/opm" {
		t.Errorf("config: labels %v entrypoint %v cmd %v", cf.Config.Labels, cf.Config.Entrypoint, cf.Config.Cmd)
	}
}

func TestRebuildRejectsNonCatalog(t *testing.T) {
	ctx := context.Background()
	reg := regtest.Start(t)
	eng := newEngine(t, reg)
	img, err := synth.Image(3)
	if err != nil {
		t.Fatal(err)
	}
	srcRef := ref.MustParse(reg.Host + "/app/web:1")
	if _, err := synth.Push(img, srcRef.Name(), remote.WithTransport(reg.Transport)); err != nil {
		t.Fatal(err)
	}
	_, err = Rebuild(ctx, eng, srcRef, loadCommunity(t), ref.MustParse(reg.Host+"/x/y:1"))
	if err == nil || !strings.Contains(err.Error(), "not an operator catalog image") {
		t.Errorf("got %v, want a not-a-catalog error", err)
	}
	if _, err := eng.Resolve(ctx, ref.MustParse(reg.Host+"/x/y:1")); err == nil {
		t.Error("something was pushed for a failed rebuild")
	}
	if _, err := Rebuild(ctx, eng, srcRef, loadCommunity(t), ref.MustParse(reg.Host+"/x/y@sha256:"+strings.Repeat("a", 64))); err == nil {
		t.Error("digest destination accepted")
	}
}

func TestServeCommand(t *testing.T) {
	cases := []struct {
		ep, cmd []string
		want    string
	}{
		{[]string{"/bin/opm"}, []string{"serve", "/configs", "--cache-dir=/tmp/cache"}, "serve /configs"},
		{[]string{"/bin/opm"}, []string{"serve", "/configs", "--cache-dir", "/tmp/cache", "--cache-only", "--port=50052"}, "serve /configs --port=50052"},
		{[]string{"/bin/opm"}, []string{"registry", "serve", "--database", "/database/index.db"}, "serve /configs"},
		{nil, nil, "serve /configs"},
	}
	for _, c := range cases {
		if got := strings.Join(serveCommand(c.ep, c.cmd), " "); got != c.want {
			t.Errorf("serveCommand(%v, %v) = %q, want %q", c.ep, c.cmd, got, c.want)
		}
	}
}

func TestSQLiteImages(t *testing.T) {
	ctx := context.Background()
	reg := regtest.Start(t)
	eng := newEngine(t, reg)
	const sqliteDir = "../../../shared/testdata/catalogs"
	orig, err := os.ReadFile(filepath.Join(sqliteDir, "sqlite", "operator-registry-indexer-bundles.db"))
	if err != nil {
		t.Fatal(err)
	}
	base, err := synth.Image(5)
	if err != nil {
		t.Fatal(err)
	}
	l, err := bytesLayer(tarOf(t, map[string]string{"database/index.db": string(orig)}), types.DockerLayer)
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.Append(base, mutate.Addendum{Layer: l, MediaType: types.DockerLayer})
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.Config.Labels = map[string]string{LabelDatabase: "/database/index.db"}
	cf.Config.Entrypoint = []string{"/bin/opm"}
	cf.Config.Cmd = []string{"registry", "serve", "--database", "/database/index.db"}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	srcRef := ref.MustParse(reg.Host + "/olm/legacy-index:v4.6")
	if _, err := synth.Push(img, srcRef.Name(), remote.WithTransport(reg.Transport)); err != nil {
		t.Fatal(err)
	}

	// Rebuilding it as FBC in place is refused with the way out.
	if _, err := Rebuild(ctx, eng, srcRef, loadCommunity(t), ref.MustParse(reg.Host+"/mirror/legacy-index:v4.6")); err == nil || !strings.Contains(err.Error(), "--convert-to-fbc") {
		t.Errorf("sqlite rebuild: got %v, want ErrSQLite", err)
	}

	// Replacing the database keeps sqlite and the old command.
	dst := ref.MustParse(reg.Host + "/mirror/legacy-index:v4.6")
	if _, err := ReplaceDatabase(ctx, eng, srcRef, filepath.Join(sqliteDir, "oc-test-declcfg-and-sqlite", "test.db"), dst); err != nil {
		t.Fatal(err)
	}
	out, err := eng.Image(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	ocf, _ := out.ConfigFile()
	if strings.Join(ocf.Config.Cmd, " ") != "registry serve --database /database/index.db" || ocf.Config.Labels[LabelDatabase] == "" {
		t.Errorf("sqlite image changed its command or labels: %v %v", ocf.Config.Cmd, ocf.Config.Labels)
	}
	c, err := catalog.FromImage(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.PackageNames(), ","); got != "etcd,prometheus" {
		t.Errorf("replaced database has packages %s, want etcd,prometheus", got)
	}

	// Converting: Build on an opm base from the sqlite content.
	legacy, err := catalog.FromImage(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	opmBase, _ := synth.Index(9, []string{"linux/amd64", "linux/arm64"})
	baseRef := ref.MustParse(reg.Host + "/operator-framework/opm:latest")
	if _, err := synth.Push(opmBase, baseRef.Name(), remote.WithTransport(reg.Transport)); err != nil {
		t.Fatal(err)
	}
	conv := ref.MustParse(reg.Host + "/mirror/legacy-index:v4.6-fbc")
	if _, err := Build(ctx, eng, baseRef, legacy, conv); err != nil {
		t.Fatal(err)
	}
	cidx, err := eng.Index(ctx, conv)
	if err != nil {
		t.Fatal(err)
	}
	cim, _ := cidx.IndexManifest()
	cimg, _ := cidx.Image(cim.Manifests[1].Digest)
	cc, err := catalog.FromImage(ctx, cimg)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cc.PackageNames(), ",") != strings.Join(legacy.PackageNames(), ",") || len(cc.Config.Bundles) != len(legacy.Config.Bundles) {
		t.Errorf("converted catalog %v (%d bundles), want %v (%d)", cc.PackageNames(), len(cc.Config.Bundles), legacy.PackageNames(), len(legacy.Config.Bundles))
	}
}
