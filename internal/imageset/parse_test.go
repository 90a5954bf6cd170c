package imageset

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const full = `apiVersion: mirror.openshift.io/v2alpha1
kind: ImageSetConfiguration
archiveSize: 4
mirror:
  platform:
    graph: true
    release: quay.io/openshift-release-dev/ocp-release:4.18.1-x86_64
    platforms:
      - {os: linux, architecture: amd64}
    channels:
      - name: stable-4.18
        type: ocp
        minVersion: 4.18.1
        maxVersion: 4.18.5
        shortestPath: true
  operators:
    - catalog: registry.redhat.io/redhat/redhat-operator-index:v4.18
      targetCatalog: my-ns/my-index
      targetTag: v1
      full: false
      skipDependencies: true
      targetCatalogSourceTemplate: /path/cs-template.yaml
      platforms: [{os: linux, architecture: arm64}]
      packages:
        - name: elasticsearch-operator
          defaultChannel: stable-v0
          minVersion: 5.6.0
          maxVersion: 6.0.0
        - name: etcd-pinned
          bundles:
            - name: etcdoperator.v0.9.4
        - name: etcd
          channels:
            - name: stable
              minVersion: 0.9.0
              maxVersion: 0.9.4
  additionalImages:
    - name: registry.redhat.io/ubi9/ubi:latest
      targetRepo: custom/ubi
      targetTag: custom
  blockedImages:
    - name: "^registry.example.com/unwanted/.*"
  helm:
    repositories:
      - name: podinfo
        url: https://stefanprodan.github.io/podinfo
        charts:
          - {name: podinfo, version: 5.0.0, imagePaths: ["{.spec.template.spec.custom[*].image}"]}
    local:
      - name: my-chart
        path: /path/to/chart
        values:
          debug: {enabled: true}
          replicas: 2
`

func TestParseFullSchema(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "isc.yaml")
	if err := os.WriteFile(p, []byte(full), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ArchiveSize != 4 || !cfg.Mirror.Platform.Graph || cfg.Mirror.Platform.Channels[0].MaxVersion != "4.18.5" ||
		!cfg.Mirror.Platform.Channels[0].ShortestPath || cfg.Mirror.Platform.Platforms[0].String() != "linux/amd64" {
		t.Errorf("platform not parsed: %+v", cfg.Mirror.Platform)
	}
	op := cfg.Mirror.Operators[0]
	if op.TargetCatalog != "my-ns/my-index" || op.TargetTag != "v1" || !op.SkipDependencies || op.Platforms[0].Architecture != "arm64" ||
		op.TargetCatalogSourceTemplate != "/path/cs-template.yaml" {
		t.Errorf("operator not parsed: %+v", op)
	}
	if op.Packages[0].DefaultChannel != "stable-v0" || op.Packages[0].MinVersion != "5.6.0" || op.Packages[2].Channels[0].MaxVersion != "0.9.4" ||
		len(op.Packages[1].Bundles) != 1 || op.Packages[1].Bundles[0].Name != "etcdoperator.v0.9.4" {
		t.Errorf("packages not parsed: %+v", op.Packages)
	}
	if cfg.Mirror.AdditionalImages[0].TargetRepo != "custom/ubi" || cfg.Mirror.BlockedImages[0].Name == "" ||
		cfg.Mirror.Helm.Repositories[0].Charts[0].ImagePaths[0] == "" || cfg.Mirror.Helm.Local[0].Path != "/path/to/chart" ||
		cfg.Mirror.Helm.Local[0].Values["debug"].(map[string]any)["enabled"] != true || cfg.Mirror.Helm.Local[0].Values["replicas"] != int64(2) {
		t.Errorf("other sections not parsed: %+v", cfg.Mirror)
	}
}

// TestParseErrors: every bad-config case names the file, the line and the
// field path, and says what is wrong.
func TestParseErrors(t *testing.T) {
	head := "apiVersion: mirror.openshift.io/v2alpha1\nkind: ImageSetConfiguration\n"
	op := head + "mirror:\n  operators:\n    - catalog: x:1\n      packages:\n"
	cases := []struct {
		name, doc string
		want      []string
	}{
		{"unknown field", op + "        - name: a\n          minversion: 1.0.0\n",
			[]string{`isc.yaml:8: mirror.operators[0].packages[0].minversion: unknown field "minversion" (did you mean "minVersion"?)`}},
		{"unknown field far from any", head + "mirror:\n  zzzz: 1\n", []string{`isc.yaml:4: mirror.zzzz: unknown field "zzzz"; fields here: additionalImages, blockedImages, helm, operators, platform, samples`}},
		{"v1 leftover", head + "storageConfig:\n  local: {path: /x}\n", []string{`isc.yaml:3: storageConfig: field "storageConfig" is not part of mirror.openshift.io/v2alpha1: oc-mirror v1's metadata backend`}},
		{"wrong type", op + "        - name: a\n          channels: stable\n", []string{`isc.yaml:8: mirror.operators[0].packages[0].channels: want a list, found "stable"`}},
		{"unquoted number", op + "        - name: a\n          minVersion: 4.18\n", []string{`isc.yaml:8: mirror.operators[0].packages[0].minVersion: 4.18 is read as a float, not a string: quote it ("4.18")`}},
		{"wrong kind", "apiVersion: mirror.openshift.io/v2alpha1\nkind: Other\n", []string{`isc.yaml:2: kind: kind "Other"`}},
		{"wrong api", "apiVersion: mirror.openshift.io/v1alpha2\nkind: ImageSetConfiguration\n", []string{`isc.yaml:1: apiVersion: apiVersion "mirror.openshift.io/v1alpha2"`, "oc-mirror v1's format"}},
		{"bad semver", op + "        - name: a\n          minVersion: one\n", []string{`isc.yaml:8: mirror.operators[0].packages[0].minVersion: package a: minVersion "one" is not a semantic version`}},
		{"min > max", op + "        - name: a\n          channels:\n            - {name: s, minVersion: 2.0.0, maxVersion: 1.0.0}\n",
			[]string{`isc.yaml:9: mirror.operators[0].packages[0].channels[0].minVersion: channel a/s: minVersion 2.0.0 is greater than maxVersion 1.0.0`}},
		{"release min > max", head + "mirror:\n  platform:\n    channels:\n      - name: stable-4.18\n        minVersion: 4.18.5\n        maxVersion: 4.18.1\n",
			[]string{`isc.yaml:7: mirror.platform.channels[0].minVersion: channel stable-4.18: minVersion 4.18.5 is greater than maxVersion 4.18.1`}},
		{"range mixing", op + "        - name: a\n          minVersion: 1.0.0\n          channels:\n            - {name: s, maxVersion: 2.0.0}\n",
			[]string{`isc.yaml:10: mirror.operators[0].packages[0].channels[0]: channel a/s: a version range is set both on the package and on this channel`}},
		{"dup package", op + "        - name: a\n        - name: a\n", []string{`isc.yaml:8: mirror.operators[0].packages[1]: package a listed twice in the same catalog`}},
		{"dup channel", op + "        - name: a\n          channels: [{name: s}, {name: s}]\n", []string{`isc.yaml:8: mirror.operators[0].packages[0].channels[1]: channel a/s listed twice`}},
		{"bundles and range", op + "        - name: a\n          minVersion: 1.0.0\n          bundles: [{name: a.v1.0.0}]\n",
			[]string{`isc.yaml:9: mirror.operators[0].packages[0].bundles: package a: bundles and a version range select the same thing two ways`}},
		{"bundles and channel range", op + "        - name: a\n          channels: [{name: s, maxVersion: 2.0.0}]\n          bundles: [{name: a.v1.0.0}]\n",
			[]string{`isc.yaml:9: mirror.operators[0].packages[0].bundles: package a: bundles and a version range`}},
		{"dup bundle", op + "        - name: a\n          bundles: [{name: a.v1}, {name: a.v1}]\n", []string{`isc.yaml:8: mirror.operators[0].packages[0].bundles[1]: bundle a.v1 listed twice`}},
		{"dup catalog", head + "mirror:\n  operators:\n    - catalog: x:1\n    - catalog: x:1\n", []string{`isc.yaml:6: mirror.operators[1]: catalog x:1 listed twice`}},
		{"dup key", head + "mirror:\n  operators:\n    - catalog: x:1\n      catalog: y:1\n", []string{`isc.yaml:6:`, `"catalog" already defined at line 5`}},
		{"arch and platforms", head + "mirror:\n  platform:\n    architectures: [amd64]\n    platforms: [{os: linux, architecture: amd64}]\n", []string{`isc.yaml:4: mirror.platform: architectures and platforms are mutually exclusive`}},
		{"bad regexp", head + "mirror:\n  blockedImages:\n    - name: \"a(b\"\n", []string{`isc.yaml:5: mirror.blockedImages[0].name: "a(b" is not a valid regular expression`}},
		{"bad targetCatalog", head + "mirror:\n  operators:\n    - catalog: x:1\n      targetCatalog: reg.io/ns/idx:v1\n", []string{`isc.yaml:6: mirror.operators[0].targetCatalog: "reg.io/ns/idx:v1"`}},
		{"not yaml", "mirror: [", []string{"isc.yaml", "not valid YAML"}},
		{"empty", "", []string{"isc.yaml: the file is empty"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc), "isc.yaml")
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n  %s\ndoes not contain\n  %s", err, w)
				}
			}
		})
	}
}

// TestParseWarnLenient: unknown fields and v1 leftovers are warnings with
// their line when not strict, the rest of the file is used, and every
// error of a file is reported at once.
func TestParseWarnLenient(t *testing.T) {
	doc := "apiVersion: mirror.openshift.io/v2alpha1\nkind: ImageSetConfiguration\nstorageConfig:\n  local: {path: /x}\nmirror:\n  additionalImages:\n    - name: reg.io/a:1\n      targetrepo: b\n"
	cfg, warns, err := ParseWarn([]byte(doc), "isc.yaml", false)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Mirror.AdditionalImages[0].Name != "reg.io/a:1" {
		t.Errorf("config not read: %+v", cfg.Mirror)
	}
	if len(warns) != 2 || warns[0].Line != 3 || warns[0].Path != "storageConfig" ||
		warns[1].Line != 8 || !strings.Contains(warns[1].Error(), `unknown field "targetrepo" is ignored (did you mean "targetRepo"?)`) {
		t.Errorf("warnings: %v", warns)
	}
	if _, _, err := ParseWarn([]byte(doc), "isc.yaml", true); err == nil || len(err.(Problems)) != 2 {
		t.Errorf("strict: want 2 errors, got %v", err)
	}
	bad := "apiVersion: mirror.openshift.io/v2alpha1\nkind: ImageSetConfiguration\nmirror:\n  blockedImages: [{name: \"(\"}]\n  operators:\n    - catalog: x:1\n      packages: [{name: a, minVersion: x}]\n"
	_, _, err = ParseWarn([]byte(bad), "isc.yaml", false)
	if ps, ok := err.(Problems); !ok || len(ps) != 2 {
		t.Errorf("want both problems at once, got %v", err)
	}
}

func TestParseDelete(t *testing.T) {
	doc := "apiVersion: mirror.openshift.io/v2alpha1\nkind: DeleteImageSetConfiguration\ndelete:\n  operators:\n    - catalog: x:1\n      packages: [{name: a}]\n"
	cfg, err := ParseDelete([]byte(doc), "d.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Delete.Operators[0].Packages[0].Name != "a" {
		t.Errorf("got %+v", cfg)
	}
	if _, err := ParseDelete([]byte(doc+"  blockedImages: []\n"), "d.yaml"); err == nil || !strings.Contains(err.Error(), "blockedImages") {
		t.Errorf("blockedImages accepted in delete config: %v", err)
	}
}
