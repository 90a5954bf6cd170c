package mirror_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/airlock-mirror/airlock/internal/testutil/clitest"
)

// TestConfigValidate: `airlock config validate` opens the real catalog and
// the update graph, and names the line and field of a package, channel or
// release channel they lack; --offline checks the file alone.
func TestConfigValidate(t *testing.T) {
	f := newFixture(t)
	work := t.TempDir()
	good := f.config(t, work, "ecr-secret-operator", "kairos-operator")
	out, errOut, err := clitest.Run(t, "config", "validate", "-c", good, "--graph-url", f.graphURL)
	if err != nil || !strings.Contains(out, "valid (file and sources checked; 0 warnings)") {
		t.Fatalf("valid config: %v\n%s%s", err, out, errOut)
	}

	text := mustRead(t, good)
	text = strings.Replace(text, "    - name: kairos-operator\n", "    - name: kairos\n", 1)
	text = strings.Replace(text, "    - name: ecr-secret-operator\n", "    - name: ecr-secret-operator\n      channels: [{name: nightly}]\n      defaultChannel: fast\n", 1)
	text = strings.Replace(text, "stable-4.13", "stable-4.99", 1)
	text = strings.Replace(text, "  operators:\n", "  operators:\n  - catalog: oci:///nonexistent/catalog\n", 1)
	bad := filepath.Join(work, "bad.yaml")
	if err := os.WriteFile(bad, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	lineOf := func(s string) string {
		for i, l := range strings.Split(text, "\n") {
			if strings.Contains(l, s) {
				return bad + ":" + strconv.Itoa(i+1) + ": "
			}
		}
		t.Fatalf("%q not in config", s)
		return ""
	}
	_, errOut, err = clitest.Run(t, "config", "validate", "-c", bad, "--graph-url", f.graphURL)
	if err == nil {
		t.Fatalf("bad config accepted:\n%s", errOut)
	}
	for _, want := range []string{
		lineOf("oci:///nonexistent") + "mirror.operators[0].catalog: catalog oci:///nonexistent/catalog:",
		lineOf("name: kairos") + `mirror.operators[1].packages[1].name: package "kairos" is not in catalog ` + f.catalogRef + "; similar: kairos-operator",
		lineOf("name: nightly") + `mirror.operators[1].packages[0].channels[0].name: package ecr-secret-operator has no channel "nightly"`,
		lineOf("defaultChannel: fast") + `mirror.operators[1].packages[0].defaultChannel: package ecr-secret-operator has no channel "fast"`,
		lineOf("stable-4.99") + "mirror.platform.channels[0]: channel stable-4.99 (amd64):",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("missing\n  %s\nin:\n%s", want, errOut)
		}
	}
	out, errOut, err = clitest.Run(t, "config", "validate", "-c", bad, "--offline")
	if err != nil || !strings.Contains(out, "valid (file checked; catalogs and channels not (--offline)") {
		t.Errorf("--offline: %v\n%s%s", err, out, errOut)
	}

	// packages[].bundles (oc-mirror v2): each name looked up in the catalog.
	for _, tc := range []struct {
		bundle string
		ok     bool
	}{{"kairos-operator.v2.1.1", true}, {"kairos-operator.v9", false}} {
		p := filepath.Join(work, "bundles.yaml")
		bt := strings.Replace(mustRead(t, good), "      minVersion: 2.0.1\n      maxVersion: 2.1.0\n", "      bundles:\n      - name: "+tc.bundle+"\n", 1)
		if err := os.WriteFile(p, []byte(bt), 0o644); err != nil {
			t.Fatal(err)
		}
		_, errOut, err := clitest.Run(t, "config", "validate", "-c", p, "--graph-url", f.graphURL)
		line := strings.Count(bt[:strings.Index(bt, "- name: "+tc.bundle)], "\n") + 1
		want := p + ":" + strconv.Itoa(line) + `: mirror.operators[0].packages[1].bundles[0].name: package kairos-operator has no bundle "kairos-operator.v9"`
		if tc.ok != (err == nil) || (!tc.ok && !strings.Contains(errOut, want)) {
			t.Errorf("bundle %s: %v\n%s", tc.bundle, err, errOut)
		}
	}

	// A targetCatalogSourceTemplate is a local file: checked offline too.
	noTmpl := filepath.Join(work, "no-template.yaml")
	missing := filepath.Join(work, "absent-cs.yaml")
	tmplText := strings.Replace(mustRead(t, good), "    packages:\n", "    targetCatalogSourceTemplate: "+missing+"\n    packages:\n", 1)
	if err := os.WriteFile(noTmpl, []byte(tmplText), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, err = clitest.Run(t, "config", "validate", "-c", noTmpl, "--offline")
	if line := strings.Index(tmplText, "targetCatalogSourceTemplate"); err == nil ||
		!strings.Contains(errOut, noTmpl+":"+strconv.Itoa(strings.Count(tmplText[:line], "\n")+1)+": mirror.operators[0].targetCatalogSourceTemplate: "+missing+": ") {
		t.Errorf("missing template, --offline: %v\n%s", err, errOut)
	}

	// An unknown field: a warning naming its line; with --strict, fatal.
	unk := filepath.Join(work, "unknown.yaml")
	if err := os.WriteFile(unk, []byte(strings.Replace(mustRead(t, good), "    packages:\n", "    packages:\n    - name: shipwright-operator\n      minversion: 0.1.0\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, err = clitest.Run(t, "config", "validate", "-c", unk, "--offline")
	if err != nil || !strings.Contains(errOut, `mirror.operators[0].packages[0].minversion: unknown field "minversion" is ignored (did you mean "minVersion"?)`) {
		t.Errorf("unknown field: %v\n%s%s", err, out, errOut)
	}
	if _, errOut, err = clitest.Run(t, "config", "validate", "-c", unk, "--offline", "--strict"); err == nil {
		t.Errorf("--strict accepted an unknown field:\n%s", errOut)
	}
	// mirror reads the file the same way.
	if _, errOut, err = clitest.Run(t, "mirror", "-c", unk, "--strict", "--dry-run", "file://"+filepath.Join(work, "d")); err == nil ||
		!strings.Contains(err.Error(), `unknown field "minversion"`) {
		t.Errorf("mirror --strict: %v\n%s", err, errOut)
	}
}
