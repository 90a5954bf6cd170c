package deletion

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
)

// TestFromPlanGolden: the delete list names each registry destination once,
// the source pinned to its digest when known, with oc-mirror's type names;
// store destinations are left out. Write then Load gives it back.
func TestFromPlanGolden(t *testing.T) {
	d := "sha256:" + strings.Repeat("0a", 32)
	p := plan.Plan{Items: []plan.Item{
		{Source: ref.MustParse("quay.io/ns/app:1.0"), Digest: d, Kind: plan.KindImage,
			Dests: []ref.Ref{ref.MustParse("mirror.example.com:5000/ns/app:1.0"), ref.MustParse("file://store/ns/app:1.0")}},
		{Source: ref.MustParse("registry.redhat.io/op/bundle@" + d), Kind: plan.KindBundle,
			Dests: []ref.Ref{ref.MustParse("mirror.example.com:5000/op/bundle:sha256-" + d[7:])}},
		{Source: ref.MustParse("quay.io/ns/app:1.0"), Kind: plan.KindImage,
			Dests: []ref.Ref{ref.MustParse("mirror.example.com:5000/ns/app:1.0")}},
		{Source: ref.Ref{Transport: ref.OCI, Path: "/w/helm/oci/demo-1.2.0", Tag: "1.2.0"}, Digest: d, Kind: plan.KindHelmChart,
			Dests: []ref.Ref{ref.MustParse("mirror.example.com:5000/helm-charts/demo:1.2.0")}},
	}}
	path := filepath.Join(t.TempDir(), "delete-images.yaml")
	if err := Write(path, FromPlan(p)); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	want := `apiVersion: mirror.openshift.io/v2alpha1
items:
- imageName: quay.io/ns/app@` + d + `
  imageReference: docker://mirror.example.com:5000/ns/app:1.0
  type: generic
- imageName: registry.redhat.io/op/bundle@` + d + `
  imageReference: docker://mirror.example.com:5000/op/bundle:sha256-` + d[7:] + `
  type: operatorBundle
- imageName: oci:///w/helm/oci/demo-1.2.0@` + d + `
  imageReference: docker://mirror.example.com:5000/helm-charts/demo:1.2.0
  type: helmChart
kind: DeleteImageList
`
	if string(got) != want {
		t.Errorf("delete list:\n%s\nwant:\n%s", got, want)
	}
	l, err := Load(path)
	if err != nil || len(l.Items) != 3 {
		t.Fatalf("Load: %d items, %v", len(l.Items), err)
	}
}
