package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const clusterTestCA = "-----BEGIN CERTIFICATE-----\nMIIBdemo\n-----END CERTIFICATE-----\n"

func writeTestFile(t *testing.T, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestClusterHandoffCommands runs trust, pull-secret, install-config,
// runtime-config and disable-default-sources as a user does and checks
// the files, their modes, and that no credential reaches stderr.
func TestClusterHandoffCommands(t *testing.T) {
	dir := t.TempDir()
	ca := writeTestFile(t, dir, "ca.crt", clusterTestCA)
	out := filepath.Join(dir, "handoff")
	_, stderr, err := runAirlock(t, "cluster", "trust", "--ca", ca, "--registry", "mirror.example.com:5000", "-o", out)
	if err != nil {
		t.Fatal(err)
	}
	cm, _ := os.ReadFile(filepath.Join(out, "trusted-ca.yaml"))
	patch, _ := os.ReadFile(filepath.Join(out, "image-config-patch.yaml"))
	if !strings.Contains(string(cm), "mirror.example.com..5000: |") || !strings.Contains(string(patch), "name: airlock-mirror-ca") {
		t.Errorf("trust files:\n%s\n%s", cm, patch)
	}
	if !strings.Contains(stderr, "oc patch image.config.openshift.io/cluster --type merge --patch-file") {
		t.Errorf("trust instructions: %s", stderr)
	}

	const secret = "c2VjcmV0LXZhbHVl"
	ps := writeTestFile(t, dir, "pull-secret.json", `{"auths":{"quay.io":{"auth":"`+secret+`"}}}`)
	auth := writeTestFile(t, dir, "auth.json", `{"auths":{"mirror.example.com:5000":{"auth":"`+secret+`"}}}`)
	stdout, stderr, err := runAirlock(t, "cluster", "pull-secret", "--pull-secret", ps, "--authfile", auth, "--registry", "mirror.example.com:5000", "-o", out)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stdout+stderr, secret) {
		t.Errorf("a credential was printed:\n%s\n%s", stdout, stderr)
	}
	if !strings.Contains(stderr, "oc set data secret/pull-secret -n openshift-config --from-file=.dockerconfigjson="+filepath.Join(out, "pull-secret.json")) ||
		!strings.Contains(stderr, "added mirror.example.com:5000") {
		t.Errorf("pull-secret stderr: %s", stderr)
	}
	for _, f := range []string{"pull-secret.json", "pull-secret-secret.json"} {
		st, err := os.Stat(filepath.Join(out, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v mode %v, want 0600", f, err, st)
		}
	}
	var merged struct{ Auths map[string]any }
	b, _ := os.ReadFile(filepath.Join(out, "pull-secret.json"))
	if json.Unmarshal(b, &merged) != nil || len(merged.Auths) != 2 {
		t.Errorf("merged pull secret: %s", b)
	}

	mani := filepath.Join(dir, "manifests")
	os.MkdirAll(mani, 0o755)
	writeTestFile(t, mani, "idms.yaml", `apiVersion: config.openshift.io/v1
kind: ImageDigestMirrorSet
metadata: {name: idms-release-0}
spec:
  imageDigestMirrors:
  - source: quay.io/openshift-release-dev/ocp-release
    mirrors: [mirror.example.com:5000/ocp4/openshift-release-dev/ocp-release]
`)
	stdout, _, err = runAirlock(t, "cluster", "install-config", "--from", mani, "--ca", ca)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stdout, "additionalTrustBundle: |") || !strings.Contains(stdout, "imageDigestSources:\n- mirrors:\n  - mirror.example.com:5000/ocp4/openshift-release-dev/ocp-release") {
		t.Errorf("install-config fragment:\n%s", stdout)
	}
	stdout, _, err = runAirlock(t, "cluster", "install-config", "--from", mani, "--legacy")
	if err != nil || !strings.HasPrefix(stdout, "imageContentSources:") {
		t.Errorf("legacy fragment: %v\n%s", err, stdout)
	}
	if _, _, err := runAirlock(t, "cluster", "install-config", "--from", dir+"/nothing"); err == nil {
		t.Error("missing --from dir accepted")
	}

	stdout, _, err = runAirlock(t, "cluster", "runtime-config", "--from", mani, "--runtime", "crio")
	if err != nil || !strings.Contains(stdout, `location = "mirror.example.com:5000/ocp4/openshift-release-dev/ocp-release"`) {
		t.Errorf("runtime-config: %v\n%s", err, stdout)
	}
	mapFile := writeTestFile(t, dir, "mapping.txt", "quay.io/team/app@sha256:"+strings.Repeat("a", 64)+"=mirror.example.com:5000/team/app:x\n")
	if _, _, err := runAirlock(t, "cluster", "runtime-config", "-f", mapFile, "--ca", "/etc/mirror-ca.crt", "-o", filepath.Join(dir, "nodes")); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"certs.d/quay.io/hosts.toml", "registries.conf.d/99-airlock-mirror.conf", "registries.yaml"} {
		if _, err := os.Stat(filepath.Join(dir, "nodes", f)); err != nil {
			t.Error(err)
		}
	}
	stdout, _, err = runAirlock(t, "cluster", "disable-default-sources", "--format", "json")
	if err != nil || !strings.Contains(stdout, `"disableAllDefaultSources": true`) {
		t.Errorf("disable-default-sources: %v\n%s", err, stdout)
	}
}
