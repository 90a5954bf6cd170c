package regtest_test

import (
	"archive/tar"
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
)

// TestPodmanPushPull pushes and pulls with the real podman over TLS (CA
// through --cert-dir) and basic auth, in a private podman storage.
func TestPodmanPushPull(t *testing.T) {
	podman, err := exec.LookPath("podman")
	if err != nil {
		t.Fatal("podman is required (apt-get install podman; .ci/run installs it)")
	}
	reg := regtest.Start(t, regtest.WithTLS(), regtest.WithAuth("alice", "s3cret"))
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "auth.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	storage := "push" // podman storage in use: pulls go to an empty one
	run := func(stdin []byte, args ...string) (string, error) {
		base := []string{"--root", filepath.Join(dir, storage, "root"), "--runroot", filepath.Join(dir, storage, "run"), "--storage-driver", "vfs"}
		cmd := exec.Command(podman, append(base, args...)...)
		cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_RUNTIME_DIR="+dir, "REGISTRY_AUTH_FILE="+filepath.Join(dir, "auth.json"))
		cmd.Stdin = bytes.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	must := func(stdin []byte, args ...string) string {
		t.Helper()
		out, err := run(stdin, args...)
		if err != nil {
			t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	var rootfs bytes.Buffer
	tw := tar.NewWriter(&rootfs)
	tw.WriteHeader(&tar.Header{Name: "hello.txt", Mode: 0o644, Size: 6})
	tw.Write([]byte("hello\n"))
	tw.Close()
	must(rootfs.Bytes(), "import", "-", "localhost/hello:1")

	ref := reg.Ref("podman/hello") + ":1"
	if out, err := run(nil, "push", "--cert-dir", reg.CertDir, "localhost/hello:1", ref); err == nil {
		t.Fatalf("anonymous podman push succeeded:\n%s", out)
	}
	digestFile := filepath.Join(dir, "digest")
	must(nil, "push", "--cert-dir", reg.CertDir, "--creds", "alice:s3cret", "--digestfile", digestFile, "localhost/hello:1", ref)
	pushed, err := os.ReadFile(digestFile)
	if err != nil {
		t.Fatal(err)
	}
	// Pull by digest into an empty storage: podman downloads every blob
	// and verifies the manifest against the digest.
	storage = "pull"
	byDigest := reg.Ref("podman/hello") + "@" + strings.TrimSpace(string(pushed))
	must(nil, "pull", "--cert-dir", reg.CertDir, "--creds", "alice:s3cret", byDigest)

	req, _ := reg.Request(http.MethodHead, "/v2/podman/hello/manifests/1", nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
	resp, err := reg.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if served := resp.Header.Get("Docker-Content-Digest"); served != strings.TrimSpace(string(pushed)) {
		t.Fatalf("podman pushed %q, registry serves %q", pushed, served)
	}
}
