// Package gotool gives tests the path of a client built from a pinned module
// version through the Go module proxy (the way CI gets tools Debian does not
// ship: helm, cosign, oras, crane, regctl), cached across runs under
// <user cache dir>/airlock-test-tools/<version>/<name>.
package gotool

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Path returns the binary of module ("PKG@VERSION"), building it with go
// install when the cache lacks it. A failed build fails the test: what the
// client proves must be proven, not assumed.
func Path(t testing.TB, module string) string {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	pkg, version, _ := strings.Cut(module, "@")
	bin := filepath.Join(cache, "airlock-test-tools", version, filepath.Base(pkg))
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	cmd := exec.Command("go", "install", module)
	cmd.Dir = t.TempDir() // outside airlock's module: the tool's own go.mod decides
	cmd.Env = append(os.Environ(), "GOBIN="+filepath.Dir(bin), "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install %s (needs the Go module proxy): %v\n%s", module, err, out)
	}
	return bin
}
