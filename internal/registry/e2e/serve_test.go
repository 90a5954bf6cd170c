// Package e2e tests `airlock registry serve` as a separate process, the way
// users run it, with real clients (skopeo) and real signals.
package e2e

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/airlock-mirror/airlock/internal/cli"
	"github.com/airlock-mirror/airlock/internal/registry"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

// TestMain lets the test binary act as the airlock binary: the subprocess
// is this same executable with AIRLOCK_E2E_MAIN=1, running cli.Execute
// exactly as cmd/airlock does (signals included), without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("AIRLOCK_E2E_MAIN") == "1" {
		os.Exit(cli.Execute())
	}
	os.Exit(m.Run())
}

func airlock(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "AIRLOCK_E2E_MAIN=1")
	return cmd
}

func TestServeSubprocessSkopeoTLSAuth(t *testing.T) {
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Fatal("skopeo is required (apt-get install skopeo; .ci/run installs it)")
	}
	dir := t.TempDir()
	root, hp := filepath.Join(dir, "root"), filepath.Join(dir, "htpasswd")

	add := airlock("registry", "htpasswd", "add", "--file", hp, "--password-stdin", "alice")
	add.Stdin = strings.NewReader("Secr3t-pw\n")
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("htpasswd add: %v\n%s", err, out)
	}

	serve := airlock("registry", "serve", "--root", root, "--htpasswd", hp, "--addr", "127.0.0.1:0")
	// An io.Pipe rather than StdoutPipe: Wait then finishes copying all
	// output before returning, so no line is lost at exit.
	stdout, pw := io.Pipe()
	serve.Stdout = pw
	var stderr syncBuilder
	serve.Stderr = &stderr
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() {
		err := serve.Wait()
		pw.Close()
		exited <- err
	}()
	t.Cleanup(func() {
		serve.Process.Kill()
	})
	lines := make(chan string, 32)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var host string
	var out []string
	deadline := time.After(30 * time.Second)
	for host == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("serve exited before listening:\n%s", stderr.String())
			}
			out = append(out, l)
			if a, ok := strings.CutPrefix(l, "listening on "); ok {
				host = a
			}
		case <-deadline:
			t.Fatalf("serve did not print its address; stderr:\n%s", stderr.String())
		}
	}
	rest := make(chan []string, 1)
	go func() {
		var more []string
		for l := range lines {
			more = append(more, l)
		}
		rest <- more
	}()
	caDir := filepath.Join(dir, "ca")
	os.MkdirAll(caDir, 0o755)
	ca, err := os.ReadFile(filepath.Join(root, "certs", "ca.crt"))
	if err != nil {
		t.Fatalf("generated CA: %v", err)
	}
	os.WriteFile(filepath.Join(caDir, "ca.crt"), ca, 0o644)

	// Source: a 3-platform index in a plain-HTTP test registry.
	src := regtest.Start(t)
	idx, err := synth.Index(71, []string{"linux/amd64", "linux/arm64", "linux/ppc64le"})
	if err != nil {
		t.Fatal(err)
	}
	want, err := synth.Push(idx, src.Ref("e2e/app")+":v1", remote.WithTransport(src.Transport))
	if err != nil {
		t.Fatal(err)
	}

	home := t.TempDir()
	policy := filepath.Join(home, "policy.json")
	os.WriteFile(policy, []byte(`{"default":[{"type":"insecureAcceptAnything"}]}`), 0o644)
	sk := func(args ...string) ([]byte, error) {
		cmd := exec.Command(skopeo, append([]string{"--policy", policy}, args...)...)
		cmd.Env = append(os.Environ(), "HOME="+home, "XDG_RUNTIME_DIR="+home, "REGISTRY_AUTH_FILE="+filepath.Join(home, "auth.json"))
		return cmd.CombinedOutput()
	}
	dst := "docker://" + host + "/mirror/app:v1"
	if o, err := sk("copy", "--all", "--src-tls-verify=false", "docker://"+src.Ref("e2e/app")+":v1",
		"--dest-cert-dir", caDir, "--dest-creds", "alice:Secr3t-pw", dst); err != nil {
		t.Fatalf("skopeo copy in: %v\n%s", err, o)
	}
	outDir := filepath.Join(t.TempDir(), "out")
	if o, err := sk("copy", "--all", "--src-cert-dir", caDir, "--src-creds", "alice:Secr3t-pw", dst, "dir:"+outDir); err != nil {
		t.Fatalf("skopeo copy out: %v\n%s", err, o)
	}
	raw, err := os.ReadFile(filepath.Join(outDir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("sha256:%x", sha256.Sum256(raw)); got != want {
		t.Fatalf("index digest changed through the mirror: %s, want %s", got, want)
	}
	if o, err := sk("inspect", "--raw", "--cert-dir", caDir, dst); err == nil {
		t.Fatalf("anonymous skopeo inspect succeeded:\n%s", o)
	}

	// curl-equivalent: no credentials -> 401 with a Basic challenge.
	pool := regtestPool(t, ca)
	resp, err := pool.Get("https://" + host + "/v2/mirror/app/tags/list")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
		t.Fatalf("anonymous GET: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}

	// SIGTERM: graceful stop, exit 0, serve mark removed.
	if err := serve.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop within 15 s of SIGTERM")
	}
	if pid := registry.ServeLockHolder(root); pid != 0 {
		t.Fatalf("serve mark still names pid %d", pid)
	}
	if !strings.Contains(stderr.String(), "shutting down") {
		t.Errorf("no shutdown log line:\n%s", stderr.String())
	}
	joined := strings.Join(append(out, <-rest...), "\n")
	if !strings.Contains(joined, "CA certificate (generated)") {
		t.Errorf("serve did not report the generated CA:\n%s", joined)
	}
}
