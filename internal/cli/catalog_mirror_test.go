package cli

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlock-mirror/airlock/internal/testutil/shared"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/airlock-mirror/airlock/internal/catalog"
	"github.com/airlock-mirror/airlock/internal/catalogimage"
	"github.com/airlock-mirror/airlock/internal/engine"
	"github.com/airlock-mirror/airlock/internal/imageset"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

// ocTestCatalog is the oc test catalog (etcd, prometheus) as FBC.
func ocTestCatalog(t *testing.T) string { t.Helper(); return shared.OCTestCatalog(t) }

func runAirlock(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := NewRootCommand(IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func TestCatalogMirrorValidation(t *testing.T) {
	idx := ocTestCatalog(t)
	cases := map[string][]string{
		"bare host without dot":      {idx, "myregistry"},
		"tagged destination":         {idx, "quay.io/olm:v1"},
		"negative max components":    {idx, "quay.io", "--max-components", "-1"},
		"config and package":         {idx, "quay.io", "--config", "x.yaml", "--package", "etcd"},
		"manifests-only and dry-run": {idx, "quay.io", "--manifests-only", "--dry-run"},
		"index without tag":          {"quay.io/ns/no-such-local-path", "quay.io"},
		"bad scope":                  {idx, "quay.io", "--idms-scope", "cluster"},
		"oversized idms":             {idx, "quay.io", "--max-idms-size", "300000"},
	}
	for what, args := range cases {
		_, _, err := runAirlock(t, append([]string{"catalog", "mirror"}, args...)...)
		if err == nil {
			t.Errorf("%s: accepted", what)
		}
	}
}

// TestCatalogMirrorManifestsOnlyLocal writes oc's manifests for the oc
// test catalog read from disk, copying nothing.
func TestCatalogMirrorManifestsOnlyLocal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "manifests")
	out, errOut, err := runAirlock(t, "catalog", "mirror", "--manifests-only", ocTestCatalog(t), "localhost:5000/org", "--to-manifests", dir)
	if err != nil {
		t.Fatalf("%v\n%s%s", err, out, errOut)
	}
	mapping, err := os.ReadFile(filepath.Join(dir, "mapping.txt"))
	if err != nil {
		t.Fatal(err)
	}
	// Lines from oc's own TestMirror expectations.
	for _, want := range []string{
		"quay.io/coreos/etcd-operator@sha256:c0301e4686c3ed4206e370b42de5a3bd2229b9fb4906cf85f3f30650424abec2=localhost:5000/org/coreos-etcd-operator:2f1eb95",
		"quay.io/test/etcd.0.9.0:latest=localhost:5000/org/test-etcd.0.9.0:latest",
	} {
		if !strings.Contains(string(mapping), want+"\n") {
			t.Errorf("mapping.txt lacks %s:\n%s", want, mapping)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "catalogSource.yaml")); err == nil {
		t.Error("catalogSource.yaml written for a local catalog that is not mirrored as an image")
	}
	if !strings.Contains(errOut, "local catalog") {
		t.Errorf("no note about the local catalog:\n%s", errOut)
	}
	icsp, err := os.ReadFile(filepath.Join(dir, "imageContentSourcePolicy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(icsp), "name: index-0") || !strings.Contains(string(icsp), "source: quay.io/coreos/etcd-operator") {
		t.Errorf("imageContentSourcePolicy.yaml:\n%s", icsp)
	}
}

// TestCatalogMirrorImageManifestsAndDryRun reads a catalog image from a
// registry; --manifests-only and --dry-run write the manifests (with the
// CatalogSource) and copy nothing.
func TestCatalogMirrorImageManifestsAndDryRun(t *testing.T) {
	ctx := context.Background()
	reg := regtest.Start(t)
	c, err := catalog.LoadFile(ctx, ocTestCatalog(t))
	if err != nil {
		t.Fatal(err)
	}
	base, err := synth.Index(3, []string{"linux/amd64", "linux/arm64"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := synth.Push(base, reg.Host+"/opm/base:1", remote.WithTransport(reg.Transport)); err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.Options{Transport: reg.Transport})
	if err != nil {
		t.Fatal(err)
	}
	index := reg.Host + "/redhat/test-index:v1"
	if _, err := catalogimage.Build(ctx, eng, ref.MustParse(reg.Host+"/opm/base:1"), c, ref.MustParse(index)); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "m")
	out, errOut, err := runAirlock(t, "catalog", "mirror", "--manifests-only", index, reg.Host+"/mirror", "--to-manifests", dir,
		"--index-filter-by-os", "linux/arm64", "--display-name", "Test Operators", "--extract-content")
	if err != nil {
		t.Fatalf("%v\n%s%s", err, out, errOut)
	}
	cs, err := os.ReadFile(filepath.Join(dir, "catalogSource.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"name: test-index", "image: " + reg.Host + "/mirror/redhat-test-index:v1", "displayName: Test Operators", "catalogDir: /configs"} {
		if !strings.Contains(string(cs), want) {
			t.Errorf("catalogSource.yaml lacks %q:\n%s", want, cs)
		}
	}
	r, _ := name.ParseReference(reg.Host+"/mirror/redhat-test-index:v1", name.Insecure)
	if _, err := remote.Head(r, remote.WithTransport(reg.Transport)); err == nil {
		t.Error("--manifests-only copied the catalog image")
	}

	// A platform the index does not have is a clear error.
	_, _, err = runAirlock(t, "catalog", "mirror", "--manifests-only", index, reg.Host+"/mirror", "--to-manifests", dir, "--index-filter-by-os", "linux/ppc64le")
	if err == nil || !strings.Contains(err.Error(), "linux/amd64") {
		t.Errorf("missing platform: %v (want the list of platforms)", err)
	}

	// Dry run: the source images do not exist here (quay.io test refs are
	// not reachable), but the catalog itself resolves; nothing is written.
	out, _, _ = runAirlock(t, "catalog", "mirror", "--dry-run", index, reg.Host+"/mirror", "--to-manifests", dir)
	if _, err := remote.Head(r, remote.WithTransport(reg.Transport)); err == nil {
		t.Errorf("--dry-run copied the catalog image:\n%s", out)
	}
}

func TestCatalogInstallManifestsCommand(t *testing.T) {
	out, errOut, err := runAirlock(t, "catalog", "install-manifests", ocTestCatalog(t), "--package", "prometheus", "--approval", "Manual", "--catalog-source", "test-index")
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	for _, want := range []string{"kind: Namespace", "kind: OperatorGroup", "kind: Subscription", "installPlanApproval: Manual", "source: test-index", "name: prometheus"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, _, err := runAirlock(t, "catalog", "install-manifests", ocTestCatalog(t)); err == nil {
		t.Error("missing --package accepted")
	}
	if _, _, err := runAirlock(t, "catalog", "install-manifests", ocTestCatalog(t), "--package", "prometheus", "--approval", "Later"); err == nil {
		t.Error("bad --approval accepted")
	}
}

func TestCatalogBuildValidation(t *testing.T) {
	for what, args := range map[string][]string{
		"missing flags":    {},
		"untagged base":    {"--from-dir", ".", "--base", "quay.io/opm", "--to", "quay.io/x/y:1"},
		"digest to":        {"--from-dir", ".", "--base", "quay.io/opm:1", "--to", "quay.io/x/y@sha256:" + strings.Repeat("a", 64)},
		"missing from-dir": {"--from-dir", "/no/such/dir", "--base", "quay.io/opm:1", "--to", "quay.io/x/y:1"},
	} {
		if _, _, err := runAirlock(t, append([]string{"catalog", "build"}, args...)...); err == nil {
			t.Errorf("%s: accepted", what)
		}
	}
}

// TestCatalogRebuildFlags drives the --to path of catalog filter: an FBC
// image is rebuilt with the filtered content, a catalog from disk is built
// on --base, and bad combinations are refused.
func TestCatalogRebuildFlags(t *testing.T) {
	ctx := context.Background()
	reg := regtest.Start(t)
	eng, err := engine.New(engine.Options{Transport: reg.Transport})
	if err != nil {
		t.Fatal(err)
	}
	full, err := catalog.LoadFile(ctx, ocTestCatalog(t))
	if err != nil {
		t.Fatal(err)
	}
	base, _ := synth.Index(4, []string{"linux/amd64", "linux/arm64"})
	baseRef := reg.Host + "/opm/base:1"
	if _, err := synth.Push(base, baseRef, remote.WithTransport(reg.Transport)); err != nil {
		t.Fatal(err)
	}
	srcRef := ref.MustParse(reg.Host + "/redhat/test-index:v1")
	if _, err := catalogimage.Build(ctx, eng, ref.MustParse(baseRef), full, srcRef); err != nil {
		t.Fatal(err)
	}
	filtered, _, err := catalog.Filter(ctx, full, imagesetOperatorFor("etcd"))
	if err != nil {
		t.Fatal(err)
	}

	f := CatalogRebuildFlags{To: reg.Host + "/mirror/test-index:etcd"}
	if err := f.Validate(false); err != nil {
		t.Fatal(err)
	}
	res, err := f.Rebuild(ctx, eng, full, &srcRef, filtered)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Platforms) != 2 {
		t.Errorf("platforms %v", res.Platforms)
	}
	idx, err := eng.Index(ctx, ref.MustParse(f.To))
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	img, _ := idx.Image(im.Manifests[0].Digest)
	got, err := catalog.FromImage(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got.PackageNames(), ",") != "etcd" {
		t.Errorf("rebuilt catalog packages %v, want etcd", got.PackageNames())
	}

	// From disk: --base is required, then the image is built on it.
	local := CatalogRebuildFlags{To: reg.Host + "/mirror/local:1"}
	if err := local.Validate(true); err == nil {
		t.Error("catalog from disk without --base accepted")
	}
	local.Base = baseRef
	if err := local.Validate(true); err != nil {
		t.Fatal(err)
	}
	if _, err := local.Rebuild(ctx, eng, full, nil, filtered); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []CatalogRebuildFlags{{ConvertToFBC: true}, {To: "quay.io/x/y"}, {To: "quay.io/x/y:1", ConvertToFBC: true}, {To: "quay.io/x/y:1", Base: "quay.io/opm"}} {
		if err := bad.Validate(false); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
	// A sqlite catalog image stays sqlite: its database is pruned to the
	// selected packages and replaced; the extra bundles are noted.
	db, err := os.ReadFile(filepath.Join(filepath.Dir(ocTestCatalog(t)), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	simg, _ := synth.Image(13)
	simg, err = mutate.Append(simg, mutate.Addendum{Layer: oneFileLayer(t, "database/index.db", db)})
	if err != nil {
		t.Fatal(err)
	}
	scf, _ := simg.ConfigFile()
	scf = scf.DeepCopy()
	scf.Config.Labels = map[string]string{catalog.LabelDatabase: "/database/index.db"}
	scf.Config.Cmd = []string{"registry", "serve", "--database", "/database/index.db"}
	simg, _ = mutate.ConfigFile(simg, scf)
	sqliteRef := ref.MustParse(reg.Host + "/legacy/index:v4.6")
	if _, err := synth.Push(simg, sqliteRef.Name(), remote.WithTransport(reg.Transport)); err != nil {
		t.Fatal(err)
	}
	legacy, err := catalog.FromImage(ctx, simg)
	if err != nil {
		t.Fatal(err)
	}
	legacyFiltered, _, err := catalog.Filter(ctx, legacy, imagesetOperatorFor("etcd"))
	if err != nil {
		t.Fatal(err)
	}
	sf := CatalogRebuildFlags{To: reg.Host + "/mirror/legacy:etcd"}
	sres, err := sf.Rebuild(ctx, eng, legacy, &sqliteRef, legacyFiltered)
	if err != nil {
		t.Fatal(err)
	}
	out, err := eng.Image(ctx, ref.MustParse(sf.To))
	if err != nil {
		t.Fatal(err)
	}
	ocf, _ := out.ConfigFile()
	pc, err := catalog.FromImage(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	if pc.Format != catalog.FormatSQLite || strings.Join(pc.PackageNames(), ",") != "etcd" || ocf.Config.Labels[catalog.LabelConfigs] != "" {
		t.Errorf("sqlite rebuild: format %s packages %v labels %v", pc.Format, pc.PackageNames(), ocf.Config.Labels)
	}
	// Heads only: the database holds exactly the filtered bundles.
	if len(pc.Config.Bundles) != len(legacyFiltered.Config.Bundles) || len(sres.Notes) != 0 {
		t.Errorf("sqlite rebuild: %d bundles, filtered %d; notes %v", len(pc.Config.Bundles), len(legacyFiltered.Config.Bundles), sres.Notes)
	}
}

func imagesetOperatorFor(pkg string) imageset.Operator {
	return imageset.Operator{Packages: []imageset.IncludePackage{{Name: pkg}}}
}

func TestCatalogRebuildFlagsPush(t *testing.T) {
	ctx := context.Background()
	reg := regtest.Start(t)
	eng, _ := engine.New(engine.Options{Transport: reg.Transport})
	full, err := catalog.LoadFile(ctx, ocTestCatalog(t))
	if err != nil {
		t.Fatal(err)
	}
	base, _ := synth.Image(8)
	baseRef := reg.Host + "/opm/base:2"
	if _, err := synth.Push(base, baseRef, remote.WithTransport(reg.Transport)); err != nil {
		t.Fatal(err)
	}
	srcRef := reg.Host + "/redhat/idx:v1"
	if _, err := catalogimage.Build(ctx, eng, ref.MustParse(baseRef), full, ref.MustParse(srcRef)); err != nil {
		t.Fatal(err)
	}
	filtered, _, err := catalog.Filter(ctx, full, imagesetOperatorFor("prometheus"))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	f := CatalogRebuildFlags{To: reg.Host + "/mirror/idx:prom"}
	if err := f.Push(ctx, CatalogSourceFlags{}, srcRef, full, filtered, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "pushed filtered catalog (1 package(s))") {
		t.Errorf("output %q", out.String())
	}
	img, err := eng.Image(ctx, ref.MustParse(f.To))
	if err != nil {
		t.Fatal(err)
	}
	c, err := catalog.FromImage(ctx, img)
	if err != nil || strings.Join(c.PackageNames(), ",") != "prometheus" {
		t.Errorf("pushed catalog: %v %v", c, err)
	}
}

// TestCatalogMirrorSQLiteSelection: a channel selection on a legacy sqlite
// catalog image plans exactly the images of the selection (the database is
// pruned to it first). The full mirror is in test/e2e/catalog.
func TestCatalogMirrorSQLiteSelection(t *testing.T) {
	reg := regtest.Start(t)
	db, err := os.ReadFile(filepath.Join(filepath.Dir(ocTestCatalog(t)), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	base, _ := synth.Image(12)
	layer := oneFileLayer(t, "database/index.db", db)
	img, err := mutate.Append(base, mutate.Addendum{Layer: layer})
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.Config.Labels = map[string]string{catalog.LabelDatabase: "/database/index.db"}
	img, _ = mutate.ConfigFile(img, cf)
	index := reg.Host + "/legacy/index:v4.6"
	if _, err := synth.Push(img, index, remote.WithTransport(reg.Transport)); err != nil {
		t.Fatal(err)
	}
	m := filepath.Join(t.TempDir(), "m")
	_, errOut, err := runAirlock(t, "catalog", "mirror", "--manifests-only", index, reg.Host+"/mirror", "--package", "etcd:alpha", "--to-manifests", m)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if !strings.Contains(errOut, "legacy sqlite") || strings.Contains(errOut, "whole packages") {
		t.Errorf("want the sqlite warning and no per-package fallback:\n%s", errOut)
	}
	mapping, _ := os.ReadFile(filepath.Join(m, "mapping.txt"))
	// The alpha head only: not the older etcd bundle, nothing of prometheus.
	if strings.Contains(string(mapping), "quay.io/test/etcd.0.9.0:latest=") || !strings.Contains(string(mapping), "quay.io/test/etcd.0.9.2:latest=") || strings.Contains(string(mapping), "prometheus") {
		t.Errorf("mapping.txt:\n%s", mapping)
	}
	if _, _, err := runAirlock(t, "catalog", "mirror", index, reg.Host+"/mirror", "--convert-to-fbc"); err == nil {
		t.Error("--convert-to-fbc without --base accepted")
	}
}

// oneFileLayer is a layer holding one file.
func oneFileLayer(t *testing.T, name string, data []byte) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write(data)
	tw.Close()
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}
