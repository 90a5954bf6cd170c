// Package deletion tests `airlock delete` end to end against the embedded
// registry's storage.
package deletion

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/airlock-mirror/airlock/internal/deletion"
	"github.com/airlock-mirror/airlock/internal/helm/helmtest"
	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/registry"
	"github.com/airlock-mirror/airlock/internal/testutil/clitest"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

func TestMain(m *testing.M) { os.Exit(clitest.Main(m)) }

// blobs adds every blob of x as the registry stores it: manifests (index,
// platform manifests), configs and layers.
func blobs(t *testing.T, x synth.Pushable, into map[string]int64) {
	t.Helper()
	switch v := x.(type) {
	case v1.ImageIndex:
		raw, _ := v.RawManifest()
		d, _ := v.Digest()
		into[d.String()] = int64(len(raw))
		im, err := v.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range im.Manifests {
			img, err := v.Image(m.Digest)
			if err != nil {
				t.Fatal(err)
			}
			blobs(t, img, into)
		}
	case v1.Image:
		raw, _ := v.RawManifest()
		d, _ := v.Digest()
		into[d.String()] = int64(len(raw))
		m, err := v.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		into[m.Config.Digest.String()] = m.Config.Size
		for _, l := range m.Layers {
			into[l.Digest.String()] = l.Size
		}
	}
}

func blobFile(root, digest string) string {
	hex := strings.TrimPrefix(digest, "sha256:")
	return filepath.Join(root, "docker", "registry", "v2", "blobs", "sha256", hex[:2], hex, "data")
}

// pullAll reads every blob of reference from reg: the image still works.
func pullAll(t *testing.T, reg *regtest.Registry, reference string) {
	t.Helper()
	r, err := name.ParseReference(reg.Host+"/"+reference, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(r, remote.WithTransport(reg.Transport))
	if err != nil {
		t.Fatalf("%s after delete: %v", reference, err)
	}
	var imgs []v1.Image
	if desc.MediaType.IsIndex() {
		idx, _ := desc.ImageIndex()
		im, _ := idx.IndexManifest()
		for _, m := range im.Manifests {
			img, err := idx.Image(m.Digest)
			if err != nil {
				t.Fatalf("%s child %s: %v", reference, m.Digest, err)
			}
			imgs = append(imgs, img)
		}
	} else {
		img, _ := desc.Image()
		imgs = append(imgs, img)
	}
	for _, img := range imgs {
		if _, err := img.RawConfigFile(); err != nil {
			t.Fatalf("%s config: %v", reference, err)
		}
		ls, _ := img.Layers()
		for _, l := range ls {
			rc, err := l.Compressed()
			if err == nil {
				_, err = io.Copy(io.Discard, rc)
				rc.Close()
			}
			if err != nil {
				t.Fatalf("%s layer: %v", reference, err)
			}
			d, _ := l.Digest()
			if _, err := os.Stat(blobFile(reg.Root, d.String())); err != nil {
				t.Fatalf("%s layer %s is gone from storage", reference, d)
			}
		}
	}
}

// TestDeleteWithGarbageCollection: a delete list generated from a plan is
// carried out on the embedded registry's storage: the listed images are
// gone (an index with its platform manifests), a listed tag whose manifest
// another tag still names is only untagged, garbage collection frees
// exactly the blobs only the deleted images used (reported in bytes), and
// the shared base layer and every other image still pull.
func TestDeleteWithGarbageCollection(t *testing.T) {
	root := t.TempDir()
	reg := regtest.Start(t, regtest.WithRoot(root))
	base := synth.Layer(99, 8192)
	opts := []synth.Option{synth.WithBase(base), synth.WithLayers(2), synth.WithLayerSize(16384)}
	a, _ := synth.Image(1, opts...)
	b, _ := synth.Image(2, opts...)
	c, err := synth.Index(3, []string{"linux/amd64", "linux/arm64"}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := synth.Image(4, opts...)
	push := func(x synth.Pushable, r string) {
		if _, err := synth.Push(x, reg.Host+"/"+r, remote.WithTransport(reg.Transport)); err != nil {
			t.Fatal(err)
		}
	}
	push(a, "mirror/apps/a:v1")
	push(b, "mirror/apps/b:v1")
	push(c, "mirror/apps/c:v1")
	push(d, "mirror/apps/d:v1")
	push(d, "mirror/apps/d:keep")

	// What a mirror of a, c and d:v1 planned; the list is FromPlan's.
	dest := func(r string) []ref.Ref { return []ref.Ref{ref.MustParse(reg.Host + "/" + r)} }
	p := plan.Plan{Items: []plan.Item{
		{Source: ref.MustParse("quay.io/apps/a:v1"), Dests: dest("mirror/apps/a:v1"), Kind: plan.KindImage},
		{Source: ref.MustParse("quay.io/apps/c:v1"), Dests: dest("mirror/apps/c:v1"), Kind: plan.KindImage},
		{Source: ref.MustParse("quay.io/apps/d:v1"), Dests: dest("mirror/apps/d:v1"), Kind: plan.KindImage},
	}}
	list := filepath.Join(t.TempDir(), "delete-images.yaml")
	if err := deletion.Write(list, deletion.FromPlan(p)); err != nil {
		t.Fatal(err)
	}

	gone, kept := map[string]int64{}, map[string]int64{}
	blobs(t, a, gone)
	blobs(t, c, gone)
	blobs(t, b, kept)
	blobs(t, d, kept)
	var wantFreed []string
	var wantBytes int64
	for dg, n := range gone {
		if _, ok := kept[dg]; !ok {
			wantFreed = append(wantFreed, dg)
			wantBytes += n
		}
	}
	sort.Strings(wantFreed)
	baseDigest, _ := base.Digest()
	if _, ok := kept[baseDigest.String()]; !ok {
		t.Fatal("test setup: the base layer must be shared")
	}

	reg.Server.Close() // gc must not run beside a serving registry
	stdout, stderr, err := clitest.Run(t, "delete", "--delete-yaml-file", list, "--registry-root", root, "-o", "json", "docker://"+reg.Host+"/mirror")
	if err != nil {
		t.Fatalf("delete: %v\n%s\n%s", err, stdout, stderr)
	}
	var out struct {
		Deleted  []string
		Untagged []string
		GC       struct {
			BlobBytes   int64
			BlobDigests []string
		}
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	// a, c and c's two platform manifests.
	if len(out.Deleted) != 4 || strings.Join(out.Untagged, ",") != "mirror/apps/d:v1" {
		t.Errorf("deleted %q, untagged %q", out.Deleted, out.Untagged)
	}
	if strings.Join(out.GC.BlobDigests, " ") != strings.Join(wantFreed, " ") {
		t.Errorf("gc freed\n %q\nwant the blobs only a and c used\n %q", out.GC.BlobDigests, wantFreed)
	}
	if out.GC.BlobBytes != wantBytes {
		t.Errorf("gc reports %d bytes freed, those blobs hold %d", out.GC.BlobBytes, wantBytes)
	}
	for _, dg := range wantFreed {
		if _, err := os.Stat(blobFile(root, dg)); !os.IsNotExist(err) {
			t.Errorf("blob %s of a deleted image is still stored (%v)", dg, err)
		}
	}

	after := regtest.Start(t, regtest.WithRoot(root))
	for _, r := range []string{"mirror/apps/a:v1", "mirror/apps/c:v1", "mirror/apps/d:v1"} {
		if got := after.DigestOf(t, after.Host+"/"+r); got != "" {
			t.Errorf("%s still resolves to %s", r, got)
		}
	}
	pullAll(t, after, "mirror/apps/b:v1")
	pullAll(t, after, "mirror/apps/d:keep")

	// Running the same list again finds nothing left to delete.
	after.Server.Close()
	stdout, _, err = clitest.Run(t, "delete", "--delete-yaml-file", list, "--registry-root", root, "docker://"+reg.Host+"/mirror")
	if err != nil || !strings.Contains(stdout, "0 manifests deleted, 0 tags removed, 3 already gone") {
		t.Errorf("second delete: %v\n%s", err, stdout)
	}
}

// TestDeleteRefusals: the step flags are checked and a list for another
// registry or a damaged list is refused before anything is deleted.
func TestDeleteRefusals(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	if err := deletion.Write(good, deletion.List{Kind: deletion.Kind, APIVersion: deletion.APIVersion,
		Items: []deletion.Item{{ImageName: "quay.io/a/b:1", ImageReference: "docker://other.example.com/a/b:1", Type: "generic"}}}); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("kind: DeleteImageList\napiVersion: mirror.openshift.io/v2alpha1\nitems:\n- imageName: x\n  imageReference: quay.io/a/b:1\n  typo: 1\n"), 0o644)
	noRef := filepath.Join(dir, "noref.yaml")
	os.WriteFile(noRef, []byte("kind: DeleteImageList\napiVersion: mirror.openshift.io/v2alpha1\nitems:\n- imageName: x\n  imageReference: quay.io/a/b:1\n  type: generic\n"), 0o644)
	served := t.TempDir()
	os.MkdirAll(filepath.Join(served, "docker", "registry", "v2"), 0o755)
	unlock, err := registry.WriteServeLock(served)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	okList := filepath.Join(dir, "ok.yaml")
	deletion.Write(okList, deletion.List{Kind: deletion.Kind, APIVersion: deletion.APIVersion,
		Items: []deletion.Item{{ImageName: "quay.io/a/b:1", ImageReference: "docker://mirror.example.com/a/b:1", Type: "generic"}}})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--delete-yaml-file", okList, "--registry-root", served, "docker://mirror.example.com"}, "is being served by process"},
		{[]string{"docker://mirror.example.com"}, "give --generate -c FILE --workspace file://DIR"},
		{[]string{"--generate", "docker://mirror.example.com"}, "--generate needs -c"},
		{[]string{"--delete-yaml-file", good, "file://x"}, "want docker://REGISTRY"},
		{[]string{"--delete-yaml-file", good, "docker://mirror.example.com"}, "items[0] docker://other.example.com/a/b:1 is not under docker://mirror.example.com"},
		{[]string{"--delete-yaml-file", bad, "docker://mirror.example.com"}, `bad.yaml: unknown field "items[0].typo"`},
		{[]string{"--delete-yaml-file", noRef, "docker://mirror.example.com"}, `noref.yaml: items[0]: imageReference "quay.io/a/b:1": want docker://`},
		{[]string{"--delete-yaml-file", good, "--registry-root", dir, "docker://other.example.com"}, "is not a registry storage directory"},
	} {
		_, _, err := clitest.Run(t, append([]string{"delete"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("delete %q: error %v, want %q", tc.args, err, tc.want)
		}
	}
}

// TestGenerateHelm: --generate turns a DeleteImageSetConfiguration's
// delete.additionalImages and delete.helm, collected by the mirror's own
// collectors (orchestrate), into the delete list of what a mirror of the chart pushed:
// the chart artifact and each image its templates name, under the
// destination with oc-mirror's naming (digest-only images tagged
// sha256-<hex>), written to WORKSPACE/working-dir/delete/delete-images-ID.yaml.
func TestGenerateHelm(t *testing.T) {
	chart := filepath.Join("..", "..", "..", "internal", "helm", "testdata", "demo")
	repo := helmtest.ServeRepo(t, helmtest.Chart{Name: "demo", Version: "1.2.0", Archive: helmtest.Pack(t, chart, "demo")})
	dir := t.TempDir()
	cfg := filepath.Join(dir, "delete-imageset.yaml")
	os.WriteFile(cfg, []byte(`apiVersion: mirror.openshift.io/v2alpha1
kind: DeleteImageSetConfiguration
delete:
  additionalImages:
  - name: quay.io/extra/tool@sha256:2222222222222222222222222222222222222222222222222222222222222222
  helm:
    repositories:
    - name: example
      url: `+repo+`
      charts:
      - name: demo
        version: 1.2.0
`), 0o644)
	ws := filepath.Join(dir, "ws")
	stdout, stderr, err := clitest.Run(t, "delete", "-c", cfg, "--generate", "--workspace", "file://"+ws, "--delete-id", "x1", "docker://mirror.example.com:5000/pre")
	if err != nil {
		t.Fatalf("%v\n%s%s", err, stdout, stderr)
	}
	l, err := deletion.Load(filepath.Join(ws, "working-dir", "delete", "delete-images-x1.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range l.Items {
		got = append(got, it.Type+" "+it.ImageReference)
	}
	const m = "docker://mirror.example.com:5000/pre/"
	want := []string{
		"generic " + m + "extra/tool:sha256-2222222222222222222222222222222222222222222222222222222222222222",
		"helmChart " + m + "helm-charts/demo:1.2.0",
		"generic " + m + "library/busybox:1.36",
		"generic " + m + "library/nginx:latest",
		"generic " + m + "demo/app:2.5.1",
		"generic " + m + "db/postgres:sha256-1111111111111111111111111111111111111111111111111111111111111111",
		"generic " + m + "sidecar/proxy:0.9",
		"generic " + m + "tools/backup:v3",
		"generic " + m + "tools/migrate:v3",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("delete list:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(stdout, "9 images to delete") {
		t.Errorf("stdout: %s", stdout)
	}
}
