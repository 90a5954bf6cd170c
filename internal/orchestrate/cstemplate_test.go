package orchestrate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlock-mirror/airlock/internal/testutil/golden"

	"github.com/airlock-mirror/airlock/internal/imageset"
	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
)

const csTemplateText = `apiVersion: operators.coreos.com/v1alpha1
kind: CatalogSource
metadata:
  name: replaced
  namespace: replaced-too
  labels: {site: dc1}
spec:
  displayName: Site operators
  priority: -200
  image: replaced.example.com/x:y
  updateStrategy:
    registryPoll: {interval: 30m}
  grpcPodConfig:
    nodeSelector: {node-role.kubernetes.io/infra: ""}
`

// TestCatalogSourceTemplate: a targetCatalogSourceTemplate keeps what the
// site set (priority, poll interval, node selector, labels) and gets the
// generated name, namespace, sourceType and the mirrored image (golden);
// the other catalog keeps the generated CatalogSource; bad templates are
// problems naming the config's line and field and the template file.
func TestCatalogSourceTemplate(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("cs.yaml", csTemplateText)
	isc := "apiVersion: mirror.openshift.io/v2alpha1\nkind: ImageSetConfiguration\nmirror:\n  operators:\n" +
		"  - catalog: registry.example.com/catalogs/index:v1\n    targetCatalogSourceTemplate: " + good + "\n" +
		"  - catalog: registry.example.com/catalogs/other:v2\n"
	cfg, err := imageset.Parse([]byte(isc), "isc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ts, ps := catalogSourceTemplates(cfg)
	if len(ps) != 0 || len(ts) != 1 {
		t.Fatalf("templates %v, problems %v", ts, ps)
	}
	cats := []plan.Item{
		{Source: ref.MustParse("registry.example.com/catalogs/index:v1"), Dests: []ref.Ref{ref.MustParse("mirror.local:5000/catalogs/index:v1")},
			Kind: plan.KindCatalog, Origin: plan.Origin{Catalog: "registry.example.com/catalogs/index:v1", File: "isc.yaml: mirror.operators[0]"}},
		{Source: ref.MustParse("registry.example.com/catalogs/other:v2"), Dests: []ref.Ref{ref.MustParse("mirror.local:5000/catalogs/other:v2")},
			Kind: plan.KindCatalog, Origin: plan.Origin{Catalog: "registry.example.com/catalogs/other:v2", File: "isc.yaml: mirror.operators[1]"}},
	}
	files, err := ClusterResources(plan.Plan{}, cats, 0)
	if err != nil {
		t.Fatal(err)
	}
	plain := string(files["cs-other-v2.yaml"])
	if err := applyCatalogSourceTemplates(files, cats, ts); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "cs-index-v1-from-template.yaml", files["cs-index-v1.yaml"])
	if string(files["cs-other-v2.yaml"]) != plain || !strings.Contains(plain, "image: mirror.local:5000/catalogs/other:v2") {
		t.Errorf("the catalog without a template changed:\n%s", files["cs-other-v2.yaml"])
	}

	cases := []struct{ name, text, want string }{
		{"wrong kind", "apiVersion: v1\nkind: ConfigMap\n", "want an operators.coreos.com/v1alpha1 CatalogSource"},
		{"configmap source", "apiVersion: operators.coreos.com/v1alpha1\nkind: CatalogSource\nspec:\n  sourceType: configmap\n", `spec.sourceType "configmap"`},
		{"address", "apiVersion: operators.coreos.com/v1alpha1\nkind: CatalogSource\nspec:\n  address: 10.0.0.1:50051\n", "spec.address is set"},
		{"not yaml", "apiVersion: [\n", "not a YAML object"},
	}
	for _, c := range cases {
		p := write(strings.ReplaceAll(c.name, " ", "-")+".yaml", c.text)
		cfg, err := imageset.Parse([]byte(strings.Replace(isc, good, p, 1)), "isc.yaml")
		if err != nil {
			t.Fatal(err)
		}
		ps := CheckCatalogSourceTemplates(cfg)
		if len(ps) != 1 || !strings.Contains(ps.Error(), "isc.yaml:6: mirror.operators[0].targetCatalogSourceTemplate: "+p+": ") || !strings.Contains(ps.Error(), c.want) {
			t.Errorf("%s: %v, want one problem at isc.yaml:6 saying %q", c.name, ps, c.want)
		}
	}
	cfg, _ = imageset.Parse([]byte(strings.Replace(isc, good, filepath.Join(dir, "absent.yaml"), 1)), "isc.yaml")
	if ps := CheckCatalogSourceTemplates(cfg); len(ps) != 1 || !strings.Contains(ps.Error(), "no such file") {
		t.Errorf("a missing template: %v", ps)
	}
}
