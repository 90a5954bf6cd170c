package catalog

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/operator-framework/operator-registry/alpha/declcfg"

	"github.com/airlock-mirror/airlock/internal/imageset"
)

// summary is the part of a catalog two forms of it must agree on.
type summary struct {
	Packages map[string]string   // name -> default channel
	Channels map[string][]string // pkg/channel -> "entry<replaces" sorted
	Bundles  map[string]string   // pkg/bundle -> image
	Images   []string
	Related  map[string][]string // bundle -> related images
}

func summarize(t *testing.T, c *Catalog) summary {
	t.Helper()
	s := summary{Packages: map[string]string{}, Channels: map[string][]string{}, Bundles: map[string]string{}, Related: map[string][]string{}}
	for _, p := range c.Config.Packages {
		s.Packages[p.Name] = p.DefaultChannel
	}
	for _, ch := range c.Config.Channels {
		var es []string
		for _, e := range ch.Entries {
			skips := append([]string(nil), e.Skips...)
			sort.Strings(skips)
			es = append(es, fmt.Sprintf("%s<%s skips%v", e.Name, e.Replaces, skips))
		}
		sort.Strings(es)
		s.Channels[ch.Package+"/"+ch.Name] = es
	}
	for _, b := range c.Config.Bundles {
		s.Bundles[b.Package+"/"+b.Name] = b.Image
		var ris []string
		for _, ri := range b.RelatedImages {
			ris = append(ris, ri.Image)
		}
		sort.Strings(ris)
		s.Related[b.Name] = ris
	}
	imgs, ws := RelatedImages(c)
	if len(ws) != 0 {
		t.Errorf("%s: unexpected warnings %v", c.Source, ws)
	}
	for _, i := range imgs {
		s.Images = append(s.Images, i.Ref)
	}
	return s
}

func TestSQLiteEqualsFBCTwin(t *testing.T) {
	ctx := context.Background()
	db, err := LoadFile(ctx, testdata(t, "oc-test-declcfg-and-sqlite", "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	if db.Format != FormatSQLite {
		t.Errorf("format = %s, want sqlite", db.Format)
	}
	fbc, err := LoadFile(ctx, testdata(t, "oc-test-declcfg-and-sqlite", "index.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	a, b := summarize(t, db), summarize(t, fbc)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("sqlite and FBC twins differ:\nsqlite: %+v\nfbc:    %+v", a, b)
	}
	if len(a.Packages) != 2 || len(a.Bundles) != 5 || len(a.Channels) != 4 || len(a.Images) != 10 {
		t.Errorf("got %d packages, %d channels, %d bundles, %d images; want 2, 4, 5, 10", len(a.Packages), len(a.Channels), len(a.Bundles), len(a.Images))
	}
	// Both forms must answer queries the same way.
	for _, c := range []*Catalog{db, fbc} {
		pkgs, err := c.Packages(Selector{})
		if err != nil {
			t.Fatal(err)
		}
		got := fmt.Sprint(pkgs)
		want := "[{etcd alpha [alpha stable] etcdoperator.v0.9.2 0.9.2 2} {prometheus preview [preview stable] prometheusoperator.0.22.2 0.22.2 3}]"
		if got != want {
			t.Errorf("%s packages:\n got %s\nwant %s", c.Source, got, want)
		}
	}
}

func fileSum(t *testing.T, p string) [32]byte {
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(data)
}

func TestLoadOldSchemaSQLiteLeavesFileUntouched(t *testing.T) {
	// Copy to a writable place so that a write would be possible, and
	// noticed: the shared file is read-only anyway.
	src := testdata(t, "sqlite", "operator-registry-indexer-bundles.db")
	p := filepath.Join(t.TempDir(), "bundles.db")
	if err := copyFile(src, p); err != nil {
		t.Fatal(err)
	}
	before := fileSum(t, p)
	c, err := Load(context.Background(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fileSum(t, p) != before {
		t.Error("loading modified the user's database file")
	}
	db, err := sql.Open("sqlite", "file:"+p+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var version int
	if err := db.QueryRow("SELECT version FROM schema_migrations").Scan(&version); err != nil {
		t.Fatal(err)
	}
	if version != 5 {
		t.Errorf("schema version of the user's file = %d, want it left at 5", version)
	}
	if n := len(c.Config.Bundles); n != 10 {
		t.Errorf("bundles = %d, want 10", n)
	}
	rel := 0
	for _, b := range c.Config.Bundles {
		rel += len(b.RelatedImages)
	}
	if rel != 12 {
		t.Errorf("related images = %d, want the 12 related_image rows", rel)
	}
	if c.Format != FormatSQLite || c.DatabasePath != p {
		t.Errorf("format %s path %s", c.Format, c.DatabasePath)
	}
}

func TestLoadCommunityQueries(t *testing.T) {
	c := loadTestDir(t, "community-operators-prod-v4.18")
	pkgs, err := c.Packages(Selector{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) != 35 {
		t.Fatalf("packages = %d", len(pkgs))
	}
	nb, nc := 0, 0
	for _, p := range pkgs {
		nb += p.Bundles
		nc += len(p.Channels)
		if p.HeadVersion == "" || p.DefaultChannel == "" {
			t.Errorf("package %s: no default channel head: %+v", p.Name, p)
		}
	}
	if nb != 727 || nc != 78 {
		t.Errorf("sum of bundles %d channels %d, want 727 and 78", nb, nc)
	}
	chs, _ := c.Channels(Selector{})
	bs, _ := c.Bundles(Selector{})
	if len(chs) != 78 || len(bs) != 727 {
		t.Errorf("channels %d bundles %d", len(chs), len(bs))
	}
	digest, tag := 0, 0
	imgs, ws := RelatedImages(c)
	for _, i := range imgs {
		switch i.Pinned {
		case PinnedDigest:
			digest++
		case PinnedTag:
			tag++
		}
	}
	if len(imgs) != 2184 || digest != 1185 || tag != 999 || len(ws) != 0 {
		t.Errorf("images %d (digest %d, tag %d), warnings %v; want 2184 (1185, 999), none", len(imgs), digest, tag, ws)
	}

	// Narrowed queries.
	sel := Selector{Packages: []string{"project-quay"}, Channels: []string{"stable-3.10"}, VersionRange: ">=3.10.0 <3.10.5"}
	got, err := c.Bundles(sel)
	if err != nil {
		t.Fatal(err)
	}
	var versions []string
	for _, b := range got {
		if b.Package != "project-quay" {
			t.Errorf("bundle outside selection: %+v", b)
		}
		versions = append(versions, b.Version)
	}
	// Semver order and bounds: 3.10.10 is not in [3.10.0, 3.10.5).
	if strings.Join(versions, ",") != "3.10.0,3.10.1,3.10.2,3.10.3,3.10.4" {
		t.Errorf("versions %v, want 3.10.0..3.10.4", versions)
	}
	imgsel, _, err := c.Images(Selector{Packages: []string{"project-quay"}, Bundle: "quay-operator.v3.10.*"})
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range imgsel {
		for _, b := range i.Bundles {
			if !strings.HasPrefix(b, "quay-operator.v3.10.") {
				t.Errorf("image %s serves unselected bundle %s", i.Ref, b)
			}
		}
	}
	if len(imgsel) == 0 {
		t.Error("no images for quay-operator.v3.10.*")
	}
	for _, bad := range []Selector{{Packages: []string{"nope"}}, {Channels: []string{"nope"}}, {VersionRange: "one"}, {Bundle: "["}} {
		if _, err := c.Bundles(bad); err == nil {
			t.Errorf("selector %+v accepted", bad)
		}
	}
}

func TestLoadErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "pkg"), 0o755)
	os.WriteFile(filepath.Join(dir, "pkg", "good.yaml"), []byte("schema: olm.package\nname: a\ndefaultChannel: s\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "pkg", "bad.json"), []byte(`{"schema":"olm.channel","name":"s","package":"a","entries":[{"name":1}]}`), 0o644)
	_, err := LoadDir(context.Background(), dir)
	if err == nil || !strings.Contains(err.Error(), filepath.Join("pkg", "bad.json")) {
		t.Errorf("error does not name the broken file: %v", err)
	}
	// .indexignore hides it.
	os.WriteFile(filepath.Join(dir, ".indexignore"), []byte("bad.json\n"), 0o644)
	c, err := LoadDir(context.Background(), dir)
	if err != nil {
		t.Fatalf(".indexignore not honoured: %v", err)
	}
	if len(c.Config.Packages) != 1 {
		t.Errorf("packages %d", len(c.Config.Packages))
	}
	if _, err := LoadDir(context.Background(), t.TempDir()); err == nil || !strings.Contains(err.Error(), "no olm.package") {
		t.Errorf("empty dir: %v", err)
	}
	if _, err := Load(context.Background(), filepath.Join(dir, "missing"), nil); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing path: %v", err)
	}
	if _, err := Load(context.Background(), "docker://quay.io/x/y:1", nil); err == nil || !strings.Contains(err.Error(), "opener") {
		t.Errorf("image ref without opener: %v", err)
	}
}

const badImagesCatalog = `{"schema":"olm.package","name":"a","defaultChannel":"s"}
{"schema":"olm.channel","name":"s","package":"a","entries":[{"name":"a.v1.0.0"}]}
{"schema":"olm.bundle","name":"a.v1.0.0","package":"a","image":"quay.io/a/bundle:v1",
 "properties":[{"type":"olm.package","value":{"packageName":"a","version":"1.0.0"}}],
 "relatedImages":[{"name":"operator","image":"quay.io/a/op:v1"},{"name":"empty","image":""},{"name":"bad","image":"Quay.io/UPPER CASE:v1"}]}
{"schema":"my.custom","name":"x","package":"a","anything":{"k":[1,2]}}
`

func TestInvalidRelatedImagesAreWarnings(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "catalog.json"), []byte(badImagesCatalog), 0o644)
	c, err := LoadDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Config.Others) != 1 || c.Config.Others[0].Schema != "my.custom" {
		t.Errorf("unknown schema not kept: %+v", c.Config.Others)
	}
	if len(c.Warnings) != 2 {
		t.Fatalf("warnings %v, want 2", c.Warnings)
	}
	for i, field := range []string{"relatedImages[1] (empty).image", "relatedImages[2] (bad).image"} {
		w := c.Warnings[i]
		if w.Bundle != "a.v1.0.0" || w.Field != field {
			t.Errorf("warning %d = %+v, want bundle a.v1.0.0 field %s", i, w, field)
		}
	}
	imgs, ws := RelatedImages(c)
	if len(imgs) != 2 || len(ws) != 2 {
		t.Errorf("images %v warnings %v", imgs, ws)
	}
	// Filtering drops them so the result is a catalog opm can serve.
	out, rep, err := Filter(context.Background(), c, imagesetFull())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(out.Config.Bundles[0].RelatedImages); n != 1 {
		t.Errorf("filtered bundle keeps %d related images, want 1", n)
	}
	if len(rep.Warnings) != 2 || len(out.Config.Others) != 1 {
		t.Errorf("report warnings %v, others %v", rep.Warnings, out.Config.Others)
	}
	if _, err := declcfg.ConvertToModel(*out.Config); err != nil {
		t.Errorf("filtered catalog invalid: %v", err)
	}
}

func TestPruneSQLite(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		db   []string
		keep string
		want string
	}{
		{[]string{"oc-test-declcfg-and-sqlite", "test.db"}, "etcd", "etcd"},
		{[]string{"sqlite", "operator-registry-indexer-bundles.db"}, "strimzi-kafka-operator", "strimzi-kafka-operator"},
	} {
		src := testdata(t, tc.db...)
		before := fileSum(t, src)
		c, err := LoadSQLite(ctx, src)
		if err != nil {
			t.Fatal(err)
		}
		f, _, err := Filter(ctx, c, imageset.Operator{Packages: []imageset.IncludePackage{{Name: tc.keep}}})
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(t.TempDir(), "index.db")
		res, err := PruneSQLite(ctx, src, dst, f)
		if err != nil {
			t.Fatal(err)
		}
		if fileSum(t, src) != before {
			t.Error("source database modified")
		}
		pruned, err := LoadSQLite(ctx, dst)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(pruned.PackageNames(), ","); got != tc.want {
			t.Errorf("%s: pruned packages %s, want %s (result %+v)", tc.db[1], got, tc.want, res)
		}
		t.Logf("%s: %+v", tc.db[1], res)
		if len(res.RemovedPackages) == 0 {
			t.Errorf("nothing removed: %+v", res)
		}
		// Heads-only filtering keeps one bundle per channel, and so does the
		// database.
		if !res.Exact || len(res.ExtraBundles) != 0 || len(pruned.Config.Bundles) != len(f.Config.Bundles) {
			t.Errorf("pruned %d bundles, filtered %d: %+v", len(pruned.Config.Bundles), len(f.Config.Bundles), res)
		}
		entries, _ := os.ReadDir(filepath.Dir(dst))
		if len(entries) != 1 {
			t.Errorf("temporary files left: %v", entries)
		}
	}
	other := loadTestDir(t, "operator-registry-index-declcfgs", "latest")
	if _, err := PruneSQLite(ctx, testdata(t, "oc-test-declcfg-and-sqlite", "test.db"), filepath.Join(t.TempDir(), "x.db"), other); err == nil ||
		!strings.Contains(err.Error(), "not in the database") {
		t.Errorf("pruning to packages the database lacks: %v", err)
	}
}
