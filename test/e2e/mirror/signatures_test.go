package mirror_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/airlock-mirror/airlock/internal/orchestrate"
	"github.com/airlock-mirror/airlock/internal/testutil/clitest"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

func sigReport(t *testing.T, args ...string) (*orchestrate.SigReport, error) {
	t.Helper()
	out, errOut, err := clitest.Run(t, append([]string{"signatures", "report", "-o", "json"}, args...)...)
	var rep orchestrate.SigReport
	if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil {
		t.Fatalf("signatures report %v: %v (%v)\n%s\n%s", args, jerr, err, out, errOut)
	}
	return &rep, err
}

// TestCatalogMixedSignatures: a catalog whose bundles mix signed and
// unsigned images (as certified catalogs do). Best-effort mirrors every
// image with its signatures and `signatures report` names exactly the
// unsigned ones, counted per package; strict fails exactly those images
// and still mirrors every signed image of the same bundles — no bundle is
// skipped whole for one unsigned related image.
func TestCatalogMixedSignatures(t *testing.T) {
	f := newFixture(t)
	work := t.TempDir()
	cfg := filepath.Join(work, "imageset.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`apiVersion: mirror.openshift.io/v2alpha1
kind: ImageSetConfiguration
mirror:
  operators:
  - catalog: %s
    packages:
    - name: ecr-secret-operator
      minVersion: 0.4.0
      maxVersion: 0.4.1
`, f.catalogRef)), 0o644); err != nil {
		t.Fatal(err)
	}
	before, err := sigReport(t, "-c", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(before.Images) < 4 || before.Total.Signed != 0 {
		t.Fatalf("catalog images before signing: %+v", before.Total)
	}
	// Sign every other image with a tag-style signature.
	wantSigned := map[string]bool{}
	var wantUnsigned []string
	for i, im := range before.Images {
		if i%2 == 1 {
			wantUnsigned = append(wantUnsigned, im.Source)
			continue
		}
		sig, err := synth.Image(int64(9000+i), synth.WithOCI(), synth.WithLayerSize(64))
		if err != nil {
			t.Fatal(err)
		}
		repo, _, _ := strings.Cut(im.Source, "@")
		if j := strings.LastIndex(repo, ":"); j > strings.LastIndex(repo, "/") {
			repo = repo[:j]
		}
		if _, err := synth.Push(sig, repo+":"+strings.Replace(im.Digest, ":", "-", 1)+".sig", remote.WithTransport(f.src.Transport)); err != nil {
			t.Fatal(err)
		}
		wantSigned[im.Source] = true
	}
	sort.Strings(wantUnsigned)
	unsignedOf := func(rep *orchestrate.SigReport) []string {
		var out []string
		for _, im := range rep.Images {
			if !im.Signed {
				out = append(out, im.Source)
			}
		}
		sort.Strings(out)
		return out
	}

	best := regtest.Start(t)
	run(t, "mirror", "-c", cfg, "--workspace", "file://"+filepath.Join(work, "ws1"), "docker://"+best.Host+"/m")
	rep, err := sigReport(t, "-c", cfg, "docker://"+best.Host+"/m")
	if err != nil {
		t.Errorf("after a best-effort mirror the report finds something missing: %v\n%+v", err, rep.Total)
	}
	if got := unsignedOf(rep); strings.Join(got, "\n") != strings.Join(wantUnsigned, "\n") {
		t.Errorf("unsigned images reported:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantUnsigned, "\n"))
	}
	if rep.Total.Signed != len(wantSigned) || rep.Total.MissingAtDest != 0 {
		t.Errorf("total %+v, want %d signed, none missing", rep.Total, len(wantSigned))
	}
	found := false
	for _, g := range rep.Groups {
		if g.Name == "package ecr-secret-operator (redhat/community-operator-index:v4.18)" || strings.HasPrefix(g.Name, "package ecr-secret-operator") {
			found = true
			if g.Images != len(before.Images) || g.Signed+g.Unsigned != g.Images {
				t.Errorf("package group %+v", g)
			}
		}
	}
	if !found {
		t.Errorf("no package group in %+v", rep.Groups)
	}

	strict := regtest.Start(t)
	_, errOut, err := clitest.Run(t, "mirror", "-c", cfg, "--signatures", "strict", "--workspace", "file://"+filepath.Join(work, "ws2"), "docker://"+strict.Host+"/m")
	if err == nil {
		t.Fatalf("strict mirror with unsigned images succeeded:\n%s", errOut)
	}
	rep, _ = sigReport(t, "-c", cfg, "docker://"+strict.Host+"/m")
	for _, im := range rep.Images {
		present := len(im.Dests) == 1 && im.Dests[0].ImagePresent
		if present != wantSigned[im.Source] {
			t.Errorf("strict: %s (signed %v) present at the mirror: %v", im.Source, wantSigned[im.Source], present)
		}
		if !wantSigned[im.Source] && !strings.Contains(errOut, strings.TrimPrefix(im.Source, f.src.Host)) {
			t.Errorf("strict output does not name unsigned %s", im.Source)
		}
	}
}
