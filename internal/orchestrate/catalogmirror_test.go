package orchestrate

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlock-mirror/airlock/internal/testutil/shared"

	"github.com/airlock-mirror/airlock/internal/clusterres"
	"github.com/airlock-mirror/airlock/internal/engine"
	"github.com/airlock-mirror/airlock/internal/ref"
)

// TestCatalogMirrorLocalSelectionManifestsOnly runs CatalogMirror without
// a front-end: a catalog on disk, one package selected, manifests only.
func TestCatalogMirrorLocalSelectionManifestsOnly(t *testing.T) {
	eng, err := engine.New(engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "manifests")
	var out, errOut bytes.Buffer
	idx := shared.OCTestCatalog(t)
	res, err := CatalogMirror(context.Background(), CatalogMirrorOptions{
		IndexArg: idx, LocalPath: idx, Dest: ref.MustParse("localhost:5000/org"), Packages: []string{"etcd"},
		IndexFilterByOS: "linux/amd64", MaxComponents: 2, ToManifests: dir,
		Scope: clusterres.ScopeRepository, MaxIDMSSize: clusterres.MaxObjectBytes,
		ManifestsOnly: true, Engine: eng, Out: &out, ErrOut: &errOut,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	if res.ManifestsDir != dir || res.Report != nil {
		t.Errorf("result: dir %s, report %v", res.ManifestsDir, res.Report)
	}
	if len(res.Plan.Items) == 0 {
		t.Fatal("empty plan")
	}
	for _, it := range res.Plan.Items {
		if strings.Contains(it.Source.String(), "prometheus") {
			t.Errorf("prometheus not selected but planned: %s", it.Source)
		}
	}
	mapping, err := os.ReadFile(filepath.Join(dir, "mapping.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mapping), "=localhost:5000/org/") {
		t.Errorf("mapping.txt:\n%s", mapping)
	}
	if _, err := os.Stat(filepath.Join(dir, "catalogSource.yaml")); err == nil {
		t.Error("catalogSource.yaml written for a local catalog")
	}
	if !strings.Contains(out.String(), "wrote mirroring manifests to "+dir) || !strings.Contains(errOut.String(), "is a local catalog") {
		t.Errorf("messages:\n%s\n%s", out.String(), errOut.String())
	}
}

// TestCatalogMirrorRefusesExtractContentOnSelection: a rebuilt catalog has
// no pre-built cache for OLM to extract.
func TestCatalogMirrorRefusesExtractContentOnSelection(t *testing.T) {
	eng, err := engine.New(engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	idx := shared.OCTestCatalog(t)
	_, err = CatalogMirror(context.Background(), CatalogMirrorOptions{
		IndexArg: idx, LocalPath: idx, Dest: ref.MustParse("localhost:5000/org"), Packages: []string{"etcd"},
		ToManifests: t.TempDir(), Scope: clusterres.ScopeRepository, MaxIDMSSize: clusterres.MaxObjectBytes,
		ExtractContent: true, ManifestsOnly: true, Engine: eng, Out: &out, ErrOut: &out,
	})
	if err == nil || !strings.Contains(err.Error(), "--extract-content") {
		t.Errorf("err = %v", err)
	}
}
