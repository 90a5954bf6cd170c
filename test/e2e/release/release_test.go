// Package release_test mirrors a synthetic OpenShift release (real 4.12.0
// image-references format and tag names, synthetic components, some
// multi-arch) through the airlock CLI between embedded registries and the
// local store, and checks every digest arrives under oc's tag names.
package release_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/airlock-mirror/airlock/internal/testutil/pgptest"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/airlock-mirror/airlock/internal/release/graph"
	"github.com/airlock-mirror/airlock/internal/release/releasetest"
	"github.com/airlock-mirror/airlock/internal/testutil/clitest"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
	"github.com/airlock-mirror/airlock/test/e2e"
)

var update = flag.Bool("update", false, "rewrite golden files")

const components = 40 // of the 183 real tags; every fifth is multi-arch

// checkRelease proves the release and every component (and, for manifest
// lists, every child) are at dst/repo under oc's tags with their digests.
func checkRelease(t *testing.T, rel *releasetest.Release, dst *regtest.Registry, repo, prefix string) {
	t.Helper()
	if got := dst.DigestOf(t, dst.Host+"/"+repo+":"+prefix); got != rel.Digest {
		t.Errorf("release tag %s: digest %q, want %s", prefix, got, rel.Digest)
	}
	for _, n := range rel.Names {
		want := rel.Components[n][strings.Index(rel.Components[n], "@")+1:]
		tag := dst.Host + "/" + repo + ":" + prefix + "-" + n
		if got := dst.DigestOf(t, tag); got != want {
			t.Errorf("component %s: %s has digest %q, want %s", n, tag, got, want)
			continue
		}
		r, _ := name.ParseReference(dst.Host+"/"+repo+"@"+want, name.Insecure)
		if rel.Multi[n] {
			idx, err := remote.Index(r, remote.WithTransport(dst.Transport))
			if err != nil {
				t.Errorf("component %s: %v", n, err)
				continue
			}
			im, _ := idx.IndexManifest()
			for _, c := range im.Manifests {
				img, err := idx.Image(c.Digest)
				if err == nil {
					_, err = img.Layers()
				}
				if err != nil || dst.DigestOf(t, dst.Host+"/"+repo+"@"+c.Digest.String()) != c.Digest.String() {
					t.Errorf("component %s: child %s missing at the mirror: %v", n, c.Digest, err)
				}
			}
		}
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update once)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from golden file; got:\n%s", path, got)
	}
}

func TestMirrorRegistryToRegistry(t *testing.T) {
	src, dst := regtest.Start(t), regtest.Start(t)
	rel, err := releasetest.Build(src.Host, releasetest.Options{Components: components})
	if err != nil {
		t.Fatal(err)
	}
	manifests := t.TempDir()
	out, errOut, err := clitest.Run(t, "release", "mirror", "--from", rel.Ref, "--to", dst.Host+"/ocp/release", "--to-manifests", manifests)
	if err != nil {
		t.Fatalf("release mirror: %v\n%s", err, errOut)
	}
	checkRelease(t, rel, dst, "ocp/release", "4.12.0-x86_64")
	if !strings.Contains(errOut, "no release signature imported") {
		t.Errorf("a missing signature must be warned about; stderr:\n%s", errOut)
	}
	r := strings.NewReplacer(dst.Host, "MIRROR", src.Host, "SOURCE", manifests, "MANIFESTS")
	golden(t, "registry-to-registry.stdout", r.Replace(out))
	idms, err := os.ReadFile(filepath.Join(manifests, "idms-release-4.12.0.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "idms-release-4.12.0.yaml", r.Replace(string(idms)))
	icsp, err := os.ReadFile(filepath.Join(manifests, "icsp-release-4.12.0.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "icsp-release-4.12.0.yaml", r.Replace(string(icsp)))

	// A second run finds everything present and changes nothing.
	if _, errOut, err := clitest.Run(t, "release", "mirror", "--from", rel.Ref, "--to", dst.Host+"/ocp/release", "--to-manifests", manifests); err != nil {
		t.Fatalf("second run: %v\n%s", err, errOut)
	}
	checkRelease(t, rel, dst, "ocp/release", "4.12.0-x86_64")
}

var uploadRE = regexp.MustCompile(`(?m)^  airlock (release mirror .*)$`)

func TestMirrorThroughStore(t *testing.T) {
	src, dst := regtest.Start(t), regtest.Start(t)
	rel, err := releasetest.Build(src.Host, releasetest.Options{Components: components})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	onlineInfo, errOut, err := clitest.Run(t, "release", "info", "-o", "json", rel.Ref)
	if err != nil {
		t.Fatalf("release info: %v\n%s", err, errOut)
	}
	out, errOut, err := clitest.Run(t, "release", "mirror", "--from", rel.Ref, "--to-dir", dir)
	if err != nil {
		t.Fatalf("release mirror --to-dir: %v\n%s", err, errOut)
	}
	repl := strings.NewReplacer(dir, "DIR", src.Host, "SOURCE")
	golden(t, "to-dir.stdout", repl.Replace(out))

	// Run exactly the printed upload command, with the registry filled in.
	m := uploadRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no upload command printed:\n%s", out)
	}
	cmdline := strings.ReplaceAll(m[1], "REGISTRY/REPOSITORY", dst.Host+"/ocp/release")
	manifests := t.TempDir()
	args := append(strings.Fields(cmdline), "--to-manifests", manifests)
	// The source registry is gone for the disconnected side: the upload
	// must read only the store.
	src.Server.Close()
	// The stored release can be inspected offline and sizes the same.
	offlineInfo, errOut, err := clitest.Run(t, "release", "info", "-o", "json", "--from-dir", dir, "file://openshift/release:4.12.0-x86_64")
	if err != nil {
		t.Fatalf("release info --from-dir: %v\n%s", err, errOut)
	}
	if totalSize(t, offlineInfo) != totalSize(t, onlineInfo) {
		t.Errorf("stored release sizes %d, the registry one %d", totalSize(t, offlineInfo), totalSize(t, onlineInfo))
	}
	up, errOut, err := clitest.Run(t, args...)
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmdline, err, errOut)
	}
	checkRelease(t, rel, dst, "ocp/release", "4.12.0-x86_64")
	repl = strings.NewReplacer(dst.Host, "MIRROR", src.Host, "SOURCE", manifests, "MANIFESTS", dir, "STORE")
	golden(t, "from-dir.stdout", repl.Replace(up))
	// The printed verify command checks the upload, offline (sources are
	// file:// in the store).
	vm := regexp.MustCompile(`airlock verify (.*)`).FindStringSubmatch(up)
	if vm == nil {
		t.Fatalf("no verify command printed:\n%s", up)
	}
	if out, errOut, err := clitest.Run(t, append([]string{"verify"}, strings.Fields(vm[1])...)...); err != nil {
		t.Fatalf("printed verify command failed: %v\n%s%s", err, out, errOut)
	}
}

func totalSize(t *testing.T, infoJSON string) int64 {
	t.Helper()
	var info struct {
		TotalSize      int64 `json:"totalSize"`
		ComponentCount int   `json:"componentCount"`
	}
	if err := json.Unmarshal([]byte(infoJSON), &info); err != nil || info.ComponentCount != components || info.TotalSize <= 0 {
		t.Fatalf("info %s (err %v)", infoJSON, err)
	}
	return info.TotalSize
}

func TestDryRun(t *testing.T) {
	src, dst := regtest.Start(t), regtest.Start(t)
	rel, err := releasetest.Build(src.Host, releasetest.Options{Components: 5})
	if err != nil {
		t.Fatal(err)
	}
	manifests := t.TempDir()
	out, errOut, err := clitest.Run(t, "release", "mirror", "--dry-run", "--from", rel.Ref, "--to", dst.Host+"/ocp/release", "--to-manifests", manifests)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if !strings.Contains(out, "4.12.0-x86_64-agent-installer-api-server") {
		t.Errorf("dry run does not list the planned copies:\n%s", out)
	}
	if d := dst.DigestOf(t, dst.Host+"/ocp/release:4.12.0-x86_64"); d != "" {
		t.Errorf("dry run copied the release")
	}
	if ents, _ := os.ReadDir(manifests); len(ents) != 0 {
		t.Errorf("dry run wrote %d files", len(ents))
	}
}

func TestReleaseInfoCLI(t *testing.T) {
	src := regtest.Start(t)
	rel, err := releasetest.Build(src.Host, releasetest.Options{Components: 10})
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, err := clitest.Run(t, "release", "info", "-o", "json", rel.Ref)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	var info struct {
		Version        string `json:"version"`
		Architecture   string `json:"architecture"`
		ComponentCount int    `json:"componentCount"`
		TotalSize      int64  `json:"totalSize"`
		Components     []struct {
			Name  string `json:"name"`
			Image string `json:"image"`
		} `json:"components"`
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if info.Version != "4.12.0" || info.Architecture != "amd64" || info.ComponentCount != 10 || info.TotalSize <= 0 || info.Components[0].Name != "agent-installer-api-server" {
		t.Fatalf("info = %+v", info)
	}
	text, _, err := clitest.Run(t, "release", "info", rel.Ref)
	if err != nil || !strings.Contains(text, "Components:     10") || !strings.Contains(text, "agent-installer-api-server") {
		t.Fatalf("text info (err %v):\n%s", err, text)
	}
	if _, _, err := clitest.Run(t, "release", "info", src.Host+"/openshift-release-dev/ocp-v4.0-art-dev@"+rel.Components["agent-installer-api-server"][strings.Index(rel.Components["agent-installer-api-server"], "@")+1:]); err == nil || !strings.Contains(err.Error(), "not an OpenShift release image") {
		t.Fatalf("info on a non-release image: err = %v", err)
	}
}

func TestMultiArchRelease(t *testing.T) {
	src, dst := regtest.Start(t), regtest.Start(t)
	opts := []remote.Option{remote.WithTransport(src.Transport)}
	rel, err := releasetest.Build(src.Host, releasetest.Options{Components: 6, Remote: opts})
	if err != nil {
		t.Fatal(err)
	}
	idx, err := releasetest.MultiArch(rel.Image)
	if err != nil {
		t.Fatal(err)
	}
	from := src.Host + "/openshift-release-dev/ocp-release:4.12.0-multi"
	if rel.Digest, err = synth.Push(idx, from, opts...); err != nil {
		t.Fatal(err)
	}
	_, _, err = clitest.Run(t, "release", "mirror", "--from", from, "--to", dst.Host+"/ocp/release", "--to-manifests", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "--keep-manifest-list") {
		t.Fatalf("multi-arch release without --keep-manifest-list: err = %v", err)
	}
	if _, errOut, err := clitest.Run(t, "release", "mirror", "--from", from, "--to", dst.Host+"/ocp/release", "--keep-manifest-list", "--to-manifests", t.TempDir()); err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	checkRelease(t, rel, dst, "ocp/release", "4.12.0-multi")
}

func TestSignatures(t *testing.T) {
	src, dst := regtest.Start(t), regtest.Start(t)
	rel, err := releasetest.Build(src.Host, releasetest.Options{Components: 3})
	if err != nil {
		t.Fatal(err)
	}
	key := pgptest.NewKey(t, "release")
	stranger := pgptest.NewKey(t, "stranger")
	sign := func(k *openpgp.Entity, digest string) []byte { return pgptest.SignAtomic(t, k, rel.Ref, digest) }
	keyFile := pgptest.PublicKeyFile(t, key)

	hexd := strings.TrimPrefix(rel.Digest, "sha256:")
	good, bad := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(good, "sha256="+hexd), 0o755)
	os.WriteFile(filepath.Join(good, "sha256="+hexd, "signature-1"), sign(key, rel.Digest), 0o644)
	os.MkdirAll(filepath.Join(bad, "sha256="+hexd), 0o755)
	os.WriteFile(filepath.Join(bad, "sha256="+hexd, "signature-1"), sign(stranger, rel.Digest), 0o644)

	// A signature that does not verify stops the run before anything is copied.
	_, _, err = clitest.Run(t, "release", "mirror", "--from", rel.Ref, "--to", dst.Host+"/ocp/release", "--signature-dir", bad, "--verify-key", keyFile, "--to-manifests", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "not in the verification keyring") {
		t.Fatalf("bad signature: err = %v", err)
	}
	if d := dst.DigestOf(t, dst.Host+"/ocp/release:4.12.0-x86_64"); d != "" {
		t.Fatalf("release was mirrored although its signature failed")
	}

	manifests := t.TempDir()
	out, errOut, err := clitest.Run(t, "release", "mirror", "--from", rel.Ref, "--to", dst.Host+"/ocp/release", "--signature-dir", good, "--verify-key", keyFile, "--to-manifests", manifests)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if !strings.Contains(errOut, "Verified 1 release signature(s)") {
		t.Errorf("stderr lacks verification note:\n%s", errOut)
	}
	cmFile := filepath.Join(manifests, "signature-sha256-"+hexd[:16]+".json")
	data, err := os.ReadFile(cmFile)
	if err != nil {
		t.Fatalf("signature ConfigMap not written: %v\n%s", err, out)
	}
	var cm struct {
		Metadata struct {
			Name, Namespace string
			Labels          map[string]string
		}
		BinaryData map[string][]byte `json:"binaryData"`
	}
	if err := json.Unmarshal(data, &cm); err != nil {
		t.Fatal(err)
	}
	if cm.Metadata.Namespace != "openshift-config-managed" || len(cm.BinaryData["sha256-"+hexd+"-1"]) == 0 {
		t.Fatalf("configmap = %s", data)
	}
	if _, ok := cm.Metadata.Labels["release.openshift.io/verification-signatures"]; !ok {
		t.Fatalf("configmap lacks label: %s", data)
	}

	// A signature directory without this release's signature: a warning
	// naming what to download, and the mirror still succeeds.
	_, errOut, err = clitest.Run(t, "release", "mirror", "--from", rel.Ref, "--to", dst.Host+"/ocp/release", "--signature-dir", t.TempDir(), "--to-manifests", t.TempDir())
	if err != nil || !strings.Contains(errOut, "sha256="+hexd+"/signature-1") {
		t.Fatalf("missing signature: err %v, stderr:\n%s", err, errOut)
	}

	// Across the air gap: the signature imported by --to-dir travels in the
	// store and the upload writes its ConfigMap without being told again.
	store := t.TempDir()
	if _, errOut, err := clitest.Run(t, "release", "mirror", "--from", rel.Ref, "--to-dir", store, "--signature-dir", good, "--verify-key", keyFile); err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	upManifests := t.TempDir()
	_, errOut, err = clitest.Run(t, "release", "mirror", "--from-dir", store, "--from", "file://openshift/release:4.12.0-x86_64",
		"--release-source", src.Host+"/openshift-release-dev/ocp-release", "--to", dst.Host+"/ocp/release2", "--to-manifests", upManifests)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	carried, err := os.ReadFile(filepath.Join(upManifests, "signature-sha256-"+hexd[:16]+".json"))
	if err != nil || !bytes.Equal(carried, data) {
		t.Errorf("signature ConfigMap not carried through the store (err %v)", err)
	}
	if strings.Contains(errOut, "no release signature imported") {
		t.Errorf("warned about a missing signature although the store carries it:\n%s", errOut)
	}
}

// release list against the REAL recorded stable-4.13 graph, served on
// 127.0.0.1 the way the Cincinnati API serves it.
func TestReleaseListCLI(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(releasetest.DataDir(), "..", "cincinnati", "graph-amd64-stable-4.13.json"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("channel") != "stable-4.13" || r.URL.Query().Get("arch") != "amd64" || r.Header.Get("Accept") != "application/json" {
			http.Error(w, "unknown channel", http.StatusBadRequest)
			return
		}
		w.Write(data)
	}))
	defer srv.Close()
	out, errOut, err := clitest.Run(t, "release", "list", "--graph-url", srv.URL, "--channel", "stable-4.13", "--min-version", "4.13.27", "--max-version", "4.13.41", "--shortest-path")
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	golden(t, "list-shortest-path.stdout", out)
	if !strings.Contains(errOut, "conditional update (risks: CephCapDropPanic)") {
		t.Errorf("the conditional hop must be warned about; stderr:\n%s", errOut)
	}
	t.Setenv("UPDATE_URL_OVERRIDE", srv.URL)
	out, errOut, err = clitest.Run(t, "release", "list", "--channel", "stable-4.13", "-o", "yaml")
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	golden(t, "list-head.yaml", out)
	_, _, err = clitest.Run(t, "release", "list", "--channel", "stable-9.1")
	if err == nil || !strings.Contains(err.Error(), "HTTP 400") || !strings.Contains(err.Error(), "stable-9.1") {
		t.Errorf("unknown channel: err = %v", err)
	}
}

func TestToReleaseImage(t *testing.T) {
	src, dst := regtest.Start(t), regtest.Start(t)
	rel, err := releasetest.Build(src.Host, releasetest.Options{Components: 3})
	if err != nil {
		t.Fatal(err)
	}
	manifests := t.TempDir()
	out, errOut, err := clitest.Run(t, "release", "mirror", "--from", rel.Ref, "--to", dst.Host+"/ocp/release",
		"--to-release-image", dst.Host+"/ocp/release-images:4.12.0", "--to-manifests", manifests)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if got := dst.DigestOf(t, dst.Host+"/ocp/release-images:4.12.0"); got != rel.Digest {
		t.Errorf("release at --to-release-image: %q, want %s", got, rel.Digest)
	}
	if got := dst.DigestOf(t, dst.Host+"/ocp/release:4.12.0-x86_64"); got != "" {
		t.Errorf("release also pushed to the default tag")
	}
	for _, n := range rel.Names {
		if dst.DigestOf(t, dst.Host+"/ocp/release:4.12.0-x86_64-"+n) == "" {
			t.Errorf("component %s missing", n)
		}
	}
	if !strings.Contains(out, "Update image:  "+dst.Host+"/ocp/release-images:4.12.0") {
		t.Errorf("stdout:\n%s", out)
	}
	idms, _ := os.ReadFile(filepath.Join(manifests, "idms-release-4.12.0.yaml"))
	if !strings.Contains(string(idms), dst.Host+"/ocp/release-images\n    source: "+src.Host+"/openshift-release-dev/ocp-release") {
		t.Errorf("IDMS does not map the release repository to --to-release-image:\n%s", idms)
	}
}

// The source drops connections in the middle of blobs and answers 503 to
// manifest reads: the release still arrives complete, digests intact.
func TestMirrorThroughFaults(t *testing.T) {
	src, dst := regtest.Start(t), regtest.Start(t)
	isManifestGet := func(r *http.Request) bool { return r.Method == http.MethodGet && e2e.IsManifest(r) }
	proxy, err := e2e.NewProxy(src.Host,
		&e2e.Rule{Name: "reset", Match: e2e.IsBlobGet, Every: 3, Times: 6, Action: e2e.ResetMidBody},
		&e2e.Rule{Name: "503", Match: isManifestGet, Every: 4, Times: 4, Action: e2e.Status, Code: http.StatusServiceUnavailable},
	)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	rel, err := releasetest.Build(proxy.Host, releasetest.Options{Components: 15, LayerSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if _, errOut, err := clitest.Run(t, "release", "mirror", "--from", rel.Ref, "--to", dst.Host+"/ocp/release", "--to-manifests", t.TempDir()); err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	checkRelease(t, rel, dst, "ocp/release", "4.12.0-x86_64")
	if f := proxy.Counts().Faults; f["reset"] == 0 || f["503"] == 0 {
		t.Fatalf("faults fired %v: the test proved nothing", f)
	}
}

// A TLS registry with authentication: --ca-file and -a reach it.
func TestMirrorToTLSAuthRegistry(t *testing.T) {
	src := regtest.Start(t)
	dst := regtest.Start(t, regtest.WithTLS(), regtest.WithAuth("mirror", "s3cret"))
	rel, err := releasetest.Build(src.Host, releasetest.Options{Components: 3})
	if err != nil {
		t.Fatal(err)
	}
	authFile := filepath.Join(t.TempDir(), "auth.json")
	auth := base64.StdEncoding.EncodeToString([]byte("mirror:s3cret"))
	os.WriteFile(authFile, []byte(`{"auths":{"`+dst.Host+`":{"auth":"`+auth+`"}}}`), 0o600)
	_, _, err = clitest.Run(t, "release", "mirror", "--from", rel.Ref, "--to", dst.Host+"/ocp/release", "--ca-file", dst.CAFile, "--to-manifests", t.TempDir())
	if err == nil {
		t.Fatalf("pushed without credentials")
	}
	if _, errOut, err := clitest.Run(t, "release", "mirror", "--from", rel.Ref, "--to", dst.Host+"/ocp/release", "--ca-file", dst.CAFile, "-a", authFile, "--to-manifests", t.TempDir()); err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	r, _ := name.ParseReference(dst.Host + "/ocp/release:4.12.0-x86_64")
	d, err := remote.Head(r, remote.WithTransport(dst.Transport), remote.WithAuthFromKeychain(dst.Keychain))
	if err != nil || d.Digest.String() != rel.Digest {
		t.Fatalf("release at the TLS mirror: %v %v", d, err)
	}
}

func TestSkipReleaseImageAndInstructions(t *testing.T) {
	src, dst := regtest.Start(t), regtest.Start(t)
	rel, err := releasetest.Build(src.Host, releasetest.Options{Components: 3})
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, err := clitest.Run(t, "release", "mirror", "--from", rel.Ref, "--to", dst.Host+"/ocp/release",
		"--skip-release-image", "--print-mirror-instructions", "icsp", "--to-manifests", t.TempDir())
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if dst.DigestOf(t, dst.Host+"/ocp/release:4.12.0-x86_64") != "" {
		t.Errorf("--skip-release-image copied the release image")
	}
	for _, n := range rel.Names {
		if dst.DigestOf(t, dst.Host+"/ocp/release:4.12.0-x86_64-"+n) == "" {
			t.Errorf("component %s missing", n)
		}
	}
	if !strings.Contains(out, "imageContentSources:") || strings.Contains(out, "imageDigestSources:") || strings.Contains(out, "Update image:") {
		t.Errorf("stdout:\n%s", out)
	}
}

func TestMirrorBadInput(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"release", "mirror", "--to", "r.local/x"}, "--from is required"},
		{[]string{"release", "mirror", "--from", "quay.io/a/b:1"}, "give a destination"},
		{[]string{"release", "mirror", "--from", "quay.io/a/b:1", "--to", "r.local/x:tag"}, "without tag or digest"},
		{[]string{"release", "mirror", "--from", "quay.io/a/b:1", "--to", "r.local/x", "--to-dir", "d"}, "exclusive"},
		{[]string{"release", "mirror", "--from", "file://openshift/release:1", "--to", "r.local/x"}, "--from-dir"},
		{[]string{"release", "mirror", "--from", "quay.io/a/b:1", "--to", "r.local/x", "--verify-key", "k"}, "--verify-key needs --signature-dir"},
		{[]string{"release", "list"}, "--channel is required"},
		{[]string{"release", "mirror", "--from", "quay.io/a/b:1", "--to", "r.local/x", "--print-mirror-instructions", "yaml"}, "want all, idms, icsp or none"},
		{[]string{"release", "info", "-o", "xml", "quay.io/a/b:1"}, `-o "xml"`},
	}
	for _, tc := range tests {
		_, _, err := clitest.Run(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.args, err, tc.want)
		}
	}
}

// release list --save-graph writes the graph it fetched, as
// `registry prune --graph` reads it: the REAL stable-4.13 graph
// round-trips with every node, edge and conditional edge.
func TestReleaseListSaveGraph(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(releasetest.DataDir(), "..", "cincinnati", "graph-amd64-stable-4.13.json"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(data) }))
	defer srv.Close()
	saved := filepath.Join(t.TempDir(), "stable-4.13.json")
	if _, errOut, err := clitest.Run(t, "release", "list", "--graph-url", srv.URL, "--channel", "stable-4.13", "--save-graph", saved); err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	orig, err := graph.Parse(data, "recorded")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(saved)
	if err != nil {
		t.Fatal(err)
	}
	got, err := graph.Parse(b, saved)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Nodes) != 98 || len(got.Edges) != 1171 || len(got.ConditionalEdges) != 37 ||
		len(orig.Nodes) != len(got.Nodes) || got.Head().String() != "4.13.43" {
		t.Errorf("saved graph: %d nodes, %d edges, %d conditional edges, head %s", len(got.Nodes), len(got.Edges), len(got.ConditionalEdges), got.Head())
	}
	p1, err1 := graph.ShortestPath(orig, orig.First(), orig.Head())
	p2, err2 := graph.ShortestPath(got, got.First(), got.Head())
	if err1 != nil || err2 != nil || fmt.Sprint(p1) != fmt.Sprint(p2) {
		t.Errorf("paths differ: %v (%v) vs %v (%v)", p1, err1, p2, err2)
	}
}
