package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSignatureKeyRejected: a --signature-key file that is not a PEM
// public key fails mirror and release mirror before anything is read or
// copied, with an error naming the file; mirror-to-disk refuses the flag.
func TestSignatureKeyRejected(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "cosign.key")
	if err := os.WriteFile(bad, []byte("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "key.txt")
	if err := os.WriteFile(notPEM, []byte("ssh-ed25519 AAAA"), 0o644); err != nil {
		t.Fatal(err)
	}
	pub, err := filepath.Abs(filepath.Join("..", "clusterres", "testdata", "cosign-1.pub"))
	if err != nil {
		t.Fatal(err)
	}
	isc := emptyImageSet(t, dir)
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"mirror", "-c", isc, "--from", "file://" + dir, "docker://127.0.0.1:1/x", "--signature-key", bad}, []string{bad, "private key"}},
		{[]string{"mirror", "-c", isc, "--from", "file://" + dir, "docker://127.0.0.1:1/x", "--signature-key", pub, "--signature-key", notPEM}, []string{notPEM, "not a PEM file"}},
		{[]string{"mirror", "-c", isc, "file://" + dir, "--signature-key", pub}, []string{"mirror-to-disk writes no cluster resources"}},
		{[]string{"release", "mirror", "--from", "127.0.0.1:1/r:1", "--to", "127.0.0.1:1/x", "--signature-key", notPEM}, []string{notPEM, "not a PEM file"}},
		{[]string{"release", "mirror", "--from", "127.0.0.1:1/r:1", "--to-dir", dir, "--signature-key", pub}, []string{"--to-dir writes no cluster resources"}},
		{[]string{"release", "mirror", "--from", "127.0.0.1:1/r:1", "--to", "127.0.0.1:1/x", "--signature-key", filepath.Join(dir, "missing.pub")}, []string{"missing.pub"}},
		{[]string{"release", "mirror", "--from", "127.0.0.1:1/r:1", "--to", "127.0.0.1:1/x", "--signature-lookaside", "https://sigs.example.com"}, []string{"give --signature-key"}},
		{[]string{"mirror", "-c", isc, "--from", "file://" + dir, "docker://127.0.0.1:1/x", "--image-policy-namespace", "team-a"}, []string{"--image-policy-namespace team-a", "give --signature-key"}},
		{[]string{"mirror", "-c", isc, "--from", "file://" + dir, "docker://127.0.0.1:1/x", "--signature-key", pub, "--image-policy-namespace", "Team.A"}, []string{`--image-policy-namespace: namespace "Team.A": must be lowercase`}},
		{[]string{"mirror", "-c", isc, "file://" + dir, "--signature-lookaside", "https://sigs.example.com"}, []string{"--signature-lookaside: mirror-to-disk writes no cluster resources"}},
	}
	for _, c := range cases {
		_, _, err := runAirlock(t, c.args...)
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("airlock %s: %v, want error containing %q", strings.Join(c.args, " "), err, w)
			}
		}
	}
}

// TestPolicyKeylessRefused: a --policy asking for keyless (Fulcio) or
// Rekor-backed cosign signatures fails every copying command before a
// registry is contacted, naming the policy file and saying that key-based
// sigstoreSigned is what is supported.
func TestPolicyKeylessRefused(t *testing.T) {
	dir := t.TempDir()
	pub, err := filepath.Abs(filepath.Join("..", "clusterres", "testdata", "cosign-1.pub"))
	if err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(dir, "policy.json")
	if err := os.WriteFile(policy, []byte(`{"default": [{"type": "reject"}], "transports": {"docker": {"quay.io/team": [
  {"type": "sigstoreSigned", "keyPath": "`+pub+`", "rekorPublicKeyPath": "/etc/pki/rekor.pub"}]}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	keyless := filepath.Join(dir, "keyless.json")
	if err := os.WriteFile(keyless, []byte(`{"default": [{"type": "sigstoreSigned",
  "fulcio": {"caPath": "/etc/pki/fulcio.crt", "oidcIssuer": "https://oauth2.sigstore.dev/auth", "subjectEmail": "dev@example.com"},
  "rekorPublicKeyPath": "/etc/pki/rekor.pub"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	isc := emptyImageSet(t, dir)
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"image", "mirror", "--policy", policy, "127.0.0.1:1/team/a:1", "127.0.0.1:1/m/a:1"},
			[]string{policy, `transports.docker["quay.io/team"]`, "rekorPublicKeyPath", "not supported", "keyPath"}},
		{[]string{"image", "mirror", "--policy", keyless, "127.0.0.1:1/team/a:1", "127.0.0.1:1/m/a:1"},
			[]string{keyless, "default", "fulcio, rekorPublicKeyPath", "keyless (Fulcio certificate)", "cosign sign --key"}},
		{[]string{"mirror", "-c", isc, "--workspace", "file://" + dir, "docker://127.0.0.1:1/x", "--policy", keyless},
			[]string{keyless, "keyless"}},
	}
	for _, c := range cases {
		_, _, err := runAirlock(t, c.args...)
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("airlock %s: %v, want error containing %q", strings.Join(c.args, " "), err, w)
			}
		}
	}
}

// emptyImageSet writes an ImageSetConfiguration that mirrors nothing into
// dir: enough for flag checks that must fail before anything is read.
func emptyImageSet(t *testing.T, dir string) string {
	t.Helper()
	isc := filepath.Join(dir, "isc.yaml")
	if err := os.WriteFile(isc, []byte("apiVersion: mirror.openshift.io/v2alpha1\nkind: ImageSetConfiguration\nmirror: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return isc
}
