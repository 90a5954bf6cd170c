package mirror_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlock-mirror/airlock/internal/imageset"
	"github.com/airlock-mirror/airlock/internal/orchestrate"
	"github.com/airlock-mirror/airlock/internal/testutil/clitest"
)

func planJSON(t *testing.T, args ...string) *orchestrate.ConfigPlan {
	t.Helper()
	out := run(t, append([]string{"plan", "-o", "json"}, args...)...)
	var cp orchestrate.ConfigPlan
	if err := json.Unmarshal([]byte(out), &cp); err != nil {
		t.Fatalf("plan -o json: %v\n%s", err, out)
	}
	return &cp
}

func group(t *testing.T, cp *orchestrate.ConfigPlan, name string) orchestrate.Summary {
	t.Helper()
	var names []string
	for _, g := range cp.Groups {
		if g.Group == name {
			return g
		}
		names = append(names, g.Group)
	}
	t.Fatalf("no group %q in %v", name, names)
	return orchestrate.Summary{}
}

// TestPlanMatchesMirror: `airlock plan` resolves the config to digests
// from manifests only; the blobs it says a mirror-to-disk transfers are the
// blobs the run copies; after the run it finds everything held; a plan
// after adding a package shows only the new images and blobs; the pinned
// config it writes reads the same digests; a destination short of space
// fails before anything is written.
func TestPlanMatchesMirror(t *testing.T) {
	f := newFixture(t)
	f.withChart(t)
	work := t.TempDir()
	dir := filepath.Join(work, "store")
	cfg := f.config(t, work, "ecr-secret-operator", "kairos-operator")

	cp := planJSON(t, "-c", cfg, "file://"+dir, "--graph-url", f.graphURL)
	if _, err := os.Stat(dir + "/blobs"); err == nil {
		t.Fatal("plan wrote into the store")
	}
	if r1, r2 := group(t, cp, "release 4.12.1"), group(t, cp, "release 4.12.2"); r1.Images != 5 || r2.Images != 7 {
		t.Errorf("releases of 4 and 6 components: %d and %d images, want 5 and 7", r1.Images, r2.Images)
	}
	for _, g := range []string{"release 4.12.1", "release 4.12.2", "catalog " + f.catalogRef,
		"package ecr-secret-operator (" + f.catalogRef + ")", "package kairos-operator (" + f.catalogRef + ")", "additionalImages"} {
		if s := group(t, cp, g); s.Images == 0 || s.Blobs == 0 || s.Bytes == 0 {
			t.Errorf("group %s is empty: %+v", g, s)
		}
	}
	// The chart group: the 8 images it names and the chart itself.
	if g := group(t, cp, "chart demo-repo/demo:1.2.0"); g.Images != len(f.chartImages)+1 || g.Blobs == 0 || g.TransferBlobs != g.Blobs {
		t.Errorf("chart group: %+v, want %d images (%d named + the chart)", g, len(f.chartImages)+1, len(f.chartImages))
	}
	// The two releases share components: dedup is visible in the total.
	if cp.Total.BytesBeforeDedup <= cp.Total.Bytes || cp.Total.HeldBytes != 0 || cp.Total.TransferBytes == 0 {
		t.Errorf("total: %+v", cp.Total)
	}
	if len(cp.Blocked) != 1 || !strings.Contains(cp.Blocked[0].Image, "unwanted") {
		t.Errorf("blocked: %+v", cp.Blocked)
	}
	for _, p := range cp.Images {
		if !strings.HasPrefix(p.Digest, "sha256:") || len(p.Manifests) == 0 {
			t.Errorf("%s not resolved: %+v", p.Source, p)
		}
	}
	if cp.Space == nil || !cp.Space.Enough() || cp.Space.Needed != cp.Total.TransferBytes {
		t.Errorf("space: %+v", cp.Space)
	}
	// The blobs of the copied images (not the catalog, rebuilt by the run
	// with a layer of its own) are what the run copies.
	want := map[string]bool{}
	for _, p := range cp.Images {
		if !p.Rebuilt {
			for _, b := range p.Blobs {
				want[b.Digest] = true
			}
		}
	}
	saved := filepath.Join(dir, "working-dir", "plan", "plan.json")
	if _, err := orchestrate.LoadPlan(saved); err != nil {
		t.Fatalf("plan not saved: %v", err)
	}
	old := filepath.Join(work, "plan-1.json")
	if err := os.Rename(saved, old); err != nil {
		t.Fatal(err)
	}
	pinned, err := imageset.Load(filepath.Join(dir, "working-dir", "plan", "plan-imageset.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := pinned.Mirror.Operators[0].Catalog; got != f.catalogRef+"@"+f.catalogDgst {
		t.Errorf("pinned catalog %s, want %s@%s", got, f.catalogRef, f.catalogDgst)
	}
	if got := pinned.Mirror.AdditionalImages[0].Name; !strings.HasPrefix(got, f.web+"@sha256:") {
		t.Errorf("pinned additional image %s: want %s@sha256:...", got, f.web)
	}

	out := run(t, "mirror", "-c", cfg, "file://"+dir, "--graph-url", f.graphURL)
	copied, _ := blobStats(t, out)
	if copied != len(want) {
		t.Errorf("the run copied %d blobs, the plan said %d", copied, len(want))
	}
	for d := range want {
		if !storeBlobs(t, dir)[strings.TrimPrefix(d, "sha256:")] {
			t.Errorf("planned blob %s is not in the store", d)
		}
	}

	// After the run: everything but the rebuilt catalog's own layer held.
	cp2 := planJSON(t, "-c", cfg, "file://"+dir, "--graph-url", f.graphURL, "--no-save")
	for _, p := range cp2.Images {
		if !p.Rebuilt && !p.Complete {
			t.Errorf("%s not complete at the store after the run", p.Source)
		}
	}
	if cat := group(t, cp2, "release 4.12.1"); cat.TransferBytes != 0 || cat.HeldBlobs != cat.Blobs {
		t.Errorf("release after the run: %+v", cat)
	}

	// One more package: the diff names only its images, the new bytes are
	// what a run after the first would add.
	cfg3 := f.config(t, work, "ecr-secret-operator", "kairos-operator", "shipwright-operator")
	out = run(t, "plan", "-c", cfg3, "file://"+dir, "--graph-url", f.graphURL, "--diff", old, "--no-save")
	var diffLine string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "since ") {
			diffLine = l
		}
		if strings.HasPrefix(l, "  + ") && !strings.Contains(l, "shipwright") {
			t.Errorf("added but not of the new package: %s", l)
		}
		if strings.HasPrefix(l, "  - ") || strings.HasPrefix(l, "  ~ ") {
			t.Errorf("nothing was removed or changed: %s", l)
		}
	}
	if !strings.Contains(diffLine, "0 removed, 0 changed") || strings.Contains(diffLine, " 0 added") || strings.Contains(diffLine, " 0 new blobs") {
		t.Errorf("diff summary: %q\n%s", diffLine, out)
	}

	// Short of space: fails, names the numbers, writes nothing.
	fresh := filepath.Join(work, "fresh")
	_, errOut, err := clitest.Run(t, "plan", "-c", cfg, "file://"+fresh, "--graph-url", f.graphURL, "--disk-limit", "1K")
	if err == nil || !strings.Contains(err.Error(), "not enough space for file://"+fresh) || !strings.Contains(err.Error(), "nothing was written") {
		t.Errorf("short of space: %v\n%s", err, errOut)
	}
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Errorf("plan short of space created %s: %v", fresh, err)
	}
}
