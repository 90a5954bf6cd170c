package catalog

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

// tarLayer builds a layer from name -> content; a nil content is a directory.
func tarLayer(t testing.TB, files map[string][]byte) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		data := files[n]
		hdr := &tar.Header{Name: n, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}
		if data == nil {
			hdr = &tar.Header{Name: n, Mode: 0o755, Typeflag: tar.TypeDir}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	tw.Close()
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// dirLayer packs a local directory under prefix.
func dirLayer(t testing.TB, dir, prefix string) v1.Layer {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		data, err := os.ReadFile(p)
		files[filepath.ToSlash(filepath.Join(prefix, rel))] = data
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return tarLayer(t, files)
}

// untouchable is a layer whose content must never be read.
type untouchable struct{ v1.Layer }

var errTouched = errors.New("base layer read although the catalog was complete above it")

func (u untouchable) Uncompressed() (io.ReadCloser, error) { return nil, errTouched }
func (u untouchable) Compressed() (io.ReadCloser, error)   { return nil, errTouched }

func catalogImage(t testing.TB, labels map[string]string, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Config.Labels = labels
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestFromImageFBCWithWhiteoutSkipsBase(t *testing.T) {
	stale := []byte(`{"schema":"olm.package","name":"stale","defaultChannel":"x"}`)
	base := untouchable{synth.Layer(1, 1024)}
	old := tarLayer(t, map[string][]byte{"configs/": nil, "configs/stale/catalog.json": stale, "bin/opm": []byte("binary")})
	whiteout := tarLayer(t, map[string][]byte{".wh.configs": {}})
	fresh := dirLayer(t, testdata(t, "community-operators-prod-v4.18"), "configs")
	// Layers are read top-down: fresh, whiteout (which completes /configs),
	// then nothing below — neither the stale catalog nor the base.
	img := catalogImage(t, map[string]string{LabelConfigs: "/configs"}, base, untouchable{old}, whiteout, fresh)
	c, err := FromImage(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Config.Packages) != 35 || len(c.Config.Bundles) != 727 || c.Package("stale") != nil {
		t.Errorf("packages %d bundles %d", len(c.Config.Packages), len(c.Config.Bundles))
	}
	if c.ConfigsDir != "/configs" || c.Format != FormatFBC || c.Labels[LabelConfigs] != "/configs" {
		t.Errorf("catalog metadata: %+v %s %v", c.ConfigsDir, c.Format, c.Labels)
	}
}

func TestFromImageMergesLayersAndHonoursFileWhiteouts(t *testing.T) {
	a := []byte(`{"schema":"olm.package","name":"a","defaultChannel":"s"}`)
	b := []byte(`{"schema":"olm.package","name":"b","defaultChannel":"s"}`)
	b2 := []byte(`{"schema":"olm.package","name":"b","defaultChannel":"t"}`)
	lower := tarLayer(t, map[string][]byte{"./configs/a/c.json": a, "./configs/b/c.json": b, "./configs/gone/c.json": a})
	upper := tarLayer(t, map[string][]byte{"configs/b/c.json": b2, "configs/gone/.wh.c.json": {}, "etc/other": []byte("x")})
	img := catalogImage(t, map[string]string{LabelConfigs: "/configs/"}, lower, upper)
	c, err := FromImage(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range c.Config.Packages {
		got = append(got, p.Name+":"+p.DefaultChannel)
	}
	if strings.Join(got, ",") != "a:s,b:t" {
		t.Errorf("packages %v, want a:s,b:t (upper b wins, whited-out file gone)", got)
	}
}

func TestFromImageSQLite(t *testing.T) {
	db, err := os.ReadFile(testdata(t, "oc-test-declcfg-and-sqlite", "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	img := catalogImage(t, map[string]string{LabelDatabase: "/database/index.db"},
		untouchable{synth.Layer(2, 512)}, tarLayer(t, map[string][]byte{"database/index.db": db}))
	c, err := FromImage(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	if c.Format != FormatSQLite || c.DatabasePath != "/database/index.db" || len(c.Config.Bundles) != 5 {
		t.Errorf("format %s path %s bundles %d", c.Format, c.DatabasePath, len(c.Config.Bundles))
	}
}

func TestFromImageErrors(t *testing.T) {
	if _, err := FromImage(context.Background(), catalogImage(t, nil, synth.Layer(3, 64))); err == nil || !strings.Contains(err.Error(), "not an operator catalog image") {
		t.Errorf("image without labels: %v", err)
	}
	img := catalogImage(t, map[string]string{LabelConfigs: "/configs"}, tarLayer(t, map[string][]byte{"other/x": []byte("x")}))
	if _, err := FromImage(context.Background(), img); err == nil || !strings.Contains(err.Error(), "no files under /configs") {
		t.Errorf("missing configs dir: %v", err)
	}
}

// TestLoadFromRegistry pushes a catalog image to the embedded registry and
// loads it by reference through an ImageOpener, as the CLI does.
func TestLoadFromRegistry(t *testing.T) {
	reg := regtest.Start(t)
	img := catalogImage(t, map[string]string{LabelConfigs: "/configs"}, synth.Layer(4, 2048),
		dirLayer(t, testdata(t, "operator-registry-index-declcfgs", "latest"), "configs"))
	r, err := name.ParseReference(reg.Host + "/olm/index:v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, remote.WithTransport(reg.Transport)); err != nil {
		t.Fatal(err)
	}
	opener := ImageOpenerFunc(func(ctx context.Context, s string) (v1.Image, error) {
		r, err := name.ParseReference(strings.TrimPrefix(s, "docker://"))
		if err != nil {
			return nil, err
		}
		return remote.Image(r, remote.WithContext(ctx), remote.WithTransport(reg.Transport))
	})
	c, err := Load(context.Background(), "docker://"+reg.Host+"/olm/index:v1", opener)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.PackageNames(), ","); got != "bar,baz,foo" {
		t.Errorf("packages %s", got)
	}
	if c.Source != "docker://"+reg.Host+"/olm/index:v1" {
		t.Errorf("source %s", c.Source)
	}
}

func TestExtractDatabaseThenPrune(t *testing.T) {
	src := testdata(t, "oc-test-declcfg-and-sqlite", "test.db")
	db, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	img := catalogImage(t, map[string]string{LabelDatabase: "/database/index.db"},
		tarLayer(t, map[string][]byte{"database/index.db": []byte("stale")}),
		tarLayer(t, map[string][]byte{"database/index.db": db}))
	dir := t.TempDir()
	out := filepath.Join(dir, "index.db")
	if err := ExtractDatabase(context.Background(), img, out); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(out)
	if !bytes.Equal(got, db) {
		t.Fatal("extracted database differs from the top layer's file")
	}
	c, err := LoadSQLite(context.Background(), out)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Config.Bundles) != 5 {
		t.Errorf("bundles %d", len(c.Config.Bundles))
	}
	if err := ExtractDatabase(context.Background(), catalogImage(t, map[string]string{LabelConfigs: "/configs"}), out); err == nil {
		t.Error("FBC image accepted")
	}
}
