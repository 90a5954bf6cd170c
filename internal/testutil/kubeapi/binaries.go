// Package kubeapi runs a real kube-apiserver on etcd for tests that talk to
// a cluster: both built from pinned module versions through the Go module
// proxy and cached across runs, as testutil/gotool does for clients.
package kubeapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Versions of the servers. The Kubernetes staging modules (k8s.io/api,
// client-go, ...) are released as v0.X.Y alongside k8s.io/kubernetes v1.X.Y;
// etcd is the version k8s.io/kubernetes v1.37.2 requires.
const (
	KubernetesVersion = "v1.37.2"
	stagingVersion    = "v0.37.2"
	EtcdVersion       = "v3.7.0"
)

// Binaries returns the paths of kube-apiserver and etcd, building them when
// the cache lacks them. A cold build of kube-apiserver takes ~15 minutes and
// ~3 GB of memory on 2 cores; the cache makes it once per machine. A failed
// build fails the test: a skipped live-cluster test proves nothing.
func Binaries(t testing.TB) (apiserver, etcd string) {
	t.Helper()
	dir := cacheDir()
	apiserver, etcd = filepath.Join(dir, "kube-apiserver"), filepath.Join(dir, "etcd")
	if exists(apiserver) && exists(etcd) {
		return apiserver, etcd
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	unlock, err := lock(filepath.Join(dir, ".lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	// Another test binary may have built them while this one waited.
	if !exists(etcd) {
		if err := buildEtcd(t, etcd); err != nil {
			t.Fatal(err)
		}
	}
	if !exists(apiserver) {
		if err := buildAPIServer(t, apiserver); err != nil {
			t.Fatal(err)
		}
	}
	return apiserver, etcd
}

func cacheDir() string {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	return filepath.Join(cache, "airlock-test-tools", "kube-"+KubernetesVersion)
}

func exists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// lock takes an exclusive flock on path: two test binaries (go test runs
// packages in parallel) must not both spend 15 minutes building the same
// binary, nor rename a half-written one into place.
func lock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("kube test binaries lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("kube test binaries lock %s: %w", path, err)
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

// buildAPIServer builds k8s.io/kubernetes/cmd/kube-apiserver. `go install
// k8s.io/kubernetes/...@v1.37.2` is refused because k8s.io/kubernetes's
// go.mod replaces its staging modules with ./staging directories; a
// throwaway main module that requires k8s.io/kubernetes and replaces each
// staging module with its published v0.37.2 builds the same code.
func buildAPIServer(t testing.TB, bin string) error {
	t.Helper()
	staging, err := stagingModules()
	if err != nil {
		return err
	}
	var mod strings.Builder
	fmt.Fprintf(&mod, "module airlock.test/kube-apiserver\n\ngo 1.26.0\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n", KubernetesVersion)
	for _, m := range staging {
		fmt.Fprintf(&mod, "\t%s => %s %s\n", m, m, stagingVersion)
	}
	mod.WriteString(")\n")
	return buildInWrapper(t, mod.String(), "k8s.io/kubernetes/cmd/kube-apiserver@"+KubernetesVersion, bin)
}

// buildEtcd builds etcd's server module main package. Its go.mod, too,
// replaces sibling modules with relative directories, so it cannot be go
// installed; as a dependency its requirements on the published siblings
// hold.
func buildEtcd(t testing.TB, bin string) error {
	t.Helper()
	mod := fmt.Sprintf("module airlock.test/etcd\n\ngo 1.26.0\n\nrequire go.etcd.io/etcd/server/v3 %s\n", EtcdVersion)
	return buildInWrapper(t, mod, "go.etcd.io/etcd/server/v3@"+EtcdVersion, bin)
}

// buildInWrapper writes go.mod into a temporary directory, resolves pkg
// (PKG@VERSION) there and builds it to bin (through a temporary name, so a
// killed build leaves nothing that looks finished).
func buildInWrapper(t testing.TB, gomod, pkgAtVersion, bin string) error {
	t.Helper()
	dir, err := os.MkdirTemp("", "airlock-kube-build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
		return err
	}
	pkg, _, _ := strings.Cut(pkgAtVersion, "@")
	tmp := bin + ".building"
	start := time.Now()
	for _, args := range [][]string{{"get", pkgAtVersion}, {"build", "-trimpath", "-o", tmp, pkg}} {
		if out, err := goCmd(dir, args...).CombinedOutput(); err != nil {
			return fmt.Errorf("building %s (needs the Go module proxy): go %s: %v\n%s", pkgAtVersion, strings.Join(args, " "), err, out)
		}
	}
	t.Logf("built %s in %s", pkgAtVersion, time.Since(start).Round(time.Second))
	return os.Rename(tmp, bin)
}

func goCmd(dir string, args ...string) *exec.Cmd {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	// CGO off: static binaries that do not depend on the machine's libc.
	// GOFLAGS cleared: the caller's -mod or -tags must not leak into a
	// module that is not airlock's.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GOWORK=off")
	return cmd
}

// stagingModules lists the staging modules k8s.io/kubernetes requires,
// from its own go.mod: each is required at v0.0.0 and replaced with
// ./staging/src/<module>. Reading them (rather than a fixed list) keeps the
// wrapper right when a release adds or drops one.
func stagingModules() ([]string, error) {
	cmd := goCmd(os.TempDir(), "mod", "download", "-json", "k8s.io/kubernetes@"+KubernetesVersion)
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go mod download k8s.io/kubernetes@%s: %v\n%s", KubernetesVersion, err, out)
	}
	var info struct{ GoMod string }
	if err := json.Unmarshal(out, &info); err != nil {
		return nil, fmt.Errorf("go mod download k8s.io/kubernetes: %w", err)
	}
	data, err := os.ReadFile(info.GoMod)
	if err != nil {
		return nil, fmt.Errorf("k8s.io/kubernetes go.mod: %w", err)
	}
	required, replaced := map[string]bool{}, []string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "require "))
		switch {
		case len(f) >= 2 && f[1] == "v0.0.0":
			required[f[0]] = true
		case len(f) == 3 && f[1] == "=>" && strings.HasPrefix(f[2], "./staging/"):
			replaced = append(replaced, f[0])
		}
	}
	var mods []string
	for _, m := range replaced {
		if required[m] {
			mods = append(mods, m)
		}
	}
	if len(mods) == 0 {
		return nil, fmt.Errorf("k8s.io/kubernetes@%s go.mod (%s): no staging replaces found", KubernetesVersion, info.GoMod)
	}
	return mods, nil
}
