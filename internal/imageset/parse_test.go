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
      - {name: my-chart, path: /path/to/chart}
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
	if op.Packages[0].DefaultChannel != "stable-v0" || op.Packages[0].MinVersion != "5.6.0" || op.Packages[1].Channels[0].MaxVersion != "0.9.4" {
		t.Errorf("packages not parsed: %+v", op.Packages)
	}
	if cfg.Mirror.AdditionalImages[0].TargetRepo != "custom/ubi" || cfg.Mirror.BlockedImages[0].Name == "" ||
		cfg.Mirror.Helm.Repositories[0].Charts[0].ImagePaths[0] == "" || cfg.Mirror.Helm.Local[0].Path != "/path/to/chart" {
		t.Errorf("other sections not parsed: %+v", cfg.Mirror)
	}
}

func TestParseErrors(t *testing.T) {
	head := "apiVersion: mirror.openshift.io/v2alpha1\nkind: ImageSetConfiguration\n"
	cases := []struct {
		name, doc string
		want      []string
	}{
		{"unknown field", head + "mirror:\n  operators:\n    - catalog: x:1\n      packages:\n        - name: a\n          minversion: 1.0.0\n", []string{"isc.yaml", `unknown field "mirror.operators[0].packages[0].minversion"`}},
		{"wrong kind", "apiVersion: mirror.openshift.io/v2alpha1\nkind: Other\n", []string{`kind "Other"`}},
		{"wrong api", "apiVersion: mirror.openshift.io/v1alpha2\nkind: ImageSetConfiguration\n", []string{`apiVersion "mirror.openshift.io/v1alpha2"`}},
		{"bad semver", head + "mirror:\n  operators:\n    - catalog: x:1\n      packages:\n        - name: a\n          minVersion: one\n", []string{"operators[0].packages[0] (a)", `minVersion "one"`}},
		{"min > max", head + "mirror:\n  operators:\n    - catalog: x:1\n      packages:\n        - name: a\n          channels:\n            - {name: s, minVersion: 2.0.0, maxVersion: 1.0.0}\n", []string{"channels[0] (s)", "greater than maxVersion"}},
		{"range mixing", head + "mirror:\n  operators:\n    - catalog: x:1\n      packages:\n        - name: a\n          minVersion: 1.0.0\n          channels:\n            - {name: s, maxVersion: 2.0.0}\n", []string{"both on the package and on this channel"}},
		{"dup package", head + "mirror:\n  operators:\n    - catalog: x:1\n      packages:\n        - name: a\n        - name: a\n", []string{"packages[1] (a)", "listed twice"}},
		{"dup channel", head + "mirror:\n  operators:\n    - catalog: x:1\n      packages:\n        - name: a\n          channels: [{name: s}, {name: s}]\n", []string{"channels[1] (s)", "listed twice"}},
		{"dup catalog", head + "mirror:\n  operators:\n    - catalog: x:1\n    - catalog: x:1\n", []string{"operators[1]", "listed twice"}},
		{"arch and platforms", head + "mirror:\n  platform:\n    architectures: [amd64]\n    platforms: [{os: linux, architecture: amd64}]\n", []string{"mutually exclusive"}},
		{"bad regexp", head + "mirror:\n  blockedImages:\n    - name: \"a(b\"\n", []string{"blockedImages[0]", "not a valid regular expression"}},
		{"bad targetCatalog", head + "mirror:\n  operators:\n    - catalog: x:1\n      targetCatalog: reg.io/ns/idx:v1\n", []string{"targetCatalog"}},
		{"not yaml", "mirror: [", []string{"isc.yaml"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc), "isc.yaml")
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
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
