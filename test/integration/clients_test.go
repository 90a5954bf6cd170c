package integration

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/airlock-mirror/airlock/internal/auth"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

var threePlatforms = []string{"linux/amd64", "linux/arm64", "linux/s390x"}

// rawDigest is the sha256 digest of a manifest as the registry serves it.
func rawDigest(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// writeAuthFile stores the server's credentials in a fresh auth.json.
func writeAuthFile(t *testing.T, s *server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "auth.json")
	if err := auth.SetCredential(path, s.Host, s.User, s.Password); err != nil {
		t.Fatal(err)
	}
	return path
}

// layoutDigest returns the digest of the manifest tagged tag in the OCI
// layout at dir, from its index.json.
func layoutDigest(t *testing.T, dir, tag string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(data, &idx); err != nil {
		t.Fatalf("%s/index.json: %v", dir, err)
	}
	for _, m := range idx.Manifests {
		if m.Annotations["org.opencontainers.image.ref.name"] == tag {
			return m.Digest.String()
		}
	}
	t.Fatalf("%s: no manifest tagged %q in index.json:\n%s", dir, tag, data)
	return ""
}

// writeOCIIndexLayout writes a 3-platform OCI index tagged tag into a new
// OCI layout at dir and returns it and its digest.
//
// The index JSON is written by hand rather than with go-containerregistry's
// mutate, which adds an "artifactType" to every image descriptor: skopeo
// 1.9 (Debian bookworm) does not know that field, drops it and so pushes a
// re-serialised index with another digest. Indexes as podman and buildah
// write them carry no artifactType.
func writeOCIIndexLayout(t *testing.T, dir, tag string, seed int64) (v1.ImageIndex, v1.Hash) {
	t.Helper()
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	type descriptor struct {
		MediaType string       `json:"mediaType"`
		Digest    string       `json:"digest"`
		Size      int64        `json:"size"`
		Platform  *v1.Platform `json:"platform"`
	}
	var manifests []descriptor
	for i, p := range threePlatforms {
		img, err := synth.Image(seed*100+int64(i), synth.WithOCI(), synth.WithPlatform(p))
		if err != nil {
			t.Fatal(err)
		}
		if err := lp.WriteImage(img); err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		size, _ := img.Size()
		plat, _ := synth.ParsePlatform(p)
		manifests = append(manifests, descriptor{MediaType: string(types.OCIManifestSchema1), Digest: d.String(), Size: size, Platform: &plat})
	}
	raw, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": types.OCIImageIndex, "manifests": manifests})
	if err != nil {
		t.Fatal(err)
	}
	h, size, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.WriteBlob(h, io.NopCloser(bytes.NewReader(raw))); err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendDescriptor(v1.Descriptor{
		MediaType:   types.OCIImageIndex,
		Digest:      h,
		Size:        size,
		Annotations: map[string]string{"org.opencontainers.image.ref.name": tag},
	}); err != nil {
		t.Fatal(err)
	}
	all, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	idx, err := all.ImageIndex(h)
	if err != nil {
		t.Fatal(err)
	}
	return idx, h
}

// TestSkopeoCopyAllRoundTrip copies a 3-platform index into the registry
// with skopeo (credentials from an auth.json, CA from a certs.d directory)
// and out again, and checks every digest is unchanged.
func TestSkopeoCopyAllRoundTrip(t *testing.T) {
	skopeo := requireTool(t, "skopeo")
	s := startServer(t)
	env := clientEnv(t)
	authFile := writeAuthFile(t, s)

	t.Run("oci layout in and out", func(t *testing.T) {
		src := filepath.Join(t.TempDir(), "src")
		idx, want := writeOCIIndexLayout(t, src, "v1", 42)

		dst := "docker://" + s.Host + "/roundtrip/oci:v1"
		mustRun(t, env, "", skopeo, "copy", "--all", "--dest-authfile", authFile, "--dest-cert-dir", s.CertDir, "oci:"+src+":v1", dst)

		raw := mustRun(t, env, "", skopeo, "inspect", "--raw", "--authfile", authFile, "--cert-dir", s.CertDir, dst).stdout
		if got := rawDigest(raw); got != want.String() {
			t.Fatalf("index digest in the registry = %s, want %s", got, want)
		}
		var m v1.IndexManifest
		if err := json.Unmarshal([]byte(raw), &m); err != nil || len(m.Manifests) != 3 {
			t.Fatalf("registry index has %d manifests (%v), want 3:\n%s", len(m.Manifests), err, raw)
		}

		out := filepath.Join(t.TempDir(), "out")
		mustRun(t, env, "", skopeo, "copy", "--all", "--src-authfile", authFile, "--src-cert-dir", s.CertDir, dst, "oci:"+out+":v1")
		if got := layoutDigest(t, out, "v1"); got != want.String() {
			t.Fatalf("index digest after copying out = %s, want %s", got, want)
		}
		// Every child manifest made the round trip too.
		outIdx, err := layout.ImageIndexFromPath(out)
		if err != nil {
			t.Fatal(err)
		}
		h, _ := v1.NewHash(want.String())
		got, err := outIdx.ImageIndex(h)
		if err != nil {
			t.Fatal(err)
		}
		gm, _ := got.IndexManifest()
		wm, _ := idx.IndexManifest()
		for i := range wm.Manifests {
			if gm.Manifests[i].Digest != wm.Manifests[i].Digest {
				t.Errorf("child %d: digest %s, want %s", i, gm.Manifests[i].Digest, wm.Manifests[i].Digest)
			}
			if _, err := got.Image(wm.Manifests[i].Digest); err != nil {
				t.Errorf("child %s missing from the copied layout: %v", wm.Manifests[i].Digest, err)
			}
		}
	})

	t.Run("docker manifest list registry to registry", func(t *testing.T) {
		idx, err := synth.Index(43, threePlatforms)
		if err != nil {
			t.Fatal(err)
		}
		want, err := synth.Push(idx, s.Host+"/roundtrip/docker:src", s.remoteOptions()...)
		if err != nil {
			t.Fatal(err)
		}
		src := "docker://" + s.Host + "/roundtrip/docker:src"
		dst := "docker://" + s.Host + "/roundtrip/copied:dst"
		mustRun(t, env, "", skopeo, "copy", "--all",
			"--src-authfile", authFile, "--src-cert-dir", s.CertDir,
			"--dest-authfile", authFile, "--dest-cert-dir", s.CertDir, src, dst)
		raw := mustRun(t, env, "", skopeo, "inspect", "--raw", "--authfile", authFile, "--cert-dir", s.CertDir, dst).stdout
		if got := rawDigest(raw); got != want {
			t.Fatalf("copied index digest = %s, want %s", got, want)
		}
	})
}

// TestLoginInterplay checks airlock and skopeo share one auth.json both ways.
func TestLoginInterplay(t *testing.T) {
	skopeo := requireTool(t, "skopeo")
	s := startServer(t)
	env := clientEnv(t)

	img, err := synth.Image(7, synth.WithPlatform("linux/amd64"))
	if err != nil {
		t.Fatal(err)
	}
	digest, err := synth.Push(img, s.Host+"/interplay/app:1.0", s.remoteOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	ref := "docker://" + s.Host + "/interplay/app:1.0"

	t.Run("skopeo login, airlock registry ls", func(t *testing.T) {
		authFile := filepath.Join(t.TempDir(), "auth.json")
		r := run(t, env, "wrong\n", skopeo, "login", "--authfile", authFile, "--cert-dir", s.CertDir, "-u", s.User, "--password-stdin", s.Host)
		if r.err == nil {
			t.Fatalf("skopeo login with a wrong password succeeded:\n%s", r)
		}
		mustRun(t, env, s.Password+"\n", skopeo, "login", "--authfile", authFile, "--cert-dir", s.CertDir, "-u", s.User, "--password-stdin", s.Host)
		out := mustRun(t, env, "", airlockBin, "registry", "ls", s.Host+"/interplay/app", "--authfile", authFile, "--ca-file", s.CAFile).stdout
		if want := s.Host + "/interplay/app:1.0\n"; out != want {
			t.Fatalf("airlock registry ls = %q, want %q", out, want)
		}
	})

	t.Run("airlock login, skopeo inspect, airlock logout", func(t *testing.T) {
		authFile := filepath.Join(t.TempDir(), "auth.json")
		r := run(t, env, "wrong-password\n", airlockBin, "login", s.Host, "-u", s.User, "--password-stdin", "--authfile", authFile, "--ca-file", s.CAFile)
		if r.err == nil || !strings.Contains(r.stderr, "wrong username or password") {
			t.Fatalf("airlock login with a wrong password:\n%s", r)
		}
		if strings.Contains(r.stderr+r.stdout, "wrong-password") {
			t.Fatalf("airlock login printed the password:\n%s", r)
		}
		if _, err := os.Stat(authFile); err == nil {
			t.Fatal("a failed login created the auth file")
		}
		mustRun(t, env, s.Password+"\n", airlockBin, "login", s.Host, "-u", s.User, "--password-stdin", "--authfile", authFile, "--ca-file", s.CAFile)
		fi, err := os.Stat(authFile)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("auth file after login: %v, %v (want mode 0600)", fi, err)
		}
		var info struct{ Digest string }
		out := mustRun(t, env, "", skopeo, "inspect", "--authfile", authFile, "--cert-dir", s.CertDir, ref).stdout
		if err := json.Unmarshal([]byte(out), &info); err != nil || info.Digest != digest {
			t.Fatalf("skopeo inspect digest = %q (%v), want %s", info.Digest, err, digest)
		}

		mustRun(t, env, "", airlockBin, "logout", s.Host, "--authfile", authFile)
		r = run(t, env, "", skopeo, "inspect", "--authfile", authFile, "--cert-dir", s.CertDir, ref)
		if r.err == nil || !strings.Contains(strings.ToLower(r.stderr), "unauthorized") {
			t.Fatalf("skopeo inspect after airlock logout must be unauthorized:\n%s", r)
		}
	})

	t.Run("podman reads and edits airlock's auth.json", func(t *testing.T) {
		podman := requireTool(t, "podman")
		authFile := filepath.Join(t.TempDir(), "auth.json")
		mustRun(t, env, s.Password, airlockBin, "login", s.Host, "-u", s.User, "--password-stdin", "--authfile", authFile, "--ca-file", s.CAFile)
		out := mustRun(t, env, "", podman, "login", "--get-login", "--authfile", authFile, s.Host).stdout
		if strings.TrimSpace(out) != s.User {
			t.Fatalf("podman login --get-login = %q, want %q", out, s.User)
		}
		mustRun(t, env, "", airlockBin, "registry", "ls", s.Host+"/interplay/app", "--authfile", authFile, "--ca-file", s.CAFile)
		mustRun(t, env, "", podman, "logout", "--authfile", authFile, s.Host)
		r := run(t, env, "", airlockBin, "registry", "ls", s.Host+"/interplay/app", "--authfile", authFile, "--ca-file", s.CAFile)
		if r.err == nil || !strings.Contains(r.stderr, "airlock login") {
			t.Fatalf("airlock registry ls after podman logout must fail asking to log in:\n%s", r)
		}
	})

	t.Run("REGISTRY_AUTH_FILE is shared", func(t *testing.T) {
		authFile := filepath.Join(t.TempDir(), "shared-auth.json")
		envShared := append(clientEnv(t), "REGISTRY_AUTH_FILE="+authFile)
		mustRun(t, envShared, s.Password, airlockBin, "login", s.Host, "-u", s.User, "--password-stdin", "--ca-file", s.CAFile)
		mustRun(t, envShared, "", skopeo, "inspect", "--cert-dir", s.CertDir, ref)
	})
}

// TestUnauthenticatedRequestsGet401 talks HTTP directly: without
// credentials or with a wrong password, reads and pushes are refused.
func TestUnauthenticatedRequestsGet401(t *testing.T) {
	s := startServer(t)
	img, err := synth.Image(8)
	if err != nil {
		t.Fatal(err)
	}
	digest, err := synth.Push(img, s.Host+"/private/app:v1", s.remoteOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: s.Transport}
	base := "https://" + s.Host
	requests := []struct{ method, path string }{
		{http.MethodGet, "/v2/"},
		{http.MethodGet, "/v2/_catalog"},
		{http.MethodGet, "/v2/private/app/tags/list"},
		{http.MethodGet, "/v2/private/app/manifests/v1"},
		{http.MethodHead, "/v2/private/app/manifests/" + digest},
		{http.MethodPost, "/v2/private/app/blobs/uploads/"},
		{http.MethodPut, "/v2/private/app/manifests/v2"},
		{http.MethodDelete, "/v2/private/app/manifests/" + digest},
	}
	for _, cred := range []struct {
		name       string
		user, pass string
	}{
		{"anonymous", "", ""},
		{"wrong password", s.User, "not-the-password"},
		{"unknown user", "mallory", s.Password},
	} {
		for _, rq := range requests {
			req, err := http.NewRequest(rq.method, base+rq.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if cred.user != "" {
				req.SetBasicAuth(cred.user, cred.pass)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s %s %s: status %d, want 401", cred.name, rq.method, rq.path, resp.StatusCode)
			}
			if !strings.HasPrefix(strings.ToLower(resp.Header.Get("WWW-Authenticate")), "basic") {
				t.Errorf("%s %s %s: WWW-Authenticate %q, want a Basic challenge", cred.name, rq.method, rq.path, resp.Header.Get("WWW-Authenticate"))
			}
		}
	}
	// The right credentials are accepted, and the image is intact.
	req, _ := http.NewRequest(http.MethodHead, base+"/v2/private/app/manifests/v1", nil)
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json")
	req.SetBasicAuth(s.User, s.Password)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Docker-Content-Digest") != digest {
		t.Fatalf("authenticated HEAD: %d digest %q, want 200 %s", resp.StatusCode, resp.Header.Get("Docker-Content-Digest"), digest)
	}
}

// TestPodmanPull pulls a pushed image with podman trusting the generated CA
// through a certs.d directory, into throw-away storage.
func TestPodmanPull(t *testing.T) {
	podman := requireTool(t, "podman")
	s := startServer(t)
	env := clientEnv(t)
	authFile := writeAuthFile(t, s)

	idx, err := synth.Index(9, []string{"linux/amd64", "linux/arm64"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := synth.Push(idx, s.Host+"/podman/app:latest", s.remoteOptions()...); err != nil {
		t.Fatal(err)
	}
	// podman resolves the index to the image of its platform: its image ID
	// is the digest of that child's config.
	amd64, err := idx.Image(mustChildDigest(t, idx, "amd64"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := amd64.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	indexDigest, _ := idx.Digest()

	store := t.TempDir()
	global := []string{
		"--root", filepath.Join(store, "root"),
		"--runroot", filepath.Join(store, "runroot"),
		"--tmpdir", filepath.Join(store, "tmp"),
		"--storage-driver", "vfs",
		"--cgroup-manager", "cgroupfs",
		"--events-backend", "file",
	}
	ref := s.Host + "/podman/app:latest"
	pull := append(append([]string{}, global...), "pull", "--arch", "amd64", "--cert-dir", s.CertDir, "--authfile", authFile, "docker://"+ref)

	// Without the CA the pull must fail on the certificate, proving the
	// certs.d directory is what makes it work.
	noCA := append(append([]string{}, global...), "pull", "--arch", "amd64", "--authfile", authFile, "docker://"+ref)
	if r := run(t, env, "", podman, noCA...); r.err == nil || !strings.Contains(r.stderr, "certificate") {
		t.Fatalf("podman pull without the CA should fail on the certificate:\n%s", r)
	}

	mustRun(t, env, "", podman, pull...)
	out := mustRun(t, env, "", podman, append(append([]string{}, global...), "image", "inspect", "--format", "{{.Id}} {{.Architecture}} {{.Digest}}", ref)...).stdout
	if got, want := strings.TrimSpace(out), fmt.Sprintf("%s amd64 %s", cfg.Hex, indexDigest); got != want {
		t.Fatalf("podman image inspect (id arch digest) = %q, want %q", got, want)
	}
}

// mustChildDigest returns the digest of idx's child for architecture arch.
func mustChildDigest(t *testing.T, idx v1.ImageIndex, arch string) v1.Hash {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range im.Manifests {
		if m.Platform != nil && m.Platform.Architecture == arch {
			return m.Digest
		}
	}
	t.Fatalf("index has no %s child", arch)
	return v1.Hash{}
}

// TestRegistryLsListsWhatWasPushed pushes a workload (images and
// multi-arch indexes, several namespaces) and checks `airlock registry ls
// --tags` lists exactly those references, with small pages.
func TestRegistryLsListsWhatWasPushed(t *testing.T) {
	s := startServer(t)
	env := clientEnv(t)
	authFile := writeAuthFile(t, s)

	entries, err := synth.Workload(11, 12, 256)
	if err != nil {
		t.Fatal(err)
	}
	pushed, err := synth.PushWorkload(entries, s.Host, s.remoteOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for ref := range pushed {
		want = append(want, ref)
	}
	sort.Strings(want)

	for _, pageSize := range []string{"1", "3", "1000"} {
		r := mustRun(t, env, "", airlockBin, "registry", "ls", s.Host, "--tags", "--page-size", pageSize, "--authfile", authFile, "--ca-file", s.CAFile)
		got := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("registry ls --tags --page-size %s:\n got %v\nwant %v", pageSize, got, want)
		}
	}

	// -o json carries the same content.
	r := mustRun(t, env, "", airlockBin, "registry", "ls", s.Host, "--tags", "-o", "json", "--authfile", authFile, "--ca-file", s.CAFile)
	var doc struct {
		Registry     string
		Repositories []struct {
			Name string
			Tags []string
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("-o json: %v\n%s", err, r.stdout)
	}
	var fromJSON []string
	for _, repo := range doc.Repositories {
		for _, tag := range repo.Tags {
			fromJSON = append(fromJSON, fmt.Sprintf("%s/%s:%s", doc.Registry, repo.Name, tag))
		}
	}
	sort.Strings(fromJSON)
	if strings.Join(fromJSON, "\n") != strings.Join(want, "\n") {
		t.Fatalf("-o json lists %v, want %v", fromJSON, want)
	}

	// Every listed reference resolves to the digest that was pushed.
	for ref, d := range pushed {
		nref, err := name.ParseReference(ref)
		if err != nil {
			t.Fatal(err)
		}
		desc, err := remote.Head(nref, s.remoteOptions()...)
		if err != nil || desc.Digest.String() != d {
			t.Errorf("%s: %v %v, want %s", ref, desc, err, d)
		}
	}

	// Without credentials: a non-zero exit that says how to log in.
	empty := filepath.Join(t.TempDir(), "empty.json")
	if err := os.WriteFile(empty, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = run(t, env, "", airlockBin, "registry", "ls", s.Host, "--authfile", empty, "--ca-file", s.CAFile)
	if r.err == nil || !strings.Contains(r.stderr, "airlock login") {
		t.Fatalf("registry ls without credentials:\n%s", r)
	}
}
