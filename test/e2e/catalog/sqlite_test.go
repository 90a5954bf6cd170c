package catalog_test

import (
	"archive/tar"
	"bytes"
	"context"
	"database/sql"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	_ "modernc.org/sqlite"

	"github.com/airlock-mirror/airlock/internal/catalog"
	"github.com/airlock-mirror/airlock/internal/catalogmirror"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/testutil/clitest"
	"github.com/airlock-mirror/airlock/internal/testutil/oldopm"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

// TestSQLiteCatalogStaysSQLite mirrors one channel of one package of a REAL
// legacy sqlite index (oc's test.db: etcd and prometheus) whose image
// references were rewritten to synthetic images: the catalog image stays
// sqlite with the same command, its database is pruned to the selection
// (etcd's alpha head only: the other channel, the older bundle and the other
// package are gone), every image the pruned catalog references arrives, and
// no other image does.
func TestSQLiteCatalogStaysSQLite(t *testing.T) {
	src := regtest.Start(t)
	dst := regtest.Start(t)
	orig, err := os.ReadFile(filepath.Join(community, "..", "oc-test-declcfg-and-sqlite", "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(t.TempDir(), "index.db")
	if err := os.WriteFile(dbPath, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	rewriteDatabaseImages(t, dbPath, src)
	data, err := os.ReadFile(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	base, _ := synth.Index(21, []string{"linux/amd64", "linux/ppc64le"})
	im, _ := base.IndexManifest()
	var adds []mutate.IndexAddendum
	for _, m := range im.Manifests {
		img, _ := base.Image(m.Digest)
		img, err = mutate.Append(img, mutate.Addendum{Layer: fileLayer(t, "database/index.db", data)})
		if err != nil {
			t.Fatal(err)
		}
		cf, _ := img.ConfigFile()
		cf = cf.DeepCopy()
		cf.Config.Labels = map[string]string{catalog.LabelDatabase: "/database/index.db"}
		cf.Config.Entrypoint = []string{"/bin/opm"}
		cf.Config.Cmd = []string{"registry", "serve", "--database", "/database/index.db"}
		img, _ = mutate.ConfigFile(img, cf)
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: m.Platform}})
	}
	legacy := mutate.AppendManifests(mutate.IndexMediaType(emptyIndex(), mustMT(base)), adds...)
	index := src.Host + "/redhat/legacy-operator-index:v4.6"
	if _, err := synth.Push(legacy, index, remote.WithTransport(src.Transport)); err != nil {
		t.Fatal(err)
	}

	out, errOut, err := clitest.Run(t, "catalog", "mirror", index, dst.Host+"/olm", "--package", "etcd:alpha", "--to-manifests", filepath.Join(t.TempDir(), "m"))
	if err != nil {
		t.Fatalf("catalog mirror: %v\n%s%s", err, out, errOut)
	}
	if !strings.Contains(out, "sqlite catalog "+index+" pruned to etcd and pushed") || strings.Contains(errOut, "whole packages") {
		t.Errorf("no exact pruning reported:\n%s%s", out, errOut)
	}
	mirrored := dst.Host + "/olm/redhat-legacy-operator-index:v4.6"
	rIdx, err := remote.Index(mustName(t, mirrored), remote.WithTransport(dst.Transport))
	if err != nil {
		t.Fatal(err)
	}
	rim, _ := rIdx.IndexManifest()
	if len(rim.Manifests) != 2 {
		t.Errorf("mirrored catalog has %d platforms, want 2", len(rim.Manifests))
	}
	var pruned *catalog.Catalog
	for _, m := range rim.Manifests {
		img, _ := rIdx.Image(m.Digest)
		cf, _ := img.ConfigFile()
		if strings.Join(cf.Config.Cmd, " ") != "registry serve --database /database/index.db" || cf.Config.Labels[catalog.LabelConfigs] != "" {
			t.Errorf("sqlite catalog changed format: labels %v cmd %v", cf.Config.Labels, cf.Config.Cmd)
		}
		c, err := catalog.FromImage(context.Background(), img)
		if err != nil {
			t.Fatal(err)
		}
		if c.Format != catalog.FormatSQLite || strings.Join(c.PackageNames(), ",") != "etcd" {
			t.Errorf("mirrored catalog: format %s packages %v", c.Format, c.PackageNames())
		}
		var chans, bundles []string
		for _, ch := range c.Config.Channels {
			chans = append(chans, ch.Name)
		}
		for _, b := range c.Config.Bundles {
			bundles = append(bundles, b.Name)
		}
		if strings.Join(chans, ",") != "alpha" || strings.Join(bundles, ",") != "etcdoperator.v0.9.2" {
			t.Errorf("mirrored catalog: channels %v bundles %v, want alpha with etcdoperator.v0.9.2 only", chans, bundles)
		}
		pruned = c
	}
	// The pruned database, as the image's own (old) opm serves it to OLM.
	img0, _ := rIdx.Image(rim.Manifests[0].Digest)
	servedDB := filepath.Join(t.TempDir(), "served.db")
	if err := catalog.ExtractDatabase(context.Background(), img0, servedDB); err != nil {
		t.Fatal(err)
	}
	srv := oldopm.Serve(t, servedDB)
	if pkgs, err := srv.Packages(); err != nil || strings.Join(pkgs, ",") != "etcd" {
		t.Errorf("old opm serves packages %v (%v), want etcd\n%s", pkgs, err, srv.Log())
	}
	if def, chans, err := srv.Package("etcd"); err != nil || def != "alpha" || len(chans) != 1 || chans["alpha"] != "etcdoperator.v0.9.2" {
		t.Errorf("old opm serves etcd: default %s channels %v (%v)\n%s", def, chans, err, srv.Log())
	}
	if rows, err := srv.Bundles(); err != nil || len(rows) != 1 || rows[0].CSVName != "etcdoperator.v0.9.2" || !strings.HasPrefix(rows[0].BundlePath, src.Host+"/") {
		t.Errorf("old opm lists bundles %+v (%v), want etcdoperator.v0.9.2 from %s\n%s", rows, err, src.Host, srv.Log())
	}
	if b, err := srv.BundleThatReplaces("etcdoperator.v0.9.0", "etcd", "alpha"); err != nil || b.CSVName != "etcdoperator.v0.9.2" {
		t.Errorf("old opm: upgrade from the dropped etcdoperator.v0.9.0: %q %v\n%s", b.CSVName, err, srv.Log())
	}

	// The same selection written as a database file, from the image.
	outDB := filepath.Join(t.TempDir(), "pruned.db")
	if o, e, err := clitest.Run(t, "catalog", "filter", index, "--package", "etcd:alpha", "--output-db", outDB); err != nil {
		t.Fatalf("catalog filter --output-db: %v\n%s%s", err, o, e)
	}
	if c, err := catalog.LoadSQLite(context.Background(), outDB); err != nil || len(c.Config.Bundles) != 1 || c.Config.Bundles[0].Name != "etcdoperator.v0.9.2" {
		t.Errorf("--output-db from the image: %v %v", c, err)
	}

	full, err := catalog.LoadSQLite(context.Background(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	dest := mustDest(t, dst.Host+"/olm")
	keptImgs, _ := catalog.RelatedImages(pruned)
	kept := map[string]bool{}
	for _, img := range keptImgs {
		s := img.Parsed
		if !s.HasTagOrDigest() {
			s.Tag = "latest"
		}
		kept[s.Name()] = true
		d := catalogmirror.Mount(s, dest, 2)
		if got := dst.DigestOf(t, d.Name()); got == "" || (s.Digest != "" && got != s.Digest) {
			t.Errorf("%s: at %s digest %q", s.Name(), d.Name(), got)
		}
	}
	allImgs, _ := catalog.RelatedImages(full)
	others := 0
	for _, img := range allImgs {
		s := img.Parsed
		if !s.HasTagOrDigest() {
			s.Tag = "latest"
		}
		if kept[s.Name()] {
			continue
		}
		others++
		if d := catalogmirror.Mount(s, dest, 2); dst.DigestOf(t, d.Name()) != "" {
			t.Errorf("image %s of the unselected package was mirrored", s.Name())
		}
	}
	if others == 0 || len(kept) == 0 {
		t.Errorf("kept %d, others %d: the test proves nothing", len(kept), others)
	}
}

// rewriteDatabaseImages pushes a synthetic image for every image the
// database references (bundle paths and related images) and rewrites the
// references, keeping digest references by digest.
func rewriteDatabaseImages(t *testing.T, dbPath string, src *regtest.Registry) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT image FROM related_image UNION SELECT bundlepath FROM operatorbundle WHERE bundlepath != ''")
	if err != nil {
		t.Fatal(err)
	}
	var images []string
	for rows.Next() {
		var s string
		rows.Scan(&s)
		images = append(images, s)
	}
	rows.Close()
	// Tables that point at a bundle by its path (api_provider, properties,
	// ...) must follow, or the foreign keys break.
	var pathRefs []string
	tables, err := db.Query("SELECT name FROM sqlite_master WHERE type = 'table'")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for tables.Next() {
		var n string
		tables.Scan(&n)
		names = append(names, n)
	}
	tables.Close()
	for _, n := range names {
		cols, err := db.Query("SELECT name FROM pragma_table_info(?)", n)
		if err != nil {
			t.Fatal(err)
		}
		for cols.Next() {
			var c string
			cols.Scan(&c)
			if c == "operatorbundle_path" {
				pathRefs = append(pathRefs, "UPDATE "+n+" SET operatorbundle_path = ? WHERE operatorbundle_path = ?")
			}
		}
		cols.Close()
	}
	for i, s := range images {
		r, err := ref.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		img, _ := synth.Image(int64(500+i), synth.WithLayers(1), synth.WithLayerSize(256))
		d, _ := img.Digest()
		repo := src.Host + "/" + r.Path
		var newRef, pushAt string
		if r.Digest != "" {
			newRef, pushAt = repo+"@"+d.String(), repo+"@"+d.String()
		} else {
			tag := r.Tag
			if tag == "" {
				tag = "latest"
			}
			newRef, pushAt = repo+":"+tag, repo+":"+tag
		}
		if _, err := synth.Push(img, pushAt, remote.WithTransport(src.Transport)); err != nil {
			t.Fatal(err)
		}
		for _, q := range append([]string{"UPDATE related_image SET image = ? WHERE image = ?", "UPDATE operatorbundle SET bundlepath = ? WHERE bundlepath = ?"}, pathRefs...) {
			if _, err := db.Exec(q, newRef, s); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func fileLayer(t *testing.T, name string, data []byte) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg})
	tw.Write(data)
	tw.Close()
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}
