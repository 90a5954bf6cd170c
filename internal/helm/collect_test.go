package helm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/airlock-mirror/airlock/internal/helm/helmtest"
	"github.com/airlock-mirror/airlock/internal/imageset"
	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/store"
)

func packChart(t *testing.T, name string) []byte {
	return helmtest.Pack(t, filepath.Join("testdata", name), name)
}

func serveRepo(t *testing.T, name, version string, archive []byte) string {
	return helmtest.ServeRepo(t, helmtest.Chart{Name: name, Version: version, Archive: archive})
}

var demoImages = []string{
	"docker.io/library/busybox:1.36",
	"nginx",
	"quay.example.com/demo/app:2.5.1", // _helpers.tpl, tag from appVersion
	"registry.example.com/db/postgres@sha256:1111111111111111111111111111111111111111111111111111111111111111",
	"registry.example.com/sidecar/proxy:0.9", // subchart, parent value wins
	"registry.example.com/tools/backup:v3",   // CronJob
	"registry.example.com/tools/migrate:v3",  // Job
}

func imagesOf(c Chart) []string {
	var out []string
	for _, i := range c.Images {
		out = append(out, i.Image)
	}
	return out
}

// TestCollectRepositoryChart: a chart from an HTTP repository is picked by
// version, checked against the index digest, rendered with default values
// (helpers, appVersion, subchart values, a disabled template left out,
// NOTES.txt ignored), and its images are exactly the ones every workload
// kind names; imagePaths add the custom resource's image.
func TestCollectRepositoryChart(t *testing.T) {
	archive := packChart(t, "demo")
	repoURL := serveRepo(t, "demo", "1.2.0", archive)
	work := t.TempDir()
	cfg := imageset.Helm{Repositories: []imageset.HelmRepository{{Name: "example", URL: repoURL,
		Charts: []imageset.HelmChart{{Name: "demo", Version: "1.2.0"}}}}}
	charts, err := Collect(context.Background(), cfg, Options{WorkDir: work})
	if err != nil {
		t.Fatal(err)
	}
	if len(charts) != 1 {
		t.Fatalf("got %d charts", len(charts))
	}
	c := charts[0]
	if got := imagesOf(c); !reflect.DeepEqual(got, demoImages) {
		t.Errorf("images:\n got %q\nwant %q", got, demoImages)
	}
	if c.ID() != "example/demo:1.2.0" || c.Source != repoURL+"/demo-1.2.0.tgz" {
		t.Errorf("chart %s from %s", c.ID(), c.Source)
	}
	saved, err := os.ReadFile(c.Archive)
	if err != nil || !bytes.Equal(saved, archive) {
		t.Errorf("saved archive differs from the served one (%v)", err)
	}

	cfg.Repositories[0].Charts[0].ImagePaths = []string{"{.spec.custom[*].image}"}
	charts, err = Collect(context.Background(), cfg, Options{WorkDir: work})
	if err != nil {
		t.Fatal(err)
	}
	want := append(append([]string(nil), demoImages...), "registry.example.com/plugins/custom:4.0")
	sort.Strings(want)
	if got := imagesOf(charts[0]); !reflect.DeepEqual(got, want) {
		t.Errorf("with imagePaths:\n got %q\nwant %q", got, want)
	}
	if charts[0].Digest != c.Digest {
		t.Errorf("same archive, different artifact digest: %s then %s", c.Digest, charts[0].Digest)
	}
}

// TestChartLayout: the OCI layout holds the helm artifact: manifest with
// helm's config and layer media types, the layer byte-identical to the
// archive, the config the Chart.yaml metadata; tagged with the version.
func TestChartLayout(t *testing.T) {
	archive := packChart(t, "demo")
	p := filepath.Join(t.TempDir(), "demo.tgz")
	if err := os.WriteFile(p, archive, 0o644); err != nil {
		t.Fatal(err)
	}
	charts, err := Collect(context.Background(), imageset.Helm{Local: []imageset.HelmChart{{Name: "demo", Path: p}}},
		Options{WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	c := charts[0]
	if c.ID() != "demo:1.2.0" || c.Layout.Transport != ref.OCI || c.Layout.Tag != "1.2.0" {
		t.Fatalf("chart %s layout %s", c.ID(), c.Layout)
	}
	s, err := store.Open(c.Layout.Path)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := s.Lookup("1.2.0")
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest.String() != c.Digest {
		t.Errorf("layout tag 1.2.0 is %s, chart digest %s", desc.Digest, c.Digest)
	}
	mb, err := s.ReadBlob(c.Digest)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		MediaType string
		Config    struct{ MediaType, Digest string }
		Layers    []struct{ MediaType, Digest string }
	}
	if err := json.Unmarshal(mb, &m); err != nil {
		t.Fatal(err)
	}
	if m.MediaType != "application/vnd.oci.image.manifest.v1+json" || m.Config.MediaType != ConfigMediaType ||
		len(m.Layers) != 1 || m.Layers[0].MediaType != LayerMediaType {
		t.Fatalf("manifest %s", mb)
	}
	if m.Layers[0].Digest != c.ArchiveDigest {
		t.Errorf("layer %s, archive %s", m.Layers[0].Digest, c.ArchiveDigest)
	}
	layer, _ := s.ReadBlob(m.Layers[0].Digest)
	if !bytes.Equal(layer, archive) {
		t.Error("layer is not the archive")
	}
	cfgb, _ := s.ReadBlob(m.Config.Digest)
	var meta map[string]any
	if err := json.Unmarshal(cfgb, &meta); err != nil || meta["name"] != "demo" || meta["version"] != "1.2.0" || meta["appVersion"] != "2.5.1" {
		t.Errorf("config %s (%v)", cfgb, err)
	}
}

// TestItems: one helm-chart item per chart, one image item per distinct
// image with the chart as origin; images without tag get latest.
func TestItems(t *testing.T) {
	dest := ref.MustParse("docker://mirror.example.com:5000/prefix")
	charts := []Chart{
		{Name: "a", Version: "1.0.0+build.1", Repo: "r", Digest: "sha256:" + strings.Repeat("a", 64),
			Layout: ref.Ref{Transport: ref.OCI, Path: "/w/oci/a", Tag: "1.0.0_build.1"},
			Images: []FoundImage{{Image: "nginx"}, {Image: "quay.io/x/y:1"}}},
		{Name: "b", Version: "2.0.0", Digest: "sha256:" + strings.Repeat("b", 64),
			Layout: ref.Ref{Transport: ref.OCI, Path: "/w/oci/b", Tag: "2.0.0"},
			Images: []FoundImage{{Image: "quay.io/x/y:1"}}},
	}
	name := func(src ref.Ref) (ref.Ref, error) {
		d := dest
		d.Path = dest.Path + "/" + src.Path
		d.Tag = src.Tag
		return d, nil
	}
	items, err := Items(charts, dest, name)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range items {
		got = append(got, fmt.Sprintf("%s %s -> %s [%s]", it.Kind, it.Source, it.Dests[0], it.Origin.Chart))
	}
	want := []string{
		"helm-chart oci:///w/oci/a:1.0.0_build.1 -> mirror.example.com:5000/prefix/helm-charts/a:1.0.0_build.1 [r/a:1.0.0+build.1]",
		"image docker.io/library/nginx:latest -> mirror.example.com:5000/prefix/library/nginx:latest [r/a:1.0.0+build.1]",
		"image quay.io/x/y:1 -> mirror.example.com:5000/prefix/x/y:1 [b:2.0.0, r/a:1.0.0+build.1]",
		"helm-chart oci:///w/oci/b:2.0.0 -> mirror.example.com:5000/prefix/helm-charts/b:2.0.0 [b:2.0.0]",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("items:\n got %q\nwant %q", got, want)
	}
	p := plan.Plan{Items: items}
	if err := p.Validate(); err != nil {
		t.Error(err)
	}
}

// TestCollectErrors: each bad input names the chart and what to do.
func TestCollectErrors(t *testing.T) {
	archive := packChart(t, "demo")
	repoURL := serveRepo(t, "demo", "1.2.0", archive)
	dir := t.TempDir()
	notChart := filepath.Join(dir, "x.tgz")
	os.WriteFile(notChart, []byte("not gzip"), 0o644)
	repo := func(name, version string, paths ...string) imageset.Helm {
		return imageset.Helm{Repositories: []imageset.HelmRepository{{Name: "example", URL: repoURL,
			Charts: []imageset.HelmChart{{Name: name, Version: version, ImagePaths: paths}}}}}
	}
	for _, tc := range []struct {
		name string
		cfg  imageset.Helm
		want string
	}{
		{"unknown chart", repo("nope", ""), `chart "nope" is not in repository`},
		{"unknown version", repo("demo", "9.9.9"), `version 9.9.9 is not in repository ` + repoURL + ` (it has 1.2.0, 0.0.1)`},
		{"missing archive", repo("demo", "0.0.1"), `demo-0.0.1.tgz: 404 Not Found`},
		{"bad image path", repo("demo", "1.2.0", "{.spec.containers[*.image}"), `imagePaths "{.spec.containers[*.image}"`},
		{"image path selects a list", repo("demo", "1.2.0", "{.spec.template.spec.containers}"), `selects a slice, not an image reference`},
		{"not a repository", imageset.Helm{Repositories: []imageset.HelmRepository{{Name: "x", URL: strings.TrimSuffix(repoURL, "/charts") + "/nothing",
			Charts: []imageset.HelmChart{{Name: "demo"}}}}}, `nothing/index.yaml: 404 Not Found`},
		{"local directory", imageset.Helm{Local: []imageset.HelmChart{{Name: "demo", Path: "testdata/demo"}}}, `is a directory; package it first (helm package testdata/demo)`},
		{"local not a chart", imageset.Helm{Local: []imageset.HelmChart{{Name: "x", Path: notChart}}}, `mirror.helm.local "x" (` + notChart + `): reading chart archive`},
		{"local wrong name", imageset.Helm{Local: []imageset.HelmChart{{Name: "other", Path: writeTemp(t, archive)}}}, `holds chart "demo"; fix name or path`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Collect(context.Background(), tc.cfg, Options{WorkDir: t.TempDir()})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func writeTemp(t *testing.T, b []byte) string {
	p := filepath.Join(t.TempDir(), "c.tgz")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLatestVersion: without a version the highest non-prerelease wins.
func TestLatestVersion(t *testing.T) {
	idx := &indexFile{Entries: map[string][]indexEntry{"c": {
		{Version: "1.10.0"}, {Version: "2.0.0-rc.1"}, {Version: "1.9.3"}, {Version: "v1.2.0"}}}}
	e, err := idx.pick("R", "c", "")
	if err != nil || e.Version != "1.10.0" {
		t.Fatalf("picked %s (%v)", e.Version, err)
	}
}

// TestCollectWithValues: charts[].values (oc-mirror v2) override the
// chart's defaults when it is rendered, as helm template --values does:
// the disabled debug template switched on brings its image, a site
// registry replaces the app's, the other images stay; the config's map is
// left as given (the next chart or run sees the same values).
func TestCollectWithValues(t *testing.T) {
	archive := packChart(t, "demo")
	local := filepath.Join(t.TempDir(), "demo-1.2.0.tgz")
	if err := os.WriteFile(local, archive, 0o644); err != nil {
		t.Fatal(err)
	}
	values := map[string]any{"debug": map[string]any{"enabled": true}, "image": map[string]any{"registry": "registry.site.local"}}
	cfg := imageset.Helm{Local: []imageset.HelmChart{{Name: "demo", Path: local, Values: values}}}
	charts, err := Collect(context.Background(), cfg, Options{WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, i := range demoImages {
		if i == "quay.example.com/demo/app:2.5.1" {
			i = "registry.site.local/demo/app:2.5.1"
		}
		want = append(want, i)
	}
	want = append(want, "registry.example.com/tools/debug:never")
	sort.Strings(want)
	if got := imagesOf(charts[0]); !reflect.DeepEqual(got, want) {
		t.Errorf("with values:\n got %q\nwant %q", got, want)
	}
	if b, _ := json.Marshal(values); string(b) != `{"debug":{"enabled":true},"image":{"registry":"registry.site.local"}}` {
		t.Errorf("the config's values were changed: %s", b)
	}
}
