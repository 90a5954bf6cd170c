package catalogmirror

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlock-mirror/airlock/internal/testutil/golden"

	"github.com/airlock-mirror/airlock/internal/catalog"
	"github.com/airlock-mirror/airlock/internal/clusterres"
)

func TestInstallForCSVMetadata(t *testing.T) {
	c := communitySubset(t)
	in, err := InstallFor(c, InstallRequest{Package: "kubevirt-wol", CatalogSource: "community-operator-index"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := clusterres.YAML(in.Objects...)
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "install-kubevirt-wol.yaml", b)
	t.Log(in.Notes)
	if _, err := InstallFor(c, InstallRequest{Package: "nope", CatalogSource: "x"}); err == nil || !strings.Contains(err.Error(), "kubevirt-wol") {
		t.Errorf("unknown package: %v (want the list of packages)", err)
	}
	if _, err := InstallFor(c, InstallRequest{Package: "kubevirt-wol", Channel: "nope", CatalogSource: "x"}); err == nil || !strings.Contains(err.Error(), "have:") {
		t.Errorf("unknown channel: %v (want the list of channels)", err)
	}
}

// TestInstallModeFromBundleObject reads installModes from a CSV carried
// only in olm.bundle.object and picks OwnNamespace.
func TestInstallModeFromBundleObject(t *testing.T) {
	csv := `{"apiVersion":"operators.coreos.com/v1alpha1","kind":"ClusterServiceVersion","metadata":{"name":"demo.v1.0.0"},` +
		`"spec":{"installModes":[{"type":"OwnNamespace","supported":true},{"type":"SingleNamespace","supported":true},{"type":"AllNamespaces","supported":false}]}}`
	fbc := `{"schema":"olm.package","name":"demo","defaultChannel":"stable"}
{"schema":"olm.channel","name":"stable","package":"demo","entries":[{"name":"demo.v1.0.0"}]}
{"schema":"olm.bundle","name":"demo.v1.0.0","package":"demo","image":"quay.io/demo/bundle:v1",
 "properties":[{"type":"olm.package","value":{"packageName":"demo","version":"1.0.0"}},{"type":"olm.bundle.object","value":{"data":"` + base64.StdEncoding.EncodeToString([]byte(csv)) + `"}}]}
`
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "c.json"), []byte(fbc), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := catalog.LoadDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	in, err := InstallFor(c, InstallRequest{Package: "demo", Namespace: "demo-ns", CatalogSource: "cs"})
	if err != nil {
		t.Fatal(err)
	}
	if !in.Options.AllNamespaces && len(in.Objects) == 3 {
		og := in.Objects[1].(clusterres.OperatorGroup)
		if len(og.Spec.TargetNamespaces) != 1 || og.Spec.TargetNamespaces[0] != "demo-ns" {
			t.Errorf("OperatorGroup targets %v, want [demo-ns]", og.Spec.TargetNamespaces)
		}
	} else {
		t.Errorf("OwnNamespace-only bundle installed AllNamespaces: %+v", in.Options)
	}
	if _, err := InstallFor(c, InstallRequest{Package: "demo", Namespace: GlobalOperatorsNamespace, CatalogSource: "cs"}); err == nil {
		t.Error("OwnNamespace-only operator accepted in openshift-operators")
	}
}

func TestInstallForBundleObject(t *testing.T) {
	// The old-format oc test catalog carries CSVs only in olm.bundle.object.
	c, err := catalog.LoadFile(context.Background(), filepath.Join(shared, "oc-test-declcfg-and-sqlite", "index.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	in, err := InstallFor(c, InstallRequest{Package: "etcd", CatalogSource: "test", Approval: "Manual"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := clusterres.YAML(in.Objects...)
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "install-etcd.yaml", b)
	// These 2019 CSVs predate installModes: the fallback is said aloud.
	if !strings.Contains(strings.Join(in.Notes, "\n"), "declares no install modes") {
		t.Errorf("no note about the missing install modes: %v", in.Notes)
	}
	g, err := InstallFor(c, InstallRequest{Package: "etcd", Namespace: GlobalOperatorsNamespace, CatalogSource: "test"})
	if err == nil && len(g.Objects) != 1 {
		t.Errorf("openshift-operators: %d objects, want only the Subscription", len(g.Objects))
	}
}
