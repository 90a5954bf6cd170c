package catalogmirror

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/airlock-mirror/airlock/internal/testutil/golden"

	"github.com/airlock-mirror/airlock/internal/catalog"
	"github.com/airlock-mirror/airlock/internal/clusterres"
	"github.com/airlock-mirror/airlock/internal/mapping"
	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
)

const shared = "../../../shared/testdata/catalogs"

func mustDest(t *testing.T, s string) ref.Ref {
	t.Helper()
	d, err := ParseDest(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// ocTestMirror is what oc's TestMirror ("maps related images and bundle
// images", "maps into a single registry namespace") expects for its
// testdata catalog, which the shared test data holds both as FBC and as
// sqlite.
var ocTestMirror = map[string]map[string]string{
	"localhost:5000": {
		"quay.io/example/image:tag":             "localhost:5000/example/image:tag",
		"quay.io/test/prometheus.0.14.0:latest": "localhost:5000/test/prometheus.0.14.0:latest",
		"quay.io/coreos/etcd-operator@sha256:db563baa8194fcfe39d1df744ed70024b0f1f9e9b55b5923c2f3a413c44dc6b8": "localhost:5000/coreos/etcd-operator:b56e2636",
		"quay.io/test/etcd.0.9.0:latest": "localhost:5000/test/etcd.0.9.0:latest",
		"quay.io/coreos/prometheus-operator@sha256:0e92dd9b5789c4b13d53e1319d0a6375bcca4caaf0d698af61198061222a576d": "localhost:5000/coreos/prometheus-operator:7f39d12d",
		"quay.io/coreos/prometheus-operator@sha256:3daa69a8c6c2f1d35dcf1fe48a7cd8b230e55f5229a1ded438f687debade5bcf": "localhost:5000/coreos/prometheus-operator:1ebe036a",
		"quay.io/test/prometheus.0.22.2:latest": "localhost:5000/test/prometheus.0.22.2:latest",
		"quay.io/coreos/etcd-operator@sha256:c0301e4686c3ed4206e370b42de5a3bd2229b9fb4906cf85f3f30650424abec2":       "localhost:5000/coreos/etcd-operator:2f1eb95",
		"quay.io/coreos/prometheus-operator@sha256:5037b4e90dbb03ebdefaa547ddf6a1f748c8eeebeedf6b9d9f0913ad662b5731": "localhost:5000/coreos/prometheus-operator:76771fef",
		"quay.io/test/etcd.0.9.2:latest":        "localhost:5000/test/etcd.0.9.2:latest",
		"quay.io/test/prometheus.0.15.0:latest": "localhost:5000/test/prometheus.0.15.0:latest",
	},
	"localhost:5000/org": {
		"quay.io/example/image:tag":             "localhost:5000/org/example-image:tag",
		"quay.io/test/prometheus.0.14.0:latest": "localhost:5000/org/test-prometheus.0.14.0:latest",
		"quay.io/coreos/etcd-operator@sha256:db563baa8194fcfe39d1df744ed70024b0f1f9e9b55b5923c2f3a413c44dc6b8": "localhost:5000/org/coreos-etcd-operator:b56e2636",
		"quay.io/test/etcd.0.9.0:latest": "localhost:5000/org/test-etcd.0.9.0:latest",
		"quay.io/coreos/prometheus-operator@sha256:0e92dd9b5789c4b13d53e1319d0a6375bcca4caaf0d698af61198061222a576d": "localhost:5000/org/coreos-prometheus-operator:7f39d12d",
		"quay.io/coreos/prometheus-operator@sha256:3daa69a8c6c2f1d35dcf1fe48a7cd8b230e55f5229a1ded438f687debade5bcf": "localhost:5000/org/coreos-prometheus-operator:1ebe036a",
		"quay.io/test/prometheus.0.22.2:latest": "localhost:5000/org/test-prometheus.0.22.2:latest",
		"quay.io/coreos/etcd-operator@sha256:c0301e4686c3ed4206e370b42de5a3bd2229b9fb4906cf85f3f30650424abec2":       "localhost:5000/org/coreos-etcd-operator:2f1eb95",
		"quay.io/coreos/prometheus-operator@sha256:5037b4e90dbb03ebdefaa547ddf6a1f748c8eeebeedf6b9d9f0913ad662b5731": "localhost:5000/org/coreos-prometheus-operator:76771fef",
		"quay.io/test/etcd.0.9.2:latest":        "localhost:5000/org/test-etcd.0.9.2:latest",
		"quay.io/test/prometheus.0.15.0:latest": "localhost:5000/org/test-prometheus.0.15.0:latest",
	},
}

func TestCollectMatchesOCTestMirror(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(shared, "oc-test-declcfg-and-sqlite")
	for _, file := range []string{"index.yaml", "test.db"} {
		c, err := catalog.LoadFile(ctx, filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		for dest, want := range ocTestMirror {
			index := ref.MustParse("quay.io/example/image:tag")
			res, err := Collect(c, Options{Index: &index, Dest: mustDest(t, dest), MaxComponents: DefaultMaxComponents})
			if err != nil {
				t.Fatalf("%s → %s: %v", file, dest, err)
			}
			got := map[string]string{}
			for _, it := range res.Plan.Items {
				if len(it.Dests) != 1 {
					t.Errorf("%s: %d destinations", it.Source, len(it.Dests))
				}
				got[it.Source.Name()] = it.Dests[0].Name()
			}
			for src, dst := range want {
				if got[src] != dst {
					t.Errorf("%s → %s: %s mapped to %q, oc maps it to %s", file, dest, src, got[src], dst)
				}
			}
			for src := range got {
				if _, ok := want[src]; !ok {
					t.Errorf("%s → %s: unexpected image %s", file, dest, src)
				}
			}
			if res.Plan.Items[0].Kind != plan.KindCatalog {
				t.Errorf("first item is %s, want the catalog", res.Plan.Items[0].Kind)
			}
		}
	}
}

// communitySubset loads three real packages of the community catalog.
func communitySubset(t *testing.T) *catalog.Catalog {
	t.Helper()
	tmp := t.TempDir()
	for _, pkg := range []string{"kubevirt-wol", "shipwright-operator", "ecr-secret-operator"} {
		b, err := os.ReadFile(filepath.Join(shared, "community-operators-prod-v4.18", pkg, "catalog.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tmp, pkg+".yaml"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c, err := catalog.LoadDir(context.Background(), tmp)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCommunityManifestsGolden(t *testing.T) {
	c := communitySubset(t)
	index := ref.MustParse("registry.redhat.io/redhat/community-operator-index:v4.18")
	res, err := Collect(c, Options{Index: &index, Dest: mustDest(t, "myregistry.com/olm"), MaxComponents: DefaultMaxComponents})
	if err != nil {
		t.Fatal(err)
	}
	// Every bundle and related image of the catalog is in the plan.
	imgs, _ := catalog.RelatedImages(c)
	srcs := map[string]bool{}
	for _, it := range res.Plan.Items {
		srcs[it.Source.Name()] = true
		if it.Kind == plan.KindBundle || it.Kind == plan.KindRelated {
			if len(it.Origin.Bundles) == 0 || len(it.Origin.Packages) == 0 {
				t.Errorf("%s has no bundle/package origin", it.Source)
			}
		}
		for _, d := range it.Dests {
			if d.Digest != "" || d.Tag == "" {
				t.Errorf("%s: destination %s must have a tag and no digest", it.Source, d)
			}
			if strings.Count(d.Path, "/") != 1 {
				t.Errorf("%s: destination %s has more than 2 path components", it.Source, d)
			}
		}
	}
	for _, img := range imgs {
		p := img.Parsed
		if !p.HasTagOrDigest() {
			p.Tag = "latest"
		}
		if !srcs[p.Name()] {
			t.Errorf("image %s (bundles %v) missing from the plan", img.Ref, img.Bundles)
		}
	}

	dir := t.TempDir()
	written, err := WriteManifests(dir, res, ManifestOptions{Name: IndexName(index)})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range written {
		names = append(names, filepath.Base(p))
	}
	sort.Strings(names)
	if strings.Join(names, ",") != "catalogSource.yaml,imageContentSourcePolicy.yaml,imageDigestMirrorSet.yaml,imageTagMirrorSet.yaml,mapping.txt" {
		t.Errorf("wrote %v", names)
	}
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		golden.Check(t, "community-"+n, b)
	}
}

// TestFileDest checks the mirror-to-disk layout: no name folding, every
// image below <dest>/<index path>, no cluster resources.
func TestFileDest(t *testing.T) {
	c, err := catalog.LoadFile(context.Background(), filepath.Join(shared, "oc-test-declcfg-and-sqlite", "index.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	index := ref.MustParse("quay.io/example/image:tag")
	res, err := Collect(c, Options{Index: &index, Dest: mustDest(t, "file://local/index"), MaxComponents: DefaultMaxComponents})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"quay.io/example/image:tag": "file://local/index/example/image:tag",
		"quay.io/coreos/etcd-operator@sha256:c0301e4686c3ed4206e370b42de5a3bd2229b9fb4906cf85f3f30650424abec2": "file://local/index/example/image/coreos/etcd-operator:2f1eb95",
		"quay.io/test/etcd.0.9.2:latest": "file://local/index/example/image/test/etcd.0.9.2:latest",
	}
	got := map[string]string{}
	for _, it := range res.Plan.Items {
		got[it.Source.Name()] = it.Dests[0].String()
	}
	for s, d := range want {
		if got[s] != d {
			t.Errorf("%s → %s, want %s", s, got[s], d)
		}
	}
	dir := t.TempDir()
	written, err := WriteManifests(dir, res, ManifestOptions{Name: "image"})
	if err != nil {
		t.Fatal(err)
	}
	if len(written) != 1 || filepath.Base(written[0]) != FileMapping {
		t.Errorf("file destination wrote %v, want only mapping.txt", written)
	}
}

// TestBadReferencesAreWarnings builds a catalog whose bundles carry an
// empty related image, an invalid one and a replaces edge to a bundle that
// does not exist: the plan keeps every good image and the warnings name
// bundle and field.
func TestBadReferencesAreWarnings(t *testing.T) {
	dir := t.TempDir()
	fbc := `{"schema":"olm.package","name":"demo","defaultChannel":"stable"}
{"schema":"olm.channel","name":"stable","package":"demo","entries":[{"name":"demo.v1.0.0","replaces":"demo.v0.9.0"}]}
{"schema":"olm.bundle","name":"demo.v1.0.0","package":"demo","image":"quay.io/demo/bundle@sha256:1111111111111111111111111111111111111111111111111111111111111111",
 "properties":[{"type":"olm.package","value":{"packageName":"demo","version":"1.0.0"}}],
 "relatedImages":[{"name":"operator","image":"quay.io/demo/operator@sha256:2222222222222222222222222222222222222222222222222222222222222222"},
                  {"name":"empty","image":""},
                  {"name":"broken","image":"quay.io/Demo/UPPER:v1"}]}
`
	if err := os.WriteFile(filepath.Join(dir, "catalog.json"), []byte(fbc), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := catalog.LoadDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Collect(c, Options{Dest: mustDest(t, "mirror.example.com:5000"), MaxComponents: 2})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(res.Plan.Items); n != 2 {
		t.Errorf("plan has %d items, want the bundle and the operator image", n)
	}
	var msgs []string
	for _, w := range res.Warnings {
		msgs = append(msgs, w.String())
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{"bundle demo.v1.0.0: relatedImages[1] (empty).image", "bundle demo.v1.0.0: relatedImages[2] (broken).image"} {
		if !strings.Contains(all, want) {
			t.Errorf("warnings %q do not mention %q", all, want)
		}
	}
	// The replaces target demo.v0.9.0 does not exist: not fatal (the
	// catalog loader accepts it, as OLM does for a channel's oldest entry),
	// and the bundle is mirrored.
	bundleFound := false
	for _, it := range res.Plan.Items {
		if it.Kind == plan.KindBundle && strings.Contains(it.Source.Path, "demo/bundle") {
			bundleFound = true
		}
	}
	if !bundleFound {
		t.Error("bundle with a dangling replaces edge left out of the plan")
	}
	if res.IndexDest.Path != "" {
		t.Errorf("local catalog got a catalog destination %s", res.IndexDest)
	}
	// No catalog image: no CatalogSource.
	written, err := WriteManifests(t.TempDir(), res, ManifestOptions{Name: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range written {
		if filepath.Base(p) == FileCatalogSource {
			t.Error("CatalogSource written for a catalog that was not mirrored as an image")
		}
	}
}

func TestCollectRejects(t *testing.T) {
	c := &catalog.Catalog{Config: nil}
	for _, o := range []Options{
		{Dest: ref.MustParse("oci:///tmp/x")},
		{Dest: ref.MustParse("quay.io/x:tag")},
		{Dest: mustDest(t, "quay.io"), MaxComponents: -1},
	} {
		if _, err := Collect(c, o); err == nil {
			t.Errorf("Collect accepted %+v", o)
		}
	}
}

func TestManifestsScopeAndSplit(t *testing.T) {
	c := communitySubset(t)
	res, err := Collect(c, Options{Dest: mustDest(t, "mirror.example.com"), MaxComponents: 0})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := WriteManifests(dir, res, ManifestOptions{Name: "community", Scope: clusterres.ScopeRegistry, MaxBytes: 600}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, FileIDMS))
	if err != nil {
		t.Fatal(err)
	}
	// Unfolded names keep the source path, so registry scope applies.
	if !strings.Contains(string(b), "source: quay.io\n") {
		t.Errorf("registry scope not applied:\n%s", b)
	}
	res2, _ := Collect(c, Options{Dest: mustDest(t, "mirror.example.com"), MaxComponents: 0})
	if _, err := WriteManifests(dir, res2, ManifestOptions{Name: "community", MaxBytes: 400}); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(filepath.Join(dir, FileIDMS))
	if !strings.Contains(string(b), "name: community-1\n") {
		t.Errorf("a 400-byte limit did not split the IDMS:\n%s", b)
	}
}

func TestDefaultManifestsDir(t *testing.T) {
	if got := DefaultManifestsDir("redhat-operator-index", time.Unix(1614985528, 0)); got != "manifests-redhat-operator-index-1614985528" {
		t.Errorf("got %s", got)
	}
}

func TestDestinationCollisionWarns(t *testing.T) {
	dir := t.TempDir()
	fbc := `{"schema":"olm.package","name":"demo","defaultChannel":"stable"}
{"schema":"olm.channel","name":"stable","package":"demo","entries":[{"name":"demo.v1.0.0"}]}
{"schema":"olm.bundle","name":"demo.v1.0.0","package":"demo","image":"quay.io/demo/bundle:v1",
 "properties":[{"type":"olm.package","value":{"packageName":"demo","version":"1.0.0"}}],
 "relatedImages":[{"name":"a","image":"quay.io/team/tool:v1"},{"name":"b","image":"ghcr.io/team/tool:v1"}]}
`
	if err := os.WriteFile(filepath.Join(dir, "catalog.json"), []byte(fbc), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := catalog.LoadDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Collect(c, Options{Dest: mustDest(t, "mirror.example.com"), MaxComponents: 2})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, w := range res.Warnings {
		if strings.Contains(w.Message, "mirror.example.com/team/tool:v1") {
			found = true
		}
	}
	if !found {
		t.Errorf("no collision warning: %v", res.Warnings)
	}
}

// TestUploadFromStore is oc's "src is local file, remap images to
// registry": INDEX is the catalog in the local store, the images are read
// from below its path and named at the registry as if mirrored directly;
// the mirror sets still name the original sources.
func TestUploadFromStore(t *testing.T) {
	c, err := catalog.LoadFile(context.Background(), filepath.Join(shared, "oc-test-declcfg-and-sqlite", "index.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	index := ref.MustParse("file://local/index/example/image:tag")
	res, err := Collect(c, Options{Index: &index, Dest: mustDest(t, "quay.io"), MaxComponents: DefaultMaxComponents})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"file://local/index/example/image:tag": "quay.io/example/image:tag",
		"file://local/index/example/image/coreos/etcd-operator@sha256:c0301e4686c3ed4206e370b42de5a3bd2229b9fb4906cf85f3f30650424abec2": "quay.io/coreos/etcd-operator:2f1eb95",
		"file://local/index/example/image/test/etcd.0.9.2:latest":                                                                       "quay.io/test/etcd.0.9.2:latest",
	}
	got := map[string]string{}
	for _, it := range res.Plan.Items {
		got[it.Source.String()] = it.Dests[0].String()
	}
	for s, d := range want {
		if got[s] != d {
			t.Errorf("%s -> %q, want %s (plan: %v)", s, got[s], d, got)
		}
	}
	dir := t.TempDir()
	if _, err := WriteManifests(dir, res, ManifestOptions{Name: "image"}); err != nil {
		t.Fatal(err)
	}
	idms, err := os.ReadFile(filepath.Join(dir, FileIDMS))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(idms), "source: quay.io/coreos/etcd-operator\n") || strings.Contains(string(idms), "file:") {
		t.Errorf("IDMS must name the original sources:\n%s", idms)
	}
}

func TestOCIIndexDestination(t *testing.T) {
	c, err := catalog.LoadFile(context.Background(), filepath.Join(shared, "oc-test-declcfg-and-sqlite", "index.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	index := ref.MustParse("oci:///tmp/layouts/My_Catalog:v2")
	res, err := Collect(c, Options{Index: &index, Dest: mustDest(t, "mirror.example.com/olm"), MaxComponents: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.IndexDest.String(); got != "mirror.example.com/olm/my-catalog:v2" {
		t.Errorf("OCI catalog destination %s", got)
	}
}

// TestRebuiltCatalogIsNotAMappingLine: when the catalog is rebuilt with a
// selection, mapping.txt must not claim a copy of the source catalog (its
// digest differs by design and verify would report a mismatch); the line
// becomes a comment, and the file still parses as a mapping.
func TestRebuiltCatalogIsNotAMappingLine(t *testing.T) {
	idx := ref.MustParse("quay.io/ns/index:v1")
	var p plan.Plan
	p.Add(plan.Item{Source: idx, Dests: []ref.Ref{ref.MustParse("mirror:5000/olm/ns-index:v1")}, Kind: plan.KindCatalog})
	p.Add(plan.Item{Source: ref.MustParse("quay.io/ns/op:v1"), Dests: []ref.Ref{ref.MustParse("mirror:5000/olm/ns-op:v1")}, Kind: plan.KindBundle})
	for _, rebuilt := range []bool{false, true} {
		got := string(mappingFile(p, rebuilt))
		ms, err := mapping.Parse(nil, mapping.Input{Name: "mapping.txt", R: strings.NewReader(got)})
		if err != nil {
			t.Fatalf("rebuilt=%v: mapping.txt does not parse: %v\n%s", rebuilt, err, got)
		}
		wantLines := 2
		if rebuilt {
			wantLines = 1
			if !strings.HasPrefix(got, "# quay.io/ns/index:v1 is not copied") {
				t.Errorf("rebuilt catalog not explained in a comment:\n%s", got)
			}
		}
		if len(ms) != wantLines {
			t.Errorf("rebuilt=%v: %d mapping lines, want %d:\n%s", rebuilt, len(ms), wantLines, got)
		}
	}
}
