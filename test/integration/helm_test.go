package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/airlock-mirror/airlock/internal/engine"
	"github.com/airlock-mirror/airlock/internal/imageset"
	"github.com/airlock-mirror/airlock/internal/orchestrate"
	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/testutil/gotool"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

// helmModule is the helm CLI the mirrored charts are pulled with.
const helmModule = "helm.sh/helm/v4/cmd/helm@v4.3.2"

// helmEnv keeps helm's cache, config and data out of the user's home.
func helmEnv(t *testing.T) []string {
	home := t.TempDir()
	return append(clientEnv(t),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"))
}

// helmChartSource writes the internal/helm test chart with its images
// pointing at reg, pushes those images there (except the one a disabled
// template names) and returns the chart directory.
func helmChartSource(t *testing.T, reg *regtest.Registry) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "demo")
	src := filepath.Join("..", "..", "internal", "helm", "testdata", "demo")
	if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	push := func(seed int64, repoTag string) string {
		img, err := synth.Image(seed, synth.WithLayers(2), synth.WithLayerSize(4096))
		if err != nil {
			t.Fatal(err)
		}
		d, err := synth.Push(img, reg.Host+"/"+repoTag, remote.WithTransport(reg.Transport))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	push(1, "demo/app:2.5.1")
	push(2, "library/busybox:1.36")
	db := push(3, "db/postgres:15")
	push(4, "agent/nginx:1.25")
	push(5, "tools/backup:v3")
	push(6, "tools/migrate:v3")
	push(7, "plugins/custom:4.0")
	push(8, "sidecar/proxy:0.9")
	values := fmt.Sprintf(`image:
  registry: %[1]s
  repository: demo/app
  tag: ""
init:
  image: %[1]s/library/busybox:1.36
db:
  image: %[1]s/db/postgres@%[2]s
agent:
  image: %[1]s/agent/nginx:1.25
backup:
  image: %[1]s/tools/backup:v3
migrate:
  image: %[1]s/tools/migrate:v3
debug:
  enabled: false
  image: %[1]s/tools/debug:never
plugin:
  image: %[1]s/plugins/custom:4.0
sidecar:
  image: %[1]s/sidecar/proxy:0.9
`, reg.Host, db)
	if err := os.WriteFile(filepath.Join(dir, "values.yaml"), []byte(values), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

var imageLineRE = regexp.MustCompile(`(?m)^\s*(?:-\s*)?image:\s*"?([^"\s]+)"?\s*$`)

// TestHelmChartMirroredAndPulledWithHelm: a chart packaged and indexed by
// the real helm CLI and served as an HTTP chart repository on 127.0.0.1 is
// collected into a plan whose images are exactly those `helm template`
// prints; mirror-to-mirror (orchestrate.Mirror) and `airlock mirror -c`
// mirror-to-disk then disk-to-mirror (the binary) bring every image with its
// source digest, and `helm pull oci://` fetches the chart from both mirrors
// byte-identical to the repository's archive, with the plan's digest.
func TestHelmChartMirroredAndPulledWithHelm(t *testing.T) {
	helmBin := gotool.Path(t, helmModule)
	env := helmEnv(t)
	src := regtest.Start(t)
	chartDir := helmChartSource(t, src)

	repoDir := t.TempDir()
	mustRun(t, env, "", helmBin, "package", chartDir, "-d", repoDir)
	mustRun(t, env, "", helmBin, "repo", "index", repoDir)
	archive, err := os.ReadFile(filepath.Join(repoDir, "demo-1.2.0.tgz"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(archive)
	archiveDigest := "sha256:" + hex.EncodeToString(sum[:])
	repo := httptest.NewServer(http.FileServer(http.Dir(repoDir)))
	defer repo.Close()

	// The oracle: what helm itself renders, every image: line.
	tmpl := mustRun(t, env, "", helmBin, "template", "demo", filepath.Join(repoDir, "demo-1.2.0.tgz"))
	want := map[string]bool{}
	for _, m := range imageLineRE.FindAllStringSubmatch(tmpl.stdout, -1) {
		want[m[1]] = true
	}
	if len(want) != 8 {
		t.Fatalf("helm template names %d images, the chart has 8:\n%s", len(want), tmpl.stdout)
	}

	isc := &imageset.ImageSetConfiguration{APIVersion: imageset.APIVersion, Kind: imageset.Kind,
		Mirror: imageset.Mirror{Helm: imageset.Helm{Repositories: []imageset.HelmRepository{{Name: "local", URL: repo.URL,
			Charts: []imageset.HelmChart{{Name: "demo", Version: "1.2.0", ImagePaths: []string{"{.spec.custom[*].image}"}}}}}}}}

	// mirror-to-mirror through the orchestrator, as `airlock mirror -c
	// --workspace file://WS docker://DST/mirror` runs it.
	dst := regtest.Start(t)
	eng, err := engine.New(engine.Options{Transport: src.Transport, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	ws := t.TempDir()
	res, err := orchestrate.Mirror(context.Background(), orchestrate.Options{Mode: orchestrate.MirrorToMirror, Config: isc,
		ConfigFile: "imageset.yaml", Dir: ws, Dest: ref.MustParse("docker://" + dst.Host + "/mirror"), Engine: eng})
	if err != nil {
		t.Fatalf("mirror-to-mirror: %v", err)
	}
	items := res.Plan.Items
	var got []string
	var chartItem *plan.Item
	for i, it := range items {
		switch it.Kind {
		case plan.KindImage:
			got = append(got, it.Source.String())
			if it.Origin.Chart != "local/demo:1.2.0" {
				t.Errorf("%s: origin chart %q", it.Source, it.Origin.Chart)
			}
		case plan.KindHelmChart:
			chartItem = &items[i]
		}
	}
	sort.Strings(got)
	var wantList []string
	for w := range want {
		wantList = append(wantList, w)
	}
	sort.Strings(wantList)
	if strings.Join(got, "\n") != strings.Join(wantList, "\n") {
		t.Fatalf("plan images differ from helm template:\n plan %q\n helm %q", got, wantList)
	}
	if chartItem == nil {
		t.Fatal("no chart item in the plan")
	}
	for _, it := range items {
		if it.Kind != plan.KindImage {
			continue
		}
		if s, d := src.DigestOf(t, it.Source.String()), dst.DigestOf(t, it.Dests[0].String()); s != d {
			t.Errorf("%s is %s at the source, %s at %s", it.Source, s, d, it.Dests[0])
		}
	}
	pullChart(t, env, helmBin, dst.Host+"/mirror", archiveDigest, chartItem.Digest)
	// The cluster is redirected for the images; the chart is no image it pulls.
	itms, err := os.ReadFile(filepath.Join(orchestrate.WorkingDir(ws), "cluster-resources", "itms-oc-mirror.yaml"))
	if err != nil || !strings.Contains(string(itms), src.Host+"/tools") || strings.Contains(string(itms), "helm") {
		t.Errorf("itms-oc-mirror.yaml (%v):\n%s", err, itms)
	}

	// mirror-to-disk, then disk-to-mirror into a fresh registry, with the
	// airlock binary as a user runs it: the chart travels in the local
	// store like any image.
	iscFile := filepath.Join(t.TempDir(), "imageset.yaml")
	if err := os.WriteFile(iscFile, []byte(`apiVersion: mirror.openshift.io/v2alpha1
kind: ImageSetConfiguration
mirror:
  helm:
    repositories:
    - name: local
      url: `+repo.URL+`
      charts:
      - name: demo
        version: 1.2.0
        imagePaths: ["{.spec.custom[*].image}"]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(t.TempDir(), "store")
	mustRun(t, env, "", airlockBin, "mirror", "-c", iscFile, "--insecure", "file://"+store)
	dst2 := regtest.Start(t)
	mustRun(t, env, "", airlockBin, "mirror", "-c", iscFile, "--insecure", "--from", "file://"+store, "docker://"+dst2.Host+"/dr")
	pullChart(t, env, helmBin, dst2.Host+"/dr", archiveDigest, chartItem.Digest)
	for _, it := range items {
		if it.Kind == plan.KindImage {
			if d := dst2.DigestOf(t, dst2.Host+"/dr/"+strings.TrimPrefix(it.Dests[0].Path, "mirror/")+":"+it.Dests[0].Tag); d != src.DigestOf(t, it.Source.String()) {
				t.Errorf("%s after disk-to-mirror: %q", it.Source, d)
			}
		}
	}
}

// pullChart runs helm pull and helm show against REG/helm-charts/demo and
// checks the archive and the manifest digest.
func pullChart(t *testing.T, env []string, helmBin, reg, archiveDigest, manifestDigest string) {
	t.Helper()
	out := t.TempDir()
	pull := mustRun(t, env, "", helmBin, "pull", "oci://"+reg+"/helm-charts/demo", "--version", "1.2.0", "--plain-http", "-d", out)
	pulled, err := os.ReadFile(filepath.Join(out, "demo-1.2.0.tgz"))
	if err != nil {
		t.Fatalf("helm pull wrote no demo-1.2.0.tgz: %v\n%s", err, pull)
	}
	psum := sha256.Sum256(pulled)
	if got := "sha256:" + hex.EncodeToString(psum[:]); got != archiveDigest {
		t.Errorf("pulled chart %s from %s, repository archive %s", got, reg, archiveDigest)
	}
	if !strings.Contains(pull.stdout+pull.stderr, "Digest: "+manifestDigest) {
		t.Errorf("helm pull from %s reports another manifest digest than the plan's %s:\n%s", reg, manifestDigest, pull)
	}
	show := mustRun(t, env, "", helmBin, "show", "chart", "oci://"+reg+"/helm-charts/demo", "--version", "1.2.0", "--plain-http")
	if !strings.Contains(show.stdout, "appVersion: 2.5.1") {
		t.Errorf("helm show chart from %s:\n%s", reg, show)
	}
}
