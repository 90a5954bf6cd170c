package integration

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/testutil/gotool"
)

// storeState lists every file of dir with its size, mode and mtime: what
// a read-only server must leave exactly as it found it.
func storeState(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		lines = append(lines, fmt.Sprintf("%s %d %v %d", rel, info.Size(), info.Mode(), info.ModTime().UnixNano()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestServeStoreInPlace: a store written by a mirror run is served with
// `airlock registry serve --from file://STORE` (TLS with a generated CA in
// --cert-dir, htpasswd) and real skopeo, crane and podman pull from it with
// the digests the store holds; a push is refused and no file of the store
// changes.
func TestServeStoreInPlace(t *testing.T) {
	skopeo := requireTool(t, "skopeo")
	podman := requireTool(t, "podman")
	crane := gotool.Path(t, craneModule)

	store, pushed := mirrorWorkloadToStore(t, 43) // two of its four images are multi-arch indexes
	before := storeState(t, store)

	certDir := filepath.Join(t.TempDir(), "certs")
	s := startServerWith(t, []string{"--from", "file://" + store, "--cert-dir", certDir}, certDir)
	env := clientEnv(t)
	authFile := writeAuthFile(t, s)
	// crane reads DOCKER_CONFIG/config.json (same format) and trusts SSL_CERT_FILE.
	craneEnv := append([]string{}, env...)
	dockerDir := t.TempDir()
	raw, err := os.ReadFile(authFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dockerDir, "config.json"), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	craneEnv = append(craneEnv, "DOCKER_CONFIG="+dockerDir, "SSL_CERT_FILE="+s.CAFile)

	tls := []string{"--cert-dir", s.CertDir, "--authfile", authFile}
	var indexRef, indexDigest string
	for srcRef, digest := range pushed {
		r := ref.MustParse(srcRef)
		served := fmt.Sprintf("%s/mirror/%s:%s", s.Host, r.Path, r.Tag)
		out := mustRun(t, env, "", skopeo, append(append([]string{"inspect", "--raw"}, tls...), "docker://"+served)...)
		if got := rawDigest(out.stdout); got != digest {
			t.Errorf("skopeo inspect --raw %s: digest %s, the store holds %s", served, got, digest)
		}
		if got := strings.TrimSpace(mustRun(t, craneEnv, "", crane, "digest", served).stdout); got != digest {
			t.Errorf("crane digest %s = %s, the store holds %s", served, got, digest)
		}
		if strings.Contains(out.stdout, "manifests") && indexRef == "" {
			indexRef, indexDigest = served, digest
		}
	}
	if indexRef == "" {
		t.Fatal("the workload has no multi-arch index")
	}

	// A whole index with every platform and layer, digests preserved.
	// (dir: keeps a Docker manifest list as it is; skopeo 1.9's oci: would
	// have to convert it, which --preserve-digests forbids.)
	layout := filepath.Join(t.TempDir(), "dir")
	mustRun(t, env, "", skopeo, "--insecure-policy", "copy", "--all", "--preserve-digests", "--src-cert-dir", s.CertDir, "--src-authfile", authFile,
		"docker://"+indexRef, "dir:"+layout)
	top, err := os.ReadFile(filepath.Join(layout, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := rawDigest(string(top)); got != indexDigest {
		t.Errorf("skopeo copy --all of %s wrote %s, want %s", indexRef, got, indexDigest)
	}

	// podman resolves the index to its amd64 child and pulls its layers.
	pstore := t.TempDir()
	global := []string{
		"--root", filepath.Join(pstore, "root"), "--runroot", filepath.Join(pstore, "runroot"),
		"--tmpdir", filepath.Join(pstore, "tmp"), "--storage-driver", "vfs",
		"--cgroup-manager", "cgroupfs", "--events-backend", "file",
	}
	mustRun(t, env, "", podman, append(append([]string{}, global...), "pull", "--arch", "amd64", "--cert-dir", s.CertDir, "--authfile", authFile, "docker://"+indexRef)...)
	if got := strings.TrimSpace(mustRun(t, env, "", podman, append(append([]string{}, global...), "image", "inspect", "--format", "{{.Digest}}", indexRef)...).stdout); got != indexDigest {
		t.Errorf("podman pulled %s as %s, want %s", indexRef, got, indexDigest)
	}

	// Read-only: a push is refused, by name, and nothing in the store moves.
	push := run(t, env, "", skopeo, "--insecure-policy", "copy", "--dest-cert-dir", s.CertDir, "--dest-authfile", authFile,
		"dir:"+layout, "docker://"+s.Host+"/pushed/app:v1")
	if push.err == nil {
		t.Fatalf("a push into the read-only store succeeded:\n%s", push)
	}
	if after := storeState(t, store); after != before {
		t.Fatalf("serving changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}
