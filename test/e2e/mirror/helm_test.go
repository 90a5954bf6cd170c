package mirror_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/airlock-mirror/airlock/internal/helm/helmtest"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

// TestHelmPlanMatchesMirror: a local chart archive in the imageset (with
// values switching on an optional template and imagePaths reaching a
// custom resource) is planned from manifests only: the chart group's images
// are those the rendered chart names plus the chart itself, and the blobs
// plan says mirror-to-disk transfers are exactly the blobs it copies; the
// chart and its images then reach a fresh registry by disk-to-mirror and
// verify there.
func TestHelmPlanMatchesMirror(t *testing.T) {
	src := regtest.Start(t)
	dir := filepath.Join(t.TempDir(), "demo")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("..", "..", "..", "internal", "helm", "testdata", "demo"))); err != nil {
		t.Fatal(err)
	}
	images := map[string]string{}
	for i, repoTag := range []string{"demo/app:2.5.1", "library/busybox:1.36", "db/postgres:15", "agent/nginx:1.25",
		"tools/backup:v3", "tools/migrate:v3", "tools/debug:on", "plugins/custom:4.0", "sidecar/proxy:0.9"} {
		img, err := synth.Image(int64(500+i), synth.WithLayers(2), synth.WithLayerSize(2048))
		if err != nil {
			t.Fatal(err)
		}
		d, err := synth.Push(img, src.Host+"/"+repoTag, remote.WithTransport(src.Transport))
		if err != nil {
			t.Fatal(err)
		}
		images[repoTag] = d
	}
	values := fmt.Sprintf("image:\n  registry: %[1]s\n  repository: demo/app\n  tag: \"\"\ninit:\n  image: %[1]s/library/busybox:1.36\n"+
		"db:\n  image: %[1]s/db/postgres@%[2]s\nagent:\n  image: %[1]s/agent/nginx:1.25\nbackup:\n  image: %[1]s/tools/backup:v3\n"+
		"migrate:\n  image: %[1]s/tools/migrate:v3\ndebug:\n  enabled: false\n  image: %[1]s/tools/debug:on\n"+
		"plugin:\n  image: %[1]s/plugins/custom:4.0\nsidecar:\n  image: %[1]s/sidecar/proxy:0.9\n", src.Host, images["db/postgres:15"])
	if err := os.WriteFile(filepath.Join(dir, "values.yaml"), []byte(values), 0o644); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	archive := filepath.Join(work, "demo-1.2.0.tgz")
	if err := os.WriteFile(archive, helmtest.Pack(t, dir, "demo"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(work, "isc.yaml")
	if err := os.WriteFile(cfg, []byte(`apiVersion: mirror.openshift.io/v2alpha1
kind: ImageSetConfiguration
mirror:
  helm:
    local:
    - name: demo
      path: `+archive+`
      imagePaths: ["{.spec.custom[*].image}"]
      values:
        debug: {enabled: true}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(work, "store")
	cp := planJSON(t, "-c", cfg, "file://"+store)
	g := group(t, cp, "chart demo:1.2.0")
	// The 9 images the rendered chart names, and the chart archive.
	if g.Images != len(images)+1 || g.Blobs == 0 || g.TransferBlobs != g.Blobs {
		t.Errorf("chart group: %+v, want %d images (9 rendered + the chart)", g, len(images)+1)
	}
	want := map[string]bool{}
	for _, p := range cp.Images {
		for _, b := range p.Blobs {
			want[b.Digest] = true
		}
	}
	out := run(t, "mirror", "-c", cfg, "file://"+store)
	copied, _ := blobStats(t, out)
	if copied != len(want) {
		t.Errorf("mirror-to-disk copied %d blobs, the plan said %d", copied, len(want))
	}
	stored := storeBlobs(t, store)
	for d := range want {
		if !stored[strings.TrimPrefix(d, "sha256:")] {
			t.Errorf("planned blob %s is not in the store", d)
		}
	}

	dst := regtest.Start(t)
	run(t, "mirror", "-c", cfg, "--from", "file://"+store, "docker://"+dst.Host+"/m")
	mapping := filepath.Join(store, "working-dir", "mapping.txt")
	got := destDigests(t, dst, mapping)
	for repoTag, d := range images {
		if !got[d] {
			t.Errorf("%s (%s) is not at the mirror", repoTag, d)
		}
	}
	run(t, "verify", "-f", mapping)
	if dst.DigestOf(t, dst.Host+"/m/helm-charts/demo:1.2.0") == "" {
		t.Error("the chart is not at the mirror as helm-charts/demo:1.2.0")
	}
}
