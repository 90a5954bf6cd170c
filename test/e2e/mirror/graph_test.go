package mirror_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/airlock-mirror/airlock/internal/testutil/clitest"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

// TestGraphDataImage: mirror.platform.graph: true builds the graph-data
// image from the REAL cincinnati graph-data tarball (served locally) on a
// base image, carries it through disk to the mirror as
// openshift/graph-image:latest with every file under
// /var/lib/cincinnati-graph-data, and writes updateService.yaml pointing at
// it and at the mirrored release images; the graph image stays out of the
// mirror sets. A tarball with an entry escaping it is refused by name.
func TestGraphDataImage(t *testing.T) {
	f := newFixture(t)
	tarball, err := os.ReadFile(shared("release", "cincinnati", "cincinnati-graph-data.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	var served = tarball
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(served) }))
	t.Cleanup(srv.Close)
	base, err := synth.Image(5150, synth.WithLayerSize(256))
	if err != nil {
		t.Fatal(err)
	}
	baseRef := f.src.Host + "/ubi9/ubi:latest"
	if _, err := synth.Push(base, baseRef, remote.WithTransport(f.src.Transport)); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	cfg := filepath.Join(work, "imageset.yaml")
	if err := os.WriteFile(cfg, []byte(`apiVersion: mirror.openshift.io/v2alpha1
kind: ImageSetConfiguration
mirror:
  platform:
    graph: true
    channels:
    - name: stable-4.13
      minVersion: 4.12.1
      maxVersion: 4.12.1
`), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(work, "m2d")
	flags := []string{"--graph-url", f.graphURL, "--graph-data-url", srv.URL + "/graph-data", "--graph-base-image", baseRef}
	run(t, append([]string{"mirror", "-c", cfg, "file://" + dir}, flags...)...)
	dst := regtest.Start(t)
	run(t, "mirror", "-c", cfg, "--from", "file://"+dir, "docker://"+dst.Host+"/mirror")

	graphRef := dst.Host + "/mirror/openshift/graph-image:latest"
	r, err := name.ParseReference(graphRef, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r, remote.WithTransport(dst.Transport))
	if err != nil {
		t.Fatalf("graph image at the mirror: %v", err)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) < 2 {
		t.Fatalf("graph image layers: %d, %v", len(layers), err)
	}
	got := layerFiles(t, layers[len(layers)-1])
	want := tarFiles(t, tarball)
	if len(want) < 100 || len(got) != len(want) {
		t.Fatalf("graph image holds %d files, the tarball %d", len(got), len(want))
	}
	for n, body := range want {
		if got["var/lib/cincinnati-graph-data/"+n] != body {
			t.Errorf("%s differs in the graph image", n)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil || !strings.Contains(strings.Join(cf.Config.Cmd, " "), "cp -rp /var/lib/cincinnati-graph-data/* /var/lib/cincinnati/graph-data") {
		t.Errorf("graph image command: %v (%v)", cf.Config.Cmd, err)
	}

	cr := filepath.Join(dir, "working-dir", "cluster-resources")
	// The UpdateService as the disk-to-mirror run wrote it, golden (the
	// shape is oc-mirror's: internal/orchestrate's updateService golden).
	us := mustRead(t, filepath.Join(cr, "updateService.yaml"))
	golden(t, "cluster-resources/updateService.yaml", strings.ReplaceAll(us, dst.Host, "MIRROR"))
	if !strings.Contains(us, "graphDataImage: "+graphRef) {
		t.Errorf("updateService.yaml does not name the mirrored graph image %s:\n%s", graphRef, us)
	}
	if idms := mustRead(t, filepath.Join(cr, "idms-oc-mirror.yaml")); strings.Contains(idms, "graph-image") {
		t.Errorf("the graph image is in the IDMS:\n%s", idms)
	}

	// A tarball whose entry leaves it: refused, naming the entry.
	var evil bytes.Buffer
	zw := gzip.NewWriter(&evil)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: "../../etc/cron.d/x", Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
	tw.Write([]byte("x"))
	tw.Close()
	zw.Close()
	served = evil.Bytes()
	_, errOut, err := clitest.Run(t, append([]string{"mirror", "-c", cfg, "file://" + filepath.Join(work, "evil")}, flags...)...)
	if err == nil || !strings.Contains(errOut+err.Error(), "../../etc/cron.d/x") {
		t.Errorf("an escaping graph-data entry: %v\n%s", err, errOut)
	}
}

func tarFiles(t *testing.T, tgz []byte) map[string]string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		t.Fatal(err)
	}
	return readTar(t, zr, func(n string) string { return strings.TrimPrefix(n, "./") })
}

func layerFiles(t *testing.T, l interface {
	Uncompressed() (io.ReadCloser, error)
}) map[string]string {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	return readTar(t, rc, func(n string) string { return n })
}

func readTar(t *testing.T, r io.Reader, key func(string) string) map[string]string {
	t.Helper()
	out := map[string]string{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[key(h.Name)] = string(b)
	}
}
