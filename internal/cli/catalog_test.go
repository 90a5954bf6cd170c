package cli

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/airlock-mirror/airlock/internal/testutil/shared"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/airlock-mirror/airlock/internal/catalog"
	"github.com/airlock-mirror/airlock/internal/engine"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

// sharedCatalogs is ../shared/testdata/catalogs relative to the project root.
func sharedCatalogs(t testing.TB, elem ...string) string {
	t.Helper()
	return shared.Path(t, append([]string{"catalogs"}, elem...)...)
}

// runCatalogCLI runs airlock with args and returns stdout, stderr, error.
func runCatalogCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := NewRootCommand(IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func TestCatalogPackagesTableAndJSON(t *testing.T) {
	dir := sharedCatalogs(t, "community-operators-prod-v4.18")
	out, _, err := runCatalogCLI(t, "catalog", "packages", dir)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 36 || !strings.HasPrefix(lines[0], "PACKAGE") {
		t.Fatalf("table has %d lines, want header + 35:\n%s", len(lines), out)
	}
	if !regexpMatch(`(?m)^project-quay\s+stable-3\.\S+\s+3\.\d+\.\d+\s+\d+\s+`, out) {
		t.Errorf("project-quay row missing or malformed:\n%s", out)
	}
	out, _, err = runCatalogCLI(t, "catalog", "packages", dir, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var pkgs []catalog.PackageInfo
	if err := json.Unmarshal([]byte(out), &pkgs); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, p := range pkgs {
		total += p.Bundles
	}
	if len(pkgs) != 35 || total != 727 {
		t.Errorf("json: %d packages, %d bundles", len(pkgs), total)
	}
}

func TestCatalogBundlesAndChannelsOfSQLite(t *testing.T) {
	db := sharedCatalogs(t, "sqlite", "operator-registry-indexer-bundles.db")
	out, _, err := runCatalogCLI(t, "catalog", "bundles", db, "--package", "etcd", "--bundle", "etcdoperator.v0.9.*", "-o", "yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"name: etcdoperator.v0.9.0", "name: etcdoperator.v0.9.2"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "name: etcdoperator.v0.6.1") {
		t.Errorf("glob did not exclude v0.6.1:\n%s", out)
	}
	out, _, err = runCatalogCLI(t, "catalog", "channels", db, "--package", "strimzi-kafka-operator")
	if err != nil {
		t.Fatal(err)
	}
	if !regexpMatch(`(?m)^strimzi-kafka-operator\s+stable\s+true\s+strimzi-cluster-operator.v0.11.1\s+0.11.1\s+2$`, out) {
		t.Errorf("stable channel row wrong:\n%s", out)
	}
}

func TestCatalogImagesMapping(t *testing.T) {
	db := sharedCatalogs(t, "oc-test-declcfg-and-sqlite", "test.db")
	out, _, err := runCatalogCLI(t, "catalog", "images", db, "--package", "etcd", "-o", "mapping", "--dest", "myregistry.com/olm")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		// bundle images are tag-only; operator images digest-only get oc's fnv tag
		"quay.io/coreos/etcd-operator@sha256:c0301e4686c3ed4206e370b42de5a3bd2229b9fb4906cf85f3f30650424abec2=myregistry.com/olm/coreos-etcd-operator:",
		"quay.io/coreos/etcd-operator@sha256:db563baa8194fcfe39d1df744ed70024b0f1f9e9b55b5923c2f3a413c44dc6b8=myregistry.com/olm/coreos-etcd-operator:",
		"quay.io/test/etcd.0.9.0=myregistry.com/olm/test-etcd.0.9.0:latest",
		"quay.io/test/etcd.0.9.2=myregistry.com/olm/test-etcd.0.9.2:latest",
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	sort.Strings(lines)
	if len(lines) != len(want) {
		t.Fatalf("mapping has %d lines, want %d:\n%s", len(lines), len(want), out)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q, want prefix %q", i, lines[i], w)
		}
	}
	if _, _, err := runCatalogCLI(t, "catalog", "images", db, "-o", "mapping"); err == nil || !strings.Contains(err.Error(), "--dest") {
		t.Errorf("-o mapping without --dest: %v", err)
	}
}

func TestCatalogFilterWritesValidCatalog(t *testing.T) {
	out := filepath.Join(t.TempDir(), "filtered")
	stdout, _, err := runCatalogCLI(t, "catalog", "filter", sharedCatalogs(t, "operator-registry-index-declcfgs", "latest"),
		"--package", "foo", "-o", out)
	if err != nil {
		t.Fatal(err)
	}
	// foo's head requires bar <0.2.0: bar comes along as a dependency.
	if !strings.Contains(stdout, "added bar/bar.v0.1.0 (channel alpha): foo/foo.v0.3.1 requires olm.package.required bar <0.2.0") ||
		!strings.Contains(stdout, "bar (dependency)") {
		t.Errorf("report does not show the dependency:\n%s", stdout)
	}
	c, err := catalog.LoadDir(context.Background(), out)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.PackageNames(), ","); got != "bar,foo" {
		t.Errorf("packages %s", got)
	}
	for _, p := range []string{"foo/catalog.json", "bar/catalog.json"} {
		if _, err := os.Stat(filepath.Join(out, p)); err != nil {
			t.Error(err)
		}
	}
	// A failing request leaves the previous output alone.
	before, _ := os.ReadFile(filepath.Join(out, "foo", "catalog.json"))
	_, _, err = runCatalogCLI(t, "catalog", "filter", sharedCatalogs(t, "operator-registry-index-declcfgs", "latest"),
		"--package", "foo:nope", "-o", out)
	if err == nil || !strings.Contains(err.Error(), `channel "nope" does not exist (channels: beta)`) {
		t.Errorf("unknown channel: %v", err)
	}
	after, _ := os.ReadFile(filepath.Join(out, "foo", "catalog.json"))
	if !bytes.Equal(before, after) {
		t.Error("failed filter changed the existing output")
	}
}

func TestCatalogFilterConfigAndRanges(t *testing.T) {
	dir := t.TempDir()
	isc := filepath.Join(dir, "isc.yaml")
	os.WriteFile(isc, []byte(`apiVersion: mirror.openshift.io/v2alpha1
kind: ImageSetConfiguration
mirror:
  operators:
    - catalog: registry.example.com/index:v1
      skipDependencies: true
      packages:
        - name: project-quay
          defaultChannel: stable-3.10
          channels:
            - {name: stable-3.10, minVersion: 3.10.2, maxVersion: 3.10.4}
`), 0o644)
	out := filepath.Join(dir, "out")
	if _, _, err := runCatalogCLI(t, "catalog", "filter", sharedCatalogs(t, "community-operators-prod-v4.18"), "--config", isc, "-o", out, "--format", "yaml"); err != nil {
		t.Fatal(err)
	}
	c, err := catalog.LoadDir(context.Background(), out)
	if err != nil {
		t.Fatal(err)
	}
	bs, _ := c.Bundles(catalog.Selector{})
	var versions []string
	for _, b := range bs {
		versions = append(versions, b.Version)
	}
	if strings.Join(versions, ",") != "3.10.2,3.10.3,3.10.4" {
		t.Errorf("versions %v, want 3.10.2..3.10.4", versions)
	}
	if _, err := os.Stat(filepath.Join(out, "project-quay", "catalog.yaml")); err != nil {
		t.Error(err)
	}
	// The same through --package, with the range syntax.
	out2 := filepath.Join(dir, "out2")
	if _, _, err := runCatalogCLI(t, "catalog", "filter", sharedCatalogs(t, "community-operators-prod-v4.18"),
		"--package", "project-quay:stable-3.10@3.10.2-3.10.4", "--skip-dependencies", "-o", out2); err != nil {
		t.Fatal(err)
	}
	c2, err := catalog.LoadDir(context.Background(), out2)
	if err != nil {
		t.Fatal(err)
	}
	if len(c2.Config.Bundles) != 3 || c2.Config.Packages[0].DefaultChannel != "stable-3.10" {
		t.Errorf("--package range: %d bundles, default %s", len(c2.Config.Bundles), c2.Config.Packages[0].DefaultChannel)
	}
	for _, bad := range [][]string{
		{"--package", "project-quay:stable-3.10@x-y"},
		{"--package", "project-quay:stable-3.10@4.0.0-"},
		{"--package", "project-quay", "--config", isc},
	} {
		args := append([]string{"catalog", "filter", sharedCatalogs(t, "community-operators-prod-v4.18"), "-o", filepath.Join(dir, "bad")}, bad...)
		if _, _, err := runCatalogCLI(t, args...); err == nil {
			t.Errorf("%v accepted", bad)
		}
		if _, err := os.Stat(filepath.Join(dir, "bad")); err == nil {
			t.Errorf("%v wrote output", bad)
		}
	}
}

// TestCatalogFromRegistryIndex reads a multi-arch catalog image from the
// embedded registry: the variant --index-filter-by-os names is read.
func TestCatalogFromRegistryIndex(t *testing.T) {
	reg := regtest.Start(t)
	mk := func(src string) v1.Image {
		layer := dirTarLayer(t, src, "configs")
		img, err := mutate.AppendLayers(empty.Image, synth.Layer(11, 1024), layer)
		if err != nil {
			t.Fatal(err)
		}
		cf, _ := img.ConfigFile()
		cf = cf.DeepCopy()
		cf.Config.Labels = map[string]string{catalog.LabelConfigs: "/configs"}
		img, err = mutate.ConfigFile(img, cf)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	// Different content per platform makes the choice visible.
	amd := mk(sharedCatalogs(t, "operator-registry-index-declcfgs", "latest"))
	arm := mk(sharedCatalogs(t, "operator-registry-index-declcfgs", "exp-latest"))
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
	r, _ := name.ParseReference(reg.Host + "/olm/index:v1")
	if err := remote.WriteIndex(r, idx, remote.WithTransport(reg.Transport)); err != nil {
		t.Fatal(err)
	}
	count := func(args ...string) int {
		out, _, err := runCatalogCLI(t, append([]string{"catalog", "bundles", reg.Host + "/olm/index:v1", "-o", "json"}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		var bs []catalog.BundleInfo
		if err := json.Unmarshal([]byte(out), &bs); err != nil {
			t.Fatal(err)
		}
		return len(bs)
	}
	if n := count(); n != 10 {
		t.Errorf("linux/amd64 variant: %d bundles, want 10", n)
	}
	if n := count("--index-filter-by-os", "linux/arm64"); n != 3 {
		t.Errorf("linux/arm64 variant: %d bundles, want 3", n)
	}
	if _, _, err := runCatalogCLI(t, "catalog", "packages", reg.Host+"/olm/index:v1", "--index-filter-by-os", "linux/s390x"); err == nil ||
		!strings.Contains(err.Error(), "linux/amd64, linux/arm64") {
		t.Errorf("missing platform: %v", err)
	}
}

func dirTarLayer(t *testing.T, dir, prefix string) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: prefix + "/" + filepath.ToSlash(rel), Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err = tw.Write(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	tw.Close()
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func regexpMatch(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }

// TestCatalogFilterToImage filters a catalog image held by the embedded
// registry and pushes the result with --to; the pushed image is then read
// back by reference.
func TestCatalogFilterToImage(t *testing.T) {
	reg := regtest.Start(t)
	layer := dirTarLayer(t, sharedCatalogs(t, "operator-registry-index-declcfgs", "latest"), "configs")
	img, err := mutate.AppendLayers(empty.Image, synth.Layer(12, 1024), layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.Config.Labels = map[string]string{catalog.LabelConfigs: "/configs"}
	cf.Config.Cmd = []string{"serve", "/configs", "--cache-dir=/tmp/cache"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	r, _ := name.ParseReference(reg.Host + "/olm/index:v1")
	if err := remote.Write(r, img, remote.WithTransport(reg.Transport)); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCatalogCLI(t, "catalog", "filter", reg.Host+"/olm/index:v1", "--package", "foo", "--to", reg.Host+"/olm/index:foo")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "pushed filtered catalog (2 package(s)) to "+reg.Host+"/olm/index:foo@sha256:") {
		t.Errorf("output:\n%s", out)
	}
	out, _, err = runCatalogCLI(t, "catalog", "bundles", reg.Host+"/olm/index:foo")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"foo.v0.3.1", "bar.v0.1.0"} {
		if !strings.Contains(out, want) {
			t.Errorf("rebuilt catalog lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "baz") {
		t.Errorf("rebuilt catalog still holds baz:\n%s", out)
	}
}

// TestCatalogFromOCILayout reads a catalog image from an OCI layout
// directory (oci://DIR:TAG), written by the engine itself.
func TestCatalogFromOCILayout(t *testing.T) {
	layer := dirTarLayer(t, sharedCatalogs(t, "operator-registry-index-declcfgs", "exp-headsonly"), "configs")
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.Config.Labels = map[string]string{catalog.LabelConfigs: "/configs"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "layout")
	eng, err := engine.New(engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dst, err := ref.Parse("oci://" + dir + ":v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.WriteImage(context.Background(), dst, img); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCatalogCLI(t, "catalog", "channels", "oci://"+dir+":v1", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var chs []catalog.ChannelInfo
	if err := json.Unmarshal([]byte(out), &chs); err != nil {
		t.Fatal(err)
	}
	if len(chs) != 4 {
		t.Errorf("channels %+v, want bar/alpha, bar/stable, baz/stable, foo/beta", chs)
	}
}

// TestCatalogFilterOutputDB: --output-db writes a legacy sqlite database
// pruned to a channel selection, in its own schema, and refuses what it
// cannot do (a file-based source, overwriting the source).
func TestCatalogFilterOutputDB(t *testing.T) {
	src := sharedCatalogs(t, "oc-test-declcfg-and-sqlite", "test.db")
	out := filepath.Join(t.TempDir(), "pruned.db")
	stdout, _, err := runCatalogCLI(t, "catalog", "filter", src, "--package", "etcd:alpha", "--output-db", out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, "wrote pruned sqlite database "+out+": 1 package(s), 1 bundle(s), exactly the selection") {
		t.Errorf("output:\n%s", stdout)
	}
	c, err := catalog.LoadSQLite(context.Background(), out)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Config.Channels) != 1 || c.Config.Channels[0].Name != "alpha" || len(c.Config.Bundles) != 1 || c.Config.Bundles[0].Name != "etcdoperator.v0.9.2" {
		t.Errorf("pruned database: channels %+v bundles %d", c.Config.Channels, len(c.Config.Bundles))
	}
	if _, _, err := runCatalogCLI(t, "catalog", "filter", sharedCatalogs(t, "operator-registry-index-declcfgs", "latest"),
		"--package", "foo", "--output-db", filepath.Join(t.TempDir(), "x.db")); err == nil || !strings.Contains(err.Error(), "file-based catalog") {
		t.Errorf("--output-db on a file-based catalog: %v", err)
	}
	cp := filepath.Join(t.TempDir(), "index.db")
	data, _ := os.ReadFile(src)
	if err := os.WriteFile(cp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCatalogCLI(t, "catalog", "filter", cp, "--package", "etcd", "--output-db", cp); err == nil || !strings.Contains(err.Error(), "CATALOG itself") {
		t.Errorf("--output-db onto the source: %v", err)
	}
	if after, _ := os.ReadFile(cp); !bytes.Equal(after, data) {
		t.Error("the source database was changed")
	}
}
