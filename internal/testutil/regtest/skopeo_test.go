package regtest_test

import (
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

// TestSkopeoCopyAllRoundTrip copies a 3-platform manifest list within the
// registry and out to a directory with the real skopeo (TLS through
// CertDir, credentials): the index digest must be identical at every step.
func TestSkopeoCopyAllRoundTrip(t *testing.T) {
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Fatal("skopeo is required (apt-get install skopeo; .ci/run installs it)")
	}
	reg := regtest.Start(t, regtest.WithTLS(), regtest.WithAuth("alice", "s3cret"))
	idx, err := synth.Index(8, []string{"linux/amd64", "linux/arm64", "linux/s390x"})
	if err != nil {
		t.Fatal(err)
	}
	want, err := synth.Push(idx, reg.Ref("skopeo/src")+":v1", remote.WithTransport(reg.Transport), remote.WithAuthFromKeychain(reg.Keychain))
	if err != nil {
		t.Fatal(err)
	}

	// Isolate skopeo from the host's auth and policy files.
	home := t.TempDir()
	policy := filepath.Join(home, "policy.json")
	if err := os.WriteFile(policy, []byte(`{"default":[{"type":"insecureAcceptAnything"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	skopeoCmd := func(args ...string) *exec.Cmd {
		cmd := exec.Command(skopeo, append([]string{"--policy", policy}, args...)...)
		cmd.Env = append(os.Environ(), "HOME="+home, "XDG_RUNTIME_DIR="+home, "REGISTRY_AUTH_FILE="+filepath.Join(home, "auth.json"))
		return cmd
	}
	run := func(args ...string) string {
		t.Helper()
		out, err := skopeoCmd(args...).Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, stderr)
		}
		return string(out)
	}
	src := "docker://" + reg.Ref("skopeo/src") + ":v1"
	dst := "docker://" + reg.Ref("skopeo/dst") + ":v1"
	run("copy", "--all", "--src-cert-dir", reg.CertDir, "--src-creds", "alice:s3cret",
		"--dest-cert-dir", reg.CertDir, "--dest-creds", "alice:s3cret", src, dst)
	// --raw: the index bytes as served (plain inspect resolves a platform).
	raw := run("inspect", "--raw", "--cert-dir", reg.CertDir, "--creds", "alice:s3cret", dst)
	if got := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(raw))); got != want {
		t.Fatalf("registry serves %s after skopeo copy, pushed %s", got, want)
	}
	out := filepath.Join(t.TempDir(), "out")
	run("copy", "--all", "--src-cert-dir", reg.CertDir, "--src-creds", "alice:s3cret", dst, "dir:"+out)
	back, err := os.ReadFile(filepath.Join(out, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("sha256:%x", sha256.Sum256(back)); got != want {
		t.Fatalf("copied out %s, want %s", got, want)
	}

	// Without credentials, or with a wrong password, skopeo is refused.
	if out, err := skopeoCmd("inspect", "--raw", "--cert-dir", reg.CertDir, dst).CombinedOutput(); err == nil {
		t.Fatalf("anonymous skopeo inspect succeeded:\n%s", out)
	}
	if out, err := skopeoCmd("inspect", "--raw", "--cert-dir", reg.CertDir, "--creds", "alice:wrong", dst).CombinedOutput(); err == nil {
		t.Fatalf("skopeo inspect with a wrong password succeeded:\n%s", out)
	}
}
