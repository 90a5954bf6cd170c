package catalog

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/operator-framework/operator-registry/alpha/declcfg"
	"github.com/operator-framework/operator-registry/alpha/property"
	"github.com/operator-framework/operator-registry/pkg/api"
	"github.com/operator-framework/operator-registry/pkg/sqlite"

	"github.com/airlock-mirror/airlock/internal/imageset"
)

// channelSummary is package/channel -> "head: members" of a catalog.
func channelSummary(t *testing.T, c *Catalog) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, ch := range c.Config.Channels {
		head, err := channelHead(ch)
		if err != nil {
			t.Fatalf("%s/%s: %v", ch.Package, ch.Name, err)
		}
		var names []string
		for _, e := range ch.Entries {
			names = append(names, e.Name)
		}
		sort.Strings(names)
		out[ch.Package+"/"+ch.Name] = head + ": " + strings.Join(names, ",")
	}
	return out
}

// schemaDDL lists a database's schema objects with their SQL.
const schemaDDL = `SELECT type || ' ' || name || ': ' || coalesce(sql, '') FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name`

func queryStrings(t *testing.T, db *sql.DB, q string, args ...any) []string {
	t.Helper()
	rows, err := db.Query(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s sql.NullString
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s.String)
	}
	return out
}

// pruneCase is one selection on a real legacy database and what the
// pruned database must serve.
type pruneCase struct {
	name     string
	db       []string
	pkgs     []imageset.IncludePackage
	channels map[string]string // package/channel -> "head: members"
	extra    []string          // ExtraChannelEntries
	// upgrades: installed bundle, package, channel -> bundle that replaces it
	upgrades [][4]string
	gone     []string // bundles whose rows must be gone
}

var (
	indexerDB = []string{"sqlite", "operator-registry-indexer-bundles.db"}
	ocTestDB  = []string{"oc-test-declcfg-and-sqlite", "test.db"}
)

var pruneCases = []pruneCase{
	{
		name: "heads only, skipped and replaced bundles dropped",
		db:   ocTestDB,
		pkgs: []imageset.IncludePackage{{Name: "etcd"}},
		channels: map[string]string{
			"etcd/alpha":  "etcdoperator.v0.9.2: etcdoperator.v0.9.2",
			"etcd/stable": "etcdoperator.v0.9.2: etcdoperator.v0.9.2",
		},
		upgrades: [][4]string{
			{"etcdoperator.v0.9.0", "etcd", "alpha", "etcdoperator.v0.9.2"},
			{"etcdoperator.v0.9.0", "etcd", "stable", "etcdoperator.v0.9.2"},
		},
		gone: []string{"etcdoperator.v0.9.0", "prometheusoperator.0.14.0"},
	},
	{
		name: "one channel, upper and lower bound, new default channel",
		db:   indexerDB,
		pkgs: []imageset.IncludePackage{{Name: "strimzi-kafka-operator", DefaultChannel: "alpha",
			Channels: []imageset.IncludeChannel{{Name: "alpha", MinVersion: "0.11.1", MaxVersion: "0.12.1"}}}},
		channels: map[string]string{
			"strimzi-kafka-operator/alpha": "strimzi-cluster-operator.v0.12.1: strimzi-cluster-operator.v0.11.1,strimzi-cluster-operator.v0.12.1",
		},
		upgrades: [][4]string{
			{"strimzi-cluster-operator.v0.11.1", "strimzi-kafka-operator", "alpha", "strimzi-cluster-operator.v0.12.1"},
			{"strimzi-cluster-operator.v0.11.0", "strimzi-kafka-operator", "alpha", "strimzi-cluster-operator.v0.11.1"},
		},
		gone: []string{"strimzi-cluster-operator.v0.12.2", "strimzi-cluster-operator.v0.11.0", "etcdoperator.v0.9.2"},
	},
	{
		name: "a channel lists a bundle kept by another channel because its tail replaces it",
		db:   indexerDB,
		pkgs: []imageset.IncludePackage{{Name: "etcd", Channels: []imageset.IncludeChannel{
			{Name: "alpha", MinVersion: "0.9.2"}, {Name: "beta", MinVersion: "0.6.1"}}, DefaultChannel: "alpha"}},
		channels: map[string]string{
			"etcd/alpha": "etcdoperator.v0.9.2: etcdoperator.v0.9.0,etcdoperator.v0.9.2",
			"etcd/beta":  "etcdoperator.v0.9.0: etcdoperator.v0.6.1,etcdoperator.v0.9.0",
		},
		extra: []string{"etcd/alpha/etcdoperator.v0.9.0"},
		upgrades: [][4]string{
			{"etcdoperator.v0.9.0", "etcd", "alpha", "etcdoperator.v0.9.2"},
			{"etcdoperator.v0.6.1", "etcd", "beta", "etcdoperator.v0.9.0"},
		},
		gone: []string{"strimzi-cluster-operator.v0.11.0"},
	},
}

// TestPruneSQLiteBundleLevel prunes the two REAL legacy databases (schema 5,
// whose APIs hang off channel entries, and schema 7) to channel and version
// selections and checks, reading the result back with operator-registry's
// own sqlite code, that the database serves exactly the selection: heads,
// channels, default channel, bundles; that a cluster running a dropped
// bundle still finds its upgrade; that nothing of a dropped bundle is left;
// and that the schema and the source file are untouched.
func TestPruneSQLiteBundleLevel(t *testing.T) {
	ctx := context.Background()
	for _, tc := range pruneCases {
		t.Run(tc.name, func(t *testing.T) {
			src := testdata(t, tc.db...)
			before := fileSum(t, src)
			srcDB, err := sql.Open("sqlite", "file:"+src+"?mode=ro")
			if err != nil {
				t.Fatal(err)
			}
			schemaBefore := queryStrings(t, srcDB, `SELECT version FROM schema_migrations`)
			ddlBefore := queryStrings(t, srcDB, schemaDDL)
			srcDB.Close()
			c, err := LoadSQLite(ctx, src)
			if err != nil {
				t.Fatal(err)
			}
			f, _, err := Filter(ctx, c, imageset.Operator{Packages: tc.pkgs, SkipDependencies: true})
			if err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(t.TempDir(), "index.db")
			res, err := PruneSQLite(ctx, src, dst, f)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Exact || res.Inexact != "" || len(res.ExtraBundles) != 0 {
				t.Fatalf("not pruned exactly: %+v", res)
			}
			if strings.Join(res.ExtraChannelEntries, " ") != strings.Join(tc.extra, " ") {
				t.Errorf("extra channel entries %v, want %v", res.ExtraChannelEntries, tc.extra)
			}
			if fileSum(t, src) != before {
				t.Error("source database modified")
			}
			pruned, err := LoadSQLite(ctx, dst)
			if err != nil {
				t.Fatal(err)
			}
			got := channelSummary(t, pruned)
			if len(got) != len(tc.channels) {
				t.Errorf("channels %v, want %v", got, tc.channels)
			}
			for k, v := range tc.channels {
				if got[k] != v {
					t.Errorf("%s: %q, want %q", k, got[k], v)
				}
			}
			var pb, fb []string
			for _, b := range pruned.Config.Bundles {
				pb = append(pb, b.Name)
			}
			for _, b := range f.Config.Bundles {
				fb = append(fb, b.Name)
			}
			sort.Strings(pb)
			sort.Strings(fb)
			if strings.Join(pb, ",") != strings.Join(fb, ",") {
				t.Errorf("bundles %v, want the filtered %v", pb, fb)
			}
			for _, p := range pruned.Config.Packages {
				for _, want := range tc.pkgs {
					if want.Name == p.Name && want.DefaultChannel != "" && p.DefaultChannel != want.DefaultChannel {
						t.Errorf("%s: default channel %s, want %s", p.Name, p.DefaultChannel, want.DefaultChannel)
					}
				}
			}

			// The file itself: its schema, no leftovers of dropped bundles.
			db, err := openSQLite(dst)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if after := queryStrings(t, db, `SELECT version FROM schema_migrations`); strings.Join(after, ",") != strings.Join(schemaBefore, ",") {
				t.Errorf("schema changed from %v to %v", schemaBefore, after)
			}
			// Tables, indexes and triggers (dropped during the pruning) exactly as before.
			if after := queryStrings(t, db, schemaDDL); strings.Join(after, "\n") != strings.Join(ddlBefore, "\n") {
				t.Errorf("schema DDL changed:\n%s\nwas:\n%s", strings.Join(after, "\n"), strings.Join(ddlBefore, "\n"))
			}
			for _, b := range tc.gone {
				if n := queryStrings(t, db, `SELECT name FROM operatorbundle WHERE name = ?`, b); len(n) != 0 {
					t.Errorf("bundle %s still has a row", b)
				}
				if n := queryStrings(t, db, `SELECT image FROM related_image WHERE operatorbundle_name = ?`, b); len(n) != 0 {
					t.Errorf("bundle %s left related images %v", b, n)
				}
			}
			if v := queryStrings(t, db, `SELECT "table" FROM pragma_foreign_key_check`); len(v) != 0 {
				t.Errorf("foreign key violations in %v", v)
			}
			if v := queryStrings(t, db, `PRAGMA integrity_check`); strings.Join(v, "") != "ok" {
				t.Errorf("integrity check: %v", v)
			}
			// Every kept bundle keeps its provided APIs (entry-linked in
			// schema 5): what OLM resolves GVK requirements against.
			for _, b := range pruned.Config.Bundles {
				for _, orig := range c.Config.Bundles {
					if orig.Name == b.Name && countProp(orig.Properties, "olm.gvk") != countProp(b.Properties, "olm.gvk") {
						t.Errorf("%s: %d provided APIs, had %d", b.Name, countProp(b.Properties, "olm.gvk"), countProp(orig.Properties, "olm.gvk"))
					}
				}
			}

			// operator-registry's querier (what its registry server answers
			// OLM with), on a migrated copy as the server would run it.
			mig := filepath.Join(t.TempDir(), "served.db")
			if err := copyFile(dst, mig); err != nil {
				t.Fatal(err)
			}
			mdb, err := openSQLite(mig)
			if err != nil {
				t.Fatal(err)
			}
			defer mdb.Close()
			if err := migrateSQLite(ctx, mdb); err != nil {
				t.Fatal(err)
			}
			// The querier runs queries while iterating rows: it needs more
			// than the single connection the migrator wants.
			mdb.SetMaxOpenConns(0)
			q := sqlite.NewSQLLiteQuerierFromDb(mdb)
			for _, u := range tc.upgrades {
				b, err := q.GetBundleThatReplaces(ctx, u[0], u[1], u[2])
				if err != nil || b.CsvName != u[3] {
					t.Errorf("upgrade from %s in %s/%s: %v %v, want %s", u[0], u[1], u[2], bundleName(b), err, u[3])
				}
			}
			for k, v := range tc.channels {
				pkg, ch, _ := strings.Cut(k, "/")
				head, _, _ := strings.Cut(v, ":")
				b, err := q.GetBundleForChannel(ctx, pkg, ch)
				if err != nil || b.CsvName != head {
					t.Errorf("%s head served: %v %v, want %s", k, bundleName(b), err, head)
				}
			}
			entries, _ := os.ReadDir(filepath.Dir(dst))
			if len(entries) != 1 {
				t.Errorf("temporary files left: %v", entries)
			}
		})
	}
}

func bundleName(b *api.Bundle) string {
	if b == nil {
		return "<none>"
	}
	return b.CsvName
}

func countProp(props []property.Property, typ string) int {
	n := 0
	for _, p := range props {
		if p.Type == typ {
			n++
		}
	}
	return n
}

// TestPruneSQLiteFallsBackToPackages: a selection that no sqlite channel can
// express (here a channel entry without its bundle) is not an error: the database is
// pruned per package, and the result says why and which bundles stay.
func TestPruneSQLiteFallsBackToPackages(t *testing.T) {
	ctx := context.Background()
	src := testdata(t, "oc-test-declcfg-and-sqlite", "test.db")
	c, err := LoadSQLite(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	f, _, err := Filter(ctx, c, imageset.Operator{Packages: []imageset.IncludePackage{{Name: "etcd"}}})
	if err != nil {
		t.Fatal(err)
	}
	for i, ch := range f.Config.Channels {
		if ch.Name == "alpha" {
			f.Config.Channels[i].Entries = append(f.Config.Channels[i].Entries, declcfg.ChannelEntry{Name: "etcdoperator.v0.9.0"})
		}
	}
	dst := filepath.Join(t.TempDir(), "index.db")
	res, err := PruneSQLite(ctx, src, dst, f)
	if err != nil {
		t.Fatal(err)
	}
	if res.Exact || !strings.Contains(res.Inexact, "etcdoperator.v0.9.0") {
		t.Errorf("want a per-package fallback naming the reason, got %+v", res)
	}
	if strings.Join(res.ExtraBundles, ",") != "etcd/etcdoperator.v0.9.0" {
		t.Errorf("extra bundles %v, want etcd/etcdoperator.v0.9.0 (0.9.1 is skipped, never a bundle of the database)", res.ExtraBundles)
	}
	if got := strings.Join(res.Catalog.PackageNames(), ","); got != "etcd" {
		t.Errorf("packages %s", got)
	}
}

// TestPruneSQLiteLatestSchemaWithDeprecation: the same pruning on a database
// at operator-registry's latest schema (properties, dependencies and the
// deprecated table) in which a bundle was deprecated with opm's own code
// (which truncates the channel below it): the deprecated bundle and what
// the filter drops leave no rows behind, the kept ones keep theirs, and the
// schema stays the latest.
func TestPruneSQLiteLatestSchemaWithDeprecation(t *testing.T) {
	ctx := context.Background()
	src := filepath.Join(t.TempDir(), "latest.db")
	if err := copyFile(testdata(t, "sqlite", "operator-registry-indexer-bundles.db"), src); err != nil {
		t.Fatal(err)
	}
	db, err := openSQLite(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := migrateSQLite(ctx, db); err != nil {
		t.Fatal(err)
	}
	dl, err := sqlite.NewDeprecationAwareLoader(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := dl.DeprecateBundle("quay.io/olmtest/example-bundle:etcdoperator.v0.9.0"); err != nil {
		t.Fatal(err)
	}
	db.Close()

	c, err := LoadSQLite(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	f, _, err := Filter(ctx, c, imageset.Operator{Full: true, SkipDependencies: true, Packages: []imageset.IncludePackage{
		{Name: "etcd", DefaultChannel: "alpha", Channels: []imageset.IncludeChannel{{Name: "alpha"}}},
		{Name: "prometheus", MinVersion: "0.15.0"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "index.db")
	res, err := PruneSQLite(ctx, src, dst, f)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Exact {
		t.Fatalf("not pruned exactly: %+v", res)
	}
	got := channelSummary(t, res.Catalog)
	want := map[string]string{
		"etcd/alpha":         "etcdoperator.v0.9.2: etcdoperator.v0.9.2",
		"prometheus/preview": "prometheusoperator.0.22.2: prometheusoperator.0.15.0,prometheusoperator.0.22.2",
	}
	if len(got) != len(want) {
		t.Errorf("channels %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
	pdb, err := openSQLite(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer pdb.Close()
	if v := queryStrings(t, pdb, `SELECT max(version) FROM schema_migrations`); strings.Join(v, "") != "13" {
		t.Errorf("schema %v, want 13", v)
	}
	for _, table := range []string{"properties", "dependencies", "related_image", "deprecated", "api_provider", "api_requirer"} {
		if v := queryStrings(t, pdb, `SELECT DISTINCT operatorbundle_name FROM `+table+` WHERE operatorbundle_name NOT IN (SELECT name FROM operatorbundle)`); len(v) != 0 {
			t.Errorf("%s rows of deleted bundles: %v", table, v)
		}
	}
	kept := queryStrings(t, pdb, `SELECT DISTINCT operatorbundle_name FROM properties WHERE type = 'olm.package' ORDER BY 1`)
	if strings.Join(kept, ",") != "etcdoperator.v0.9.2,prometheusoperator.0.15.0,prometheusoperator.0.22.2" {
		t.Errorf("bundles with properties: %v", kept)
	}
}
