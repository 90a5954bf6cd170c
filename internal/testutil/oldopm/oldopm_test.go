package oldopm_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/operator-framework/operator-registry/pkg/sqlite"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	_ "modernc.org/sqlite"

	"github.com/airlock-mirror/airlock/internal/testutil/oldopm"
)

// Real legacy index databases (see ../shared/testdata/SOURCES.md).
var (
	ocTestDB  = filepath.Join("..", "..", "..", "..", "shared", "testdata", "catalogs", "oc-test-declcfg-and-sqlite", "test.db")
	indexerDB = filepath.Join("..", "..", "..", "..", "shared", "testdata", "catalogs", "sqlite", "operator-registry-indexer-bundles.db")
)

// catalog is what a server should answer, written out by hand from the
// databases (sqlite3: package, channel, channel_entry, operatorbundle).
type catalog struct {
	defaults map[string]string            // package -> default channel
	heads    map[string]map[string]string // package -> channel -> head CSV
	// package/channel -> the CSVs ListBundles lists in it
	bundles map[string][]string
	// upgrade edges: "csv package channel" -> the CSV that replaces it
	edges map[string]string
}

var ocTest = catalog{
	defaults: map[string]string{"etcd": "alpha", "prometheus": "preview"},
	heads: map[string]map[string]string{
		"etcd":       {"alpha": "etcdoperator.v0.9.2", "stable": "etcdoperator.v0.9.2"},
		"prometheus": {"preview": "prometheusoperator.0.22.2", "stable": "prometheusoperator.0.15.0"},
	},
	// etcdoperator.v0.9.1 is only skipped (a channel entry, no bundle).
	bundles: map[string][]string{
		"etcd/alpha":         {"etcdoperator.v0.9.0", "etcdoperator.v0.9.2"},
		"etcd/stable":        {"etcdoperator.v0.9.0", "etcdoperator.v0.9.2"},
		"prometheus/preview": {"prometheusoperator.0.14.0", "prometheusoperator.0.15.0", "prometheusoperator.0.22.2"},
		"prometheus/stable":  {"prometheusoperator.0.14.0", "prometheusoperator.0.15.0"},
	},
	edges: map[string]string{
		"etcdoperator.v0.9.0 etcd alpha":               "etcdoperator.v0.9.2",
		"etcdoperator.v0.9.1 etcd stable":              "etcdoperator.v0.9.2", // the skips edge
		"prometheusoperator.0.14.0 prometheus preview": "prometheusoperator.0.15.0",
		"prometheusoperator.0.15.0 prometheus preview": "prometheusoperator.0.22.2",
		"prometheusoperator.0.14.0 prometheus stable":  "prometheusoperator.0.15.0",
		"etcdoperator.v0.9.0 etcd stable":              "etcdoperator.v0.9.2",
		"etcdoperator.v0.9.1 etcd alpha":               "etcdoperator.v0.9.2",
		"prometheusoperator.0.15.0 prometheus stable":  "", // the head: nothing replaces it
		"etcdoperator.v0.9.2 etcd alpha":               "",
		"prometheusoperator.0.22.2 prometheus preview": "",
		"prometheusoperator.0.14.0 prometheus no-such": "",
		"prometheusoperator.0.14.0 no-such-pkg stable": "",
		"prometheusoperator.0.22.2 prometheus stable":  "", // not in that channel
	},
}

var indexer = catalog{
	defaults: map[string]string{"etcd": "alpha", "prometheus": "preview", "strimzi-kafka-operator": "stable"},
	heads: map[string]map[string]string{
		"etcd":                   {"alpha": "etcdoperator.v0.9.2", "beta": "etcdoperator.v0.9.0", "stable": "etcdoperator.v0.9.2"},
		"prometheus":             {"preview": "prometheusoperator.0.22.2"},
		"strimzi-kafka-operator": {"alpha": "strimzi-cluster-operator.v0.12.2", "beta": "strimzi-cluster-operator.v0.12.1", "stable": "strimzi-cluster-operator.v0.11.1"},
	},
	bundles: map[string][]string{
		"etcd/alpha":                    {"etcdoperator.v0.6.1", "etcdoperator.v0.9.0", "etcdoperator.v0.9.2"},
		"etcd/beta":                     {"etcdoperator.v0.6.1", "etcdoperator.v0.9.0"},
		"etcd/stable":                   {"etcdoperator.v0.6.1", "etcdoperator.v0.9.0", "etcdoperator.v0.9.2"},
		"prometheus/preview":            {"prometheusoperator.0.14.0", "prometheusoperator.0.15.0", "prometheusoperator.0.22.2"},
		"strimzi-kafka-operator/alpha":  {"strimzi-cluster-operator.v0.11.0", "strimzi-cluster-operator.v0.11.1", "strimzi-cluster-operator.v0.12.1", "strimzi-cluster-operator.v0.12.2"},
		"strimzi-kafka-operator/beta":   {"strimzi-cluster-operator.v0.11.0", "strimzi-cluster-operator.v0.11.1", "strimzi-cluster-operator.v0.12.1"},
		"strimzi-kafka-operator/stable": {"strimzi-cluster-operator.v0.11.0", "strimzi-cluster-operator.v0.11.1"},
	},
	edges: map[string]string{
		"etcdoperator.v0.6.1 etcd beta":                                  "etcdoperator.v0.9.0",
		"etcdoperator.v0.6.1 etcd alpha":                                 "etcdoperator.v0.9.0",
		"etcdoperator.v0.9.0 etcd alpha":                                 "etcdoperator.v0.9.2",
		"etcdoperator.v0.9.0 etcd beta":                                  "",
		"strimzi-cluster-operator.v0.11.0 strimzi-kafka-operator alpha":  "strimzi-cluster-operator.v0.11.1",
		"strimzi-cluster-operator.v0.11.1 strimzi-kafka-operator alpha":  "strimzi-cluster-operator.v0.12.1",
		"strimzi-cluster-operator.v0.12.1 strimzi-kafka-operator alpha":  "strimzi-cluster-operator.v0.12.2",
		"strimzi-cluster-operator.v0.11.1 strimzi-kafka-operator stable": "",
		"prometheusoperator.0.14.0 prometheus preview":                   "prometheusoperator.0.15.0",
	},
}

// check asserts everything a catalog says against what the server answers.
func check(t *testing.T, srv *oldopm.Server, want catalog) {
	t.Helper()
	pkgs, err := srv.Packages()
	if err != nil {
		t.Fatalf("ListPackages: %v", err)
	}
	var wantPkgs []string
	for p := range want.defaults {
		wantPkgs = append(wantPkgs, p)
	}
	sort.Strings(wantPkgs)
	if !reflect.DeepEqual(pkgs, wantPkgs) {
		t.Errorf("packages = %v, want %v", pkgs, wantPkgs)
	}
	for _, p := range wantPkgs {
		def, heads, err := srv.Package(p)
		if err != nil {
			t.Errorf("GetPackage %s: %v", p, err)
			continue
		}
		if def != want.defaults[p] {
			t.Errorf("package %s: default channel %q, want %q", p, def, want.defaults[p])
		}
		if !reflect.DeepEqual(heads, want.heads[p]) {
			t.Errorf("package %s: channel heads %v, want %v", p, heads, want.heads[p])
		}
		for ch, head := range want.heads[p] {
			b, err := srv.BundleForChannel(p, ch)
			if err != nil {
				t.Errorf("GetBundleForChannel %s %s: %v", p, ch, err)
			} else if b.CSVName != head || b.PackageName != p || b.ChannelName != ch {
				t.Errorf("GetBundleForChannel %s %s = %s in %s/%s, want %s", p, ch, b.CSVName, b.PackageName, b.ChannelName, head)
			}
		}
	}
	rows, err := srv.Bundles()
	if err != nil {
		t.Fatalf("ListBundles: %v", err)
	}
	got := map[string][]string{}
	for _, r := range rows {
		k := r.PackageName + "/" + r.ChannelName
		got[k] = append(got[k], r.CSVName)
	}
	if !reflect.DeepEqual(got, want.bundles) {
		t.Errorf("ListBundles per channel:\n got %v\nwant %v", got, want.bundles)
	}
	for q, next := range want.edges {
		f := strings.Fields(q)
		b, err := srv.BundleThatReplaces(f[0], f[1], f[2])
		switch {
		case next == "" && err == nil:
			t.Errorf("GetBundleThatReplaces %s = %s, want none", q, b.CSVName)
		case next == "" && !oldopm.IsNotFound(err):
			t.Errorf("GetBundleThatReplaces %s: %v, want a not-found answer", q, err)
		case next != "" && err != nil:
			t.Errorf("GetBundleThatReplaces %s: %v, want %s", q, err, next)
		case next != "" && (b.CSVName != next || b.PackageName != f[1] || b.ChannelName != f[2]):
			t.Errorf("GetBundleThatReplaces %s = %s in %s/%s, want %s", q, b.CSVName, b.PackageName, b.ChannelName, next)
		}
	}
}

func fileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// openDB opens a database with the pure-Go driver, as internal/catalog does.
func openDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

func schemaVersion(t *testing.T, path string) int {
	t.Helper()
	var v int
	if err := openDB(t, path).QueryRow("SELECT version FROM schema_migrations").Scan(&v); err != nil {
		t.Fatalf("schema version of %s: %v", path, err)
	}
	return v
}

// servedCopy is the private copy opm serves: it copies the database it is
// given into its working directory ("db-*") and migrates that.
func servedCopy(t *testing.T, srv *oldopm.Server) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(srv.Dir, "db-*"))
	if err != nil || len(m) != 1 {
		t.Fatalf("opm's private copy of the database in %s: %v %v", srv.Dir, m, err)
	}
	return m[0]
}

func copyDB(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(t.TempDir(), "index.db")
	if err := os.WriteFile(cp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return cp
}

// TestServeOCTestDB: oc's test index (schema 7) as the old opm serves it.
// opm migrates its own private copy to its latest schema (010) and leaves
// the file it was given alone.
func TestServeOCTestDB(t *testing.T) {
	before := fileHash(t, ocTestDB)
	srv := oldopm.Serve(t, ocTestDB)
	check(t, srv, ocTest)

	rows, err := srv.Bundles()
	if err != nil {
		t.Fatal(err)
	}
	var top oldopm.BundleRow
	for _, r := range rows {
		if r.CSVName == "etcdoperator.v0.9.2" && r.ChannelName == "alpha" {
			top = r
		}
	}
	want := oldopm.BundleRow{CSVName: "etcdoperator.v0.9.2", PackageName: "etcd", ChannelName: "alpha", Version: "0.9.2",
		Replaces: "etcdoperator.v0.9.0", Skips: []string{"etcdoperator.v0.9.1"}, BundlePath: "quay.io/test/etcd.0.9.2"}
	if !reflect.DeepEqual(top, want) {
		t.Errorf("ListBundles row of etcdoperator.v0.9.2 in alpha:\n got %+v\nwant %+v", top, want)
	}

	if got := schemaVersion(t, servedCopy(t, srv)); got != 10 {
		t.Errorf("opm %s serves schema version %d, want 10 (its latest migration)", oldopm.Version, got)
	}
	if fileHash(t, srv.Database) != before || fileHash(t, ocTestDB) != before {
		t.Error("opm changed the database file it was given")
	}
	if v := schemaVersion(t, srv.Database); v != 7 {
		t.Errorf("the database handed to opm is at schema %d, want 7 as shipped", v)
	}
}

// TestServeIndexerDB: operator-registry's indexer fixture, schema 5 (no
// replaces/skips columns yet): opm's start-up migrations fill them in from
// the CSVs (json1), or the upgrade edges below would be missing.
func TestServeIndexerDB(t *testing.T) {
	srv := oldopm.Serve(t, indexerDB)
	check(t, srv, indexer)
	if got := schemaVersion(t, servedCopy(t, srv)); got != 10 {
		t.Errorf("opm %s serves schema version %d, want 10", oldopm.Version, got)
	}
	// The replaces column that migration 006 filled in, as ListBundles
	// reports it. (This opm's GetBundleForChannel leaves replaces and
	// skips empty, whatever the database holds.)
	rows, err := srv.Bundles()
	if err != nil {
		t.Fatal(err)
	}
	var b oldopm.BundleRow
	for _, r := range rows {
		if r.CSVName == "etcdoperator.v0.9.0" && r.ChannelName == "beta" {
			b = r
		}
	}
	want := oldopm.BundleRow{CSVName: "etcdoperator.v0.9.0", PackageName: "etcd", ChannelName: "beta", Version: "0.9.0",
		Replaces: "etcdoperator.v0.6.1", BundlePath: "quay.io/olmtest/example-bundle:etcdoperator.v0.9.0"}
	if !reflect.DeepEqual(b, want) {
		t.Errorf("ListBundles row of etcdoperator.v0.9.0 in beta:\n got %+v\nwant %+v", b, want)
	}
}

// TestServeMatchesSQL cross-checks the server against the database's own
// tables, read directly with the pure-Go driver: every package and its
// default channel, every channel head, and every (channel, bundle) entry
// that has a bundle row.
func TestServeMatchesSQL(t *testing.T) {
	for _, path := range []string{ocTestDB, indexerDB} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			db := openDB(t, copyDB(t, path))
			want := catalog{defaults: map[string]string{}, heads: map[string]map[string]string{}, bundles: map[string][]string{}}
			query := func(q string, each func(a, b, c string)) {
				t.Helper()
				rows, err := db.Query(q)
				if err != nil {
					t.Fatal(err)
				}
				defer rows.Close()
				for rows.Next() {
					var a, b, c sql.NullString
					if err := rows.Scan(&a, &b, &c); err != nil {
						t.Fatal(err)
					}
					each(a.String, b.String, c.String)
				}
				if err := rows.Err(); err != nil {
					t.Fatal(err)
				}
			}
			query("SELECT name, default_channel, '' FROM package", func(p, def, _ string) { want.defaults[p] = def })
			query("SELECT package_name, name, head_operatorbundle_name FROM channel", func(p, ch, head string) {
				if want.heads[p] == nil {
					want.heads[p] = map[string]string{}
				}
				want.heads[p][ch] = head
			})
			query(`SELECT DISTINCT e.package_name, e.channel_name, e.operatorbundle_name
				FROM channel_entry e JOIN operatorbundle b ON b.name = e.operatorbundle_name
				ORDER BY 1, 2, 3`, func(p, ch, csv string) {
				want.bundles[p+"/"+ch] = append(want.bundles[p+"/"+ch], csv)
			})
			if len(want.defaults) < 2 || len(want.bundles) < 4 {
				t.Fatalf("too little read from %s: %+v", path, want)
			}
			check(t, oldopm.Serve(t, path), want)
		})
	}
}

// TestServeSeesEdits: the harness serves the database it is given, not a
// fixed answer: a channel deleted from a copy is gone from the server,
// and asking for it is an error.
func TestServeSeesEdits(t *testing.T) {
	cp := copyDB(t, ocTestDB)
	db := openDB(t, cp)
	for _, q := range []string{
		"DELETE FROM channel_entry WHERE package_name = 'prometheus' AND channel_name = 'stable'",
		"DELETE FROM channel WHERE package_name = 'prometheus' AND name = 'stable'",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	srv := oldopm.Serve(t, cp)
	_, heads, err := srv.Package("prometheus")
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"preview": "prometheusoperator.0.22.2"}; !reflect.DeepEqual(heads, want) {
		t.Errorf("prometheus channels after deleting stable: %v, want %v", heads, want)
	}
	if b, err := srv.BundleForChannel("prometheus", "stable"); !oldopm.IsNotFound(err) {
		t.Errorf("GetBundleForChannel prometheus stable after the channel was deleted = %+v, %v; want not found", b, err)
	}
	if _, _, err := srv.Package("no-such-package"); !oldopm.IsNotFound(err) {
		t.Errorf("GetPackage of a package that does not exist: %v, want not found", err)
	}
	if _, err := srv.BundleThatReplaces("prometheusoperator.0.14.0", "prometheus", "stable"); !oldopm.IsNotFound(err) {
		t.Errorf("GetBundleThatReplaces in the deleted channel: %v, want not found", err)
	}
	// Still there: the other channel's edge.
	if b, err := srv.BundleThatReplaces("prometheusoperator.0.14.0", "prometheus", "preview"); err != nil || b.CSVName != "prometheusoperator.0.15.0" {
		t.Errorf("GetBundleThatReplaces prometheusoperator.0.14.0 in preview = %+v, %v", b, err)
	}
}

// TestServeDatabaseMigratedByCurrentRegistry: a database migrated by the
// operator-registry airlock builds with (v1.65, schema 013, pure-Go
// driver) is still served by the old opm, which knows only up to 010: its
// migrator has nothing to apply past the stored version, and the newer
// schema only adds (substitutesfor, deprecation tables).
func TestServeDatabaseMigratedByCurrentRegistry(t *testing.T) {
	cp := copyDB(t, ocTestDB)
	db := openDB(t, cp)
	m, err := sqlite.NewSQLLiteMigrator(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Migrate(context.Background()); err != nil {
		t.Fatalf("migrating with operator-registry v1.65: %v", err)
	}
	db.Close()
	if v := schemaVersion(t, cp); v != 13 {
		t.Fatalf("after migrating: schema %d, want 13", v)
	}
	srv := oldopm.Serve(t, cp)
	check(t, srv, ocTest)
	if got := schemaVersion(t, servedCopy(t, srv)); got != 13 {
		t.Errorf("opm %s serves schema version %d, want 13 untouched", oldopm.Version, got)
	}
	if strings.Contains(srv.Log(), "couldn't migrate") {
		t.Errorf("opm %s could not migrate the database:\n%s", oldopm.Version, srv.Log())
	}
}

func TestBinaryVersion(t *testing.T) {
	out, err := exec.Command(oldopm.Binary(t), "version").CombinedOutput()
	if err != nil {
		t.Fatalf("opm version: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), fmt.Sprintf("OpmVersion:%q", oldopm.Version)) {
		t.Errorf("opm version says %s, want %s", out, oldopm.Version)
	}
}

func TestIsNotFound(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("no entry found for etcd alpha"), false}, // not a gRPC status
		{status.Error(codes.Unknown, "no entry found for etcd alpha"), true},
		{status.Error(codes.Unknown, "package nope not found"), true},
		{status.Error(codes.NotFound, "whatever"), true},
		{status.Error(codes.Unknown, "database is locked"), false},
		{status.Error(codes.Unavailable, "connection refused: not found"), false},
	} {
		if got := oldopm.IsNotFound(c.err); got != c.want {
			t.Errorf("IsNotFound(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
