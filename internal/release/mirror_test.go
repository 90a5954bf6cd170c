package release

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
)

var update = flag.Bool("update", false, "rewrite golden files")

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update once to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from the golden file; got:\n%s", path, got)
	}
}

func planText(p plan.Plan) []byte {
	var b strings.Builder
	for _, it := range p.Items {
		var ds []string
		for _, d := range it.Dests {
			ds = append(ds, d.String())
		}
		fmt.Fprintf(&b, "%s %s=%s [%s]\n", it.Kind, it.Source, strings.Join(ds, ","), it.Origin.Component)
	}
	return []byte(b.String())
}

// realPayload is the REAL 4.12.0 payload: its image-references and
// release-metadata, as Read returns them from the real layer.
func realPayload(t *testing.T) *Payload {
	t.Helper()
	_, comps, err := ParseImageReferences(realFile(t, "release-manifests/image-references"), "image-references")
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseMetadata(realFile(t, "release-manifests/release-metadata"), "release-metadata")
	if err != nil {
		t.Fatal(err)
	}
	return &Payload{Version: m.Version, Architecture: "amd64", Components: comps, Metadata: m}
}

const realReleaseDigest = "sha256:4c5a7e26d707780be6466ddc9591865beb2e3baa5556432d23e8d57966a2dd18"

func TestPlanMirrorRealPayload(t *testing.T) {
	p := realPayload(t)
	spec := MirrorSpec{
		Release: ref.MustParse("quay.io/openshift-release-dev/ocp-release:4.12.0-x86_64").WithDigest(realReleaseDigest),
		Payload: p,
		To:      ref.MustParse("mirror.example.com:5000/ocp4/openshift4"),
	}
	pl, err := PlanMirror(spec)
	if err != nil {
		t.Fatal(err)
	}
	dests := 0
	for _, it := range pl.Items {
		dests += len(it.Dests)
	}
	if dests != 184 {
		t.Errorf("%d destinations, want 184 (release + 183 components)", dests)
	}
	if got := pl.Items[0].Dests[0].String(); got != "mirror.example.com:5000/ocp4/openshift4:4.12.0-x86_64" {
		t.Errorf("release destination %s", got)
	}
	if got := pl.Items[1].Dests[0].String(); got != "mirror.example.com:5000/ocp4/openshift4:4.12.0-x86_64-agent-installer-api-server" {
		t.Errorf("first component destination %s", got)
	}
	checkGolden(t, "plan-4.12.0.txt", planText(pl))

	pairs := MirrorPairs(spec, spec.Release.Repository())
	ics, ids, err := InstallConfigSnippets(pairs)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "snippets-4.12.0.yaml", []byte(ics+"\n"+ids))
	idms, icsp, err := ClusterResources(pairs, ResourceName(p.Version))
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "idms-4.12.0.yaml", idms)
	checkGolden(t, "icsp-4.12.0.yaml", icsp)
}

func TestPlanMirrorToDirAndBack(t *testing.T) {
	p := realPayload(t)
	rel := ref.MustParse("quay.io/openshift-release-dev/ocp-release@" + realReleaseDigest)
	store := ref.MustParse("file://" + StoreRepo)
	toDir, err := PlanMirror(MirrorSpec{Release: rel, Payload: p, To: store})
	if err != nil {
		t.Fatal(err)
	}
	// The store written by --to-dir is read back by --from-dir using the
	// same tags: every component source of the upload must be a
	// destination of the download.
	written := map[string]bool{}
	for _, it := range toDir.Items {
		for _, d := range it.Dests {
			written[d.String()] = true
		}
	}
	fromStore := store.WithTag("4.12.0-x86_64")
	up, err := PlanMirror(MirrorSpec{
		Release: fromStore.WithDigest(realReleaseDigest), Payload: p,
		To: ref.MustParse("registry.local/ocp/release"), FromStore: &store,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range up.Items[1:] {
		if !written[it.Source.String()] {
			t.Errorf("upload reads %s, which the download never wrote", it.Source)
		}
		if it.Digest == "" {
			t.Errorf("upload item %s has no expected digest", it.Source)
		}
	}
	checkGolden(t, "plan-4.12.0-from-dir.txt", planText(up))
}

func TestPlanMirrorOptions(t *testing.T) {
	p := realPayload(t)
	rel := ref.MustParse("quay.io/openshift-release-dev/ocp-release@" + realReleaseDigest)
	toRel := ref.MustParse("registry.local/ocp/release-images:4.12.0")
	pl, err := PlanMirror(MirrorSpec{Release: rel, Payload: p, To: ref.MustParse("registry.local/ocp/release"), ToRelease: &toRel, KeepManifestList: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := pl.Items[0].Dests[0].String(); got != "registry.local/ocp/release-images:4.12.0" {
		t.Errorf("--to-release-image not honoured: %s", got)
	}
	if got := pl.Items[1].Dests[0].Tag; got != "4.12.0-multi-agent-installer-api-server" {
		t.Errorf("keep-manifest-list tag %s, want -multi", got)
	}
	pairs := MirrorPairs(MirrorSpec{Release: rel, Payload: p, To: ref.MustParse("registry.local/ocp/release"), ToRelease: &toRel}, rel.Repository())
	if pairs[0].Source != "quay.io/openshift-release-dev/ocp-release" || pairs[0].Mirror != "registry.local/ocp/release-images" {
		t.Errorf("release pair %+v, want it mirrored to the --to-release-image repository", pairs[0])
	}
}

func TestPlanMirrorErrors(t *testing.T) {
	long := &Payload{Version: "4.12.0", Architecture: "amd64", Components: []Component{{
		Name: strings.Repeat("x", 120), Image: ref.MustParse("quay.io/a/b@sha256:" + strings.Repeat("c", 64)),
	}}}
	rel := ref.MustParse("quay.io/a/r@sha256:" + strings.Repeat("d", 64))
	if _, err := PlanMirror(MirrorSpec{Release: rel, Payload: long, To: ref.MustParse("r.local/x")}); err == nil || !strings.Contains(err.Error(), "component \"xxxx") {
		t.Errorf("long tag: err = %v", err)
	}
	if _, err := PlanMirror(MirrorSpec{Release: rel, Payload: long, To: ref.MustParse("r.local/x:tag")}); err == nil || !strings.Contains(err.Error(), "without tag or digest") {
		t.Errorf("--to with tag: err = %v", err)
	}
	if _, err := PlanMirror(MirrorSpec{Release: ref.MustParse("quay.io/a/r:1"), Payload: long, To: ref.MustParse("r.local/x")}); err == nil || !strings.Contains(err.Error(), "not resolved to a digest") {
		t.Errorf("unresolved release: err = %v", err)
	}
}

func TestResourceName(t *testing.T) {
	if got := ResourceName("4.12.0-rc.1+Build_7"); got != "release-4.12.0-rc.1-build-7" {
		t.Errorf("ResourceName = %s", got)
	}
}

// oc-mirror's naming, for ImageSetConfiguration platform releases.
func TestPlanMirrorOCMirrorLayout(t *testing.T) {
	p := realPayload(t)
	spec := MirrorSpec{
		Layout:  LayoutOCMirror,
		Release: ref.MustParse("quay.io/openshift-release-dev/ocp-release@" + realReleaseDigest),
		Payload: p,
		To:      ref.MustParse("mirror.example.com:5000/prefix"),
	}
	pl, err := PlanMirror(spec)
	if err != nil {
		t.Fatal(err)
	}
	if got := pl.Items[0].Dests[0].String(); got != "mirror.example.com:5000/prefix/openshift/release-images:4.12.0-x86_64" {
		t.Errorf("release destination %s", got)
	}
	if got := pl.Items[1].Dests[0].String(); got != "mirror.example.com:5000/prefix/openshift/release:4.12.0-x86_64-agent-installer-api-server" {
		t.Errorf("component destination %s", got)
	}
	pairs := MirrorPairs(spec, spec.Release.Repository())
	ics, _, err := InstallConfigSnippets(pairs)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "snippets-4.12.0-oc-mirror.yaml", []byte(ics))
}
