package retention_test

import (
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/airlock-mirror/airlock/internal/release/releasetest"
	"github.com/airlock-mirror/airlock/internal/testutil/clitest"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

// mirroredVersions are releases of the REAL stable-4.13 graph. Through
// them, the shortest path 4.12.10 -> 4.13.43 is 4.12.10 -> 4.12.58 ->
// 4.13.43 (4.12.30 -> 4.13.43 is as short; the higher hop wins).
var (
	mirroredVersions = []string{"4.12.10", "4.12.30", "4.12.45", "4.12.58", "4.13.0", "4.13.43"}
	keptVersions     = []string{"4.12.10", "4.12.58", "4.13.43"}
)

const (
	releaseRepo   = "openshift/release-images"
	componentRepo = "openshift/release"
)

// fillReleases pushes the releases to host: 4 components each (the first
// 2, one a multi-arch index, shared by all), the release tagged
// <version>-x86_64, components by digest only, as oc-mirror lays them out.
// It also pushes app/tool:1.0, which no policy here touches.
func fillReleases(t *testing.T, host string, opts ...remote.Option) map[string]*releasetest.Release {
	t.Helper()
	rels := map[string]*releasetest.Release{}
	for i, v := range mirroredVersions {
		r, err := releasetest.Build(host, releasetest.Options{Components: 4, Shared: 2, Seed: int64(i + 1), Version: v,
			Repo: componentRepo, ReleaseRepo: releaseRepo, Tag: v + "-x86_64", Remote: opts})
		if err != nil {
			t.Fatal(err)
		}
		rels[v] = r
	}
	tool, _ := synth.Image(77, synth.WithLayerSize(1024))
	if _, err := synth.Push(tool, host+"/app/tool:1.0", opts...); err != nil {
		t.Fatal(err)
	}
	return rels
}

// pullAll reads reference whole: manifests, children and every layer.
func pullAll(t *testing.T, reference string, opts ...remote.Option) {
	t.Helper()
	r, err := name.ParseReference(reference, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(r, opts...)
	if err != nil {
		t.Fatalf("pull %s: %v", reference, err)
	}
	var imgs []v1.Image
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			t.Fatal(err)
		}
		im, _ := idx.IndexManifest()
		for _, m := range im.Manifests {
			img, err := idx.Image(m.Digest)
			if err != nil {
				t.Fatalf("pull %s child %s: %v", reference, m.Digest, err)
			}
			imgs = append(imgs, img)
		}
	} else {
		img, err := desc.Image()
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, img)
	}
	for _, img := range imgs {
		if _, err := img.RawConfigFile(); err != nil {
			t.Fatalf("pull %s config: %v", reference, err)
		}
		ls, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			rc, err := l.Compressed()
			if err != nil {
				t.Fatalf("pull %s layer: %v", reference, err)
			}
			_, err = io.Copy(io.Discard, rc)
			rc.Close()
			if err != nil {
				t.Fatalf("pull %s layer: %v", reference, err)
			}
		}
	}
}

// checkPruned asserts what an upgrade-path prune from 4.12.10 leaves: the
// release tags of keptVersions only, their components whole, none of the
// components only dropped releases used, app/tool untouched.
func checkPruned(t *testing.T, host string, rels map[string]*releasetest.Release, opts ...remote.Option) {
	t.Helper()
	repo, _ := name.NewRepository(host+"/"+releaseRepo, name.Insecure)
	tags, err := remote.List(repo, opts...)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(tags)
	var want []string
	for _, v := range keptVersions {
		want = append(want, v+"-x86_64")
	}
	if strings.Join(tags, " ") != strings.Join(want, " ") {
		t.Errorf("release tags left %v, want %v", tags, want)
	}
	kept := map[string]bool{}
	for _, v := range keptVersions {
		kept[v] = true
		pullAll(t, host+"/"+releaseRepo+":"+v+"-x86_64", opts...)
		for _, c := range rels[v].Components {
			pullAll(t, host+"/"+componentRepo+"@"+c[strings.Index(c, "@")+1:], opts...)
		}
	}
	for _, v := range mirroredVersions {
		if kept[v] {
			continue
		}
		for i, n := range rels[v].Names {
			c := rels[v].Components[n]
			r, _ := name.ParseReference(host+"/"+componentRepo+"@"+c[strings.Index(c, "@")+1:], name.Insecure)
			_, err := remote.Head(r, opts...)
			if shared := i < 2; shared != (err == nil) {
				t.Errorf("release %s component %s (shared %v): HEAD err %v", v, n, shared, err)
			}
		}
		r, _ := name.ParseReference(host+"/"+releaseRepo+"@"+rels[v].Digest, name.Insecure)
		if _, err := remote.Head(r, opts...); err == nil {
			t.Errorf("dropped release %s still there by digest", v)
		}
	}
	pullAll(t, host+"/app/tool:1.0", opts...)
}

func TestPruneKeepUpgradePathEmbedded(t *testing.T) {
	root := t.TempDir()
	reg := regtest.Start(t, regtest.WithRoot(root))
	rels := fillReleases(t, reg.Host, remote.WithTransport(reg.Transport))
	stop(t, reg)
	args := []string{"--root", root, "--keep-upgrade-path", "4.12.10", "--graph", graphFile()}

	text, errOut, err := clitest.Run(t, append([]string{"registry", "prune", "--dry-run"}, args...)...)
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, errOut)
	}
	checkUpgradePathDryRun(t, text, "")
	dry := prune(t, append(args, "--dry-run")...)
	// 3 releases and their 2 own components each.
	if len(dry.Decision.Delete) != 9 || dry.Decision.FreedBytes <= 0 {
		t.Fatalf("dry-run decision %+v", dry.Decision)
	}

	res := prune(t, args...)
	if res.Applied == nil || res.Applied.ManifestsDeleted != 9 || res.GC == nil {
		t.Fatalf("prune result %+v", res)
	}
	// The decision's bytes are what garbage collection really returned.
	if res.GC.BlobBytes != dry.Decision.FreedBytes {
		t.Errorf("garbage collection freed %d bytes, the decision said %d", res.GC.BlobBytes, dry.Decision.FreedBytes)
	}
	reg = regtest.Start(t, regtest.WithRoot(root))
	checkPruned(t, reg.Host, rels, remote.WithTransport(reg.Transport))
}

// startDockerRegistry runs Debian's docker-registry (distribution 2.8)
// with deletes enabled on a free port; its storage is dir.
func startDockerRegistry(t *testing.T, bin, dir string) (host, config string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host = l.Addr().String()
	l.Close()
	config = filepath.Join(dir, "config.yml")
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), host)
	if err := os.WriteFile(config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", config)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			log, _ := os.ReadFile(logf.Name())
			t.Logf("docker-registry log (last 4000 bytes):\n%s", log[max(0, len(log)-4000):])
		}
	})
	for i := 0; i < 100; i++ {
		if resp, err := http.Get("http://" + host + "/v2/"); err == nil {
			resp.Body.Close()
			return host, config
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("docker-registry on %s did not start", host)
	return "", ""
}

func blobBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.Walk(filepath.Join(dir, "data", "docker", "registry", "v2", "blobs"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && fi.Name() == "data" {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPruneRemoteRegistry prunes a registry airlock does not run, through
// its API: Debian's docker-registry when installed (then its own
// garbage-collect must free exactly the bytes the decision announced),
// else the embedded registry served on its own port.
func TestPruneRemoteRegistry(t *testing.T) {
	dir := t.TempDir()
	var host, config string
	var opts []remote.Option
	bin, lookErr := exec.LookPath("docker-registry")
	if lookErr == nil {
		host, config = startDockerRegistry(t, bin, dir)
	} else {
		t.Logf("docker-registry not installed (%v): the embedded registry plays the remote one", lookErr)
		reg := regtest.Start(t)
		host = reg.Host
		opts = append(opts, remote.WithTransport(reg.Transport))
	}
	rels := fillReleases(t, host, opts...)
	// Another tenant's releases, outside the pruned prefix, must stay.
	other, err := releasetest.Build(host, releasetest.Options{Components: 2, Version: "4.12.30", Repo: "tenant/release", ReleaseRepo: "tenant/release-images", Tag: "4.12.30-x86_64", Remote: opts})
	if err != nil {
		t.Fatal(err)
	}

	args := []string{"--registry", host + "/openshift", "--keep-upgrade-path", "4.12.10", "--graph", graphFile()}
	dry := prune(t, append(args, "--dry-run")...)
	if len(dry.Decision.Delete) != 9 || dry.Decision.FreedBytes <= 0 || dry.Applied != nil {
		t.Fatalf("dry-run decision %+v", dry.Decision)
	}
	var before int64
	if config != "" {
		before = blobBytes(t, dir)
	}
	text, errOut, err := clitest.Run(t, append([]string{"registry", "prune"}, args...)...)
	if err != nil {
		t.Fatalf("remote prune: %v\n%s\n%s", err, text, errOut)
	}
	for _, want := range []string{"deleted 9 manifests", "nothing is freed yet", "registry garbage-collect"} {
		if !strings.Contains(text, want) {
			t.Errorf("output does not say %q:\n%s", want, text)
		}
	}
	checkPruned(t, host, rels, opts...)
	pullAll(t, other.Ref, opts...)
	// The prune is in the registry's history, as mirror runs are.
	hist, errOut, err := clitest.Run(t, "history", "docker://"+host, "--insecure", "-o", "json")
	if err != nil || !strings.Contains(hist, `"registry prune"`) {
		t.Errorf("history: %v\n%s%s", err, hist, errOut)
	}

	// Nothing left to prune: a second run deletes nothing and its dry run
	// still announces the bytes garbage collection would free.
	again := prune(t, append(args, "--dry-run")...)
	if len(again.Decision.Delete) != 0 {
		t.Errorf("second run would delete %+v", again.Decision.Delete)
	}
	if config == "" {
		return
	}
	// Deleting freed nothing yet (the prune's history record even added
	// a little); the registry's own collection (without
	// --delete-untagged: components are untagged) frees exactly what the
	// decision announced.
	mid := blobBytes(t, dir)
	if mid < before {
		t.Errorf("blobs went from %d to %d bytes before garbage collection", before, mid)
	}
	if out, err := exec.Command(bin, "garbage-collect", config).CombinedOutput(); err != nil {
		t.Fatalf("docker-registry garbage-collect: %v\n%s", err, out)
	}
	if freed := mid - blobBytes(t, dir); freed != dry.Decision.FreedBytes {
		t.Errorf("garbage collection freed %d bytes, the decision announced %d", freed, dry.Decision.FreedBytes)
	}
	checkPruned(t, host, rels, opts...)
	pullAll(t, other.Ref, opts...)
}

// TestPruneRemoteRegistryTLSAuth prunes a registry behind TLS and
// credentials, with the access flags of the copy commands: without
// --ca-file or --authfile it refuses, naming the cause, and deletes
// nothing; with them it keeps exactly the newest tag.
func TestPruneRemoteRegistryTLSAuth(t *testing.T) {
	reg := regtest.Start(t, regtest.WithTLS(), regtest.WithAuth("alice", "s3cret-pw"))
	opts := []remote.Option{remote.WithTransport(reg.Transport), remote.WithAuthFromKeychain(reg.Keychain)}
	for i, tag := range []string{"1.0.0", "1.1.0", "2.0.0"} {
		img, _ := synth.Image(int64(300+i), synth.WithLayerSize(2048))
		if _, err := synth.Push(img, reg.Ref("app/web:"+tag), opts...); err != nil {
			t.Fatal(err)
		}
	}
	authFile := filepath.Join(t.TempDir(), "auth.json")
	auth := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, reg.Host, base64.StdEncoding.EncodeToString([]byte("alice:s3cret-pw")))
	if err := os.WriteFile(authFile, []byte(auth), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"registry", "prune", "--registry", reg.Host, "--keep-last", "1"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--authfile", authFile}, "trust the registry's CA with --ca-file"},
		{[]string{"--ca-file", reg.CAFile, "--authfile", filepath.Join(t.TempDir(), "none.json")}, "--authfile"},
		{[]string{"--ca-file", reg.CAFile}, "give credentials that may list and delete"},
	} {
		_, _, err := clitest.Run(t, append(base, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want it to name %q", tc.args, err, tc.want)
		}
	}
	out, errOut, err := clitest.Run(t, append(base, "--ca-file", reg.CAFile, "--authfile", authFile)...)
	if err != nil {
		t.Fatalf("prune: %v\n%s%s", err, out, errOut)
	}
	if !strings.Contains(out, "deleted 2 manifests") || !strings.Contains(out, "garbage collection") {
		t.Errorf("output:\n%s", out)
	}
	repo, _ := name.NewRepository(reg.Host + "/app/web")
	tags, err := remote.List(repo, opts...)
	if err != nil || strings.Join(tags, " ") != "2.0.0" {
		t.Errorf("tags left %v (%v), want [2.0.0]", tags, err)
	}
}

// checkUpgradePathDryRun checks that a --keep-upgrade-path dry run of the
// fillReleases world (path 4.12.10 -> 4.13.43) names every release it keeps
// and every one it would drop, with why; graphSource is the end of the drop
// reason that names where the graph came from ("" for the --graph file).
func checkUpgradePathDryRun(t *testing.T, text, graphSource string) {
	t.Helper()
	for _, v := range []string{"4.12.30", "4.12.45", "4.13.0"} {
		line := fmt.Sprintf("would drop release %s:%s-x86_64 (%s): release %s is not on the upgrade path to 4.13.43%s", releaseRepo, v, v, v, graphSource)
		if !strings.Contains(text, line) {
			t.Errorf("dry run does not say %q:\n%s", line, text)
		}
	}
	for _, v := range keptVersions {
		if !strings.Contains(text, fmt.Sprintf("keep release %s:%s-x86_64 (%s): ", releaseRepo, v, v)) {
			t.Errorf("dry run does not keep %s:\n%s", v, text)
		}
	}
}
