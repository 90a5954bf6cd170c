package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/operator-framework/operator-registry/alpha/declcfg"
	"github.com/operator-framework/operator-registry/alpha/property"

	"github.com/airlock-mirror/airlock/internal/imageset"
)

// benchLoadFilterWrite measures one full `catalog filter` pass over dir:
// load, filter (heads of every channel plus dependencies, the default
// oc-mirror selection) and write the result.
func benchLoadFilterWrite(b *testing.B, dir string) {
	ctx := context.Background()
	out := b.TempDir()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := LoadDir(ctx, dir)
		if err != nil {
			b.Fatal(err)
		}
		f, _, err := Filter(ctx, c, imageset.Operator{})
		if err != nil {
			b.Fatal(err)
		}
		if err := WriteDir(f, filepath.Join(out, fmt.Sprint(i)), "json"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoadFilterWriteCommunity: the real community-operators 4.18
// catalog (35 packages, 727 bundles).
func BenchmarkLoadFilterWriteCommunity(b *testing.B) {
	benchLoadFilterWrite(b, testdata(b, "community-operators-prod-v4.18"))
}

// BenchmarkLoadFilterWriteCommunity10x: a synthetic catalog ten times the
// community one (350 packages, 7270 bundles), made by cloning every
// package under new names.
func BenchmarkLoadFilterWriteCommunity10x(b *testing.B) {
	src, err := LoadDir(context.Background(), testdata(b, "community-operators-prod-v4.18"))
	if err != nil {
		b.Fatal(err)
	}
	big := cloneCatalog(b, src.Config, 10)
	dir := filepath.Join(b.TempDir(), "big")
	if err := WriteDir(&Catalog{Config: big}, dir, "json"); err != nil {
		b.Fatal(err)
	}
	benchLoadFilterWrite(b, dir)
}

// cloneCatalog returns n copies of cfg, copy k's packages renamed
// "<name>-k" (copy 0 keeps the names). Package requirements are renamed
// too so dependencies resolve within each copy.
func cloneCatalog(b *testing.B, cfg *declcfg.DeclarativeConfig, n int) *declcfg.DeclarativeConfig {
	out := &declcfg.DeclarativeConfig{}
	for k := 0; k < n; k++ {
		rename := func(s string) string {
			if k == 0 {
				return s
			}
			return fmt.Sprintf("%s-%d", s, k)
		}
		for _, p := range cfg.Packages {
			p.Name = rename(p.Name)
			out.Packages = append(out.Packages, p)
		}
		for _, ch := range cfg.Channels {
			ch.Package = rename(ch.Package)
			out.Channels = append(out.Channels, ch)
		}
		for _, bd := range cfg.Bundles {
			bd.Package = rename(bd.Package)
			props := make([]property.Property, len(bd.Properties))
			copy(props, bd.Properties)
			for i, p := range props {
				switch p.Type {
				case property.TypePackage:
					var v property.Package
					if err := json.Unmarshal(p.Value, &v); err != nil {
						b.Fatal(err)
					}
					props[i] = property.MustBuildPackage(rename(v.PackageName), v.Version)
				case property.TypePackageRequired:
					var v property.PackageRequired
					if err := json.Unmarshal(p.Value, &v); err != nil {
						b.Fatal(err)
					}
					props[i] = property.MustBuildPackageRequired(rename(v.PackageName), v.VersionRange)
				}
			}
			bd.Properties = props
			out.Bundles = append(out.Bundles, bd)
		}
		for _, d := range cfg.Deprecations {
			d.Package = rename(d.Package)
			out.Deprecations = append(out.Deprecations, d)
		}
	}
	return out
}

// BenchmarkPruneSQLite prunes a legacy sqlite database of 600 packages and
// 2000 bundles (operator-registry's real indexer database at the latest
// schema, cloned 200 times under new names) to a tenth of its packages,
// each to one channel with a version range, and reads the result back —
// what `catalog mirror` does before mirroring a sqlite catalog image.
func BenchmarkPruneSQLite(b *testing.B) {
	ctx := context.Background()
	src := filepath.Join(b.TempDir(), "big.db")
	if err := copyFile(testdata(b, "sqlite", "operator-registry-indexer-bundles.db"), src); err != nil {
		b.Fatal(err)
	}
	db, err := openSQLite(src)
	if err != nil {
		b.Fatal(err)
	}
	if err := migrateSQLite(ctx, db); err != nil {
		b.Fatal(err)
	}
	db.Close()
	cloneSQLite(b, src, 200)
	c, err := LoadSQLite(ctx, src)
	if err != nil {
		b.Fatal(err)
	}
	var pkgs []imageset.IncludePackage
	for k := 0; k < 200; k += 10 {
		s := fmt.Sprintf("-%d", k)
		pkgs = append(pkgs,
			imageset.IncludePackage{Name: "strimzi-kafka-operator" + s, DefaultChannel: "alpha",
				Channels: []imageset.IncludeChannel{{Name: "alpha", MinVersion: "0.11.1", MaxVersion: "0.12.1"}}},
			imageset.IncludePackage{Name: "etcd" + s})
	}
	f, _, err := Filter(ctx, c, imageset.Operator{Packages: pkgs, SkipDependencies: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("source: %d packages, %d bundles; selection: %d packages, %d bundles", len(c.Config.Packages), len(c.Config.Bundles), len(f.Config.Packages), len(f.Config.Bundles))
	dst := filepath.Join(b.TempDir(), "pruned.db")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := PruneSQLite(ctx, src, dst, f)
		if err != nil {
			b.Fatal(err)
		}
		if !res.Exact || len(res.Catalog.Config.Bundles) != len(f.Config.Bundles) {
			b.Fatalf("not exact: %+v", res)
		}
	}
}

// cloneSQLite turns a latest-schema database into n renamed copies of
// itself: every package, channel, entry, bundle and per-bundle row of copy
// k is named "<name>-k".
func cloneSQLite(b *testing.B, path string, n int) {
	orig := filepath.Join(b.TempDir(), "orig.db")
	if err := copyFile(path, orig); err != nil {
		b.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+path) // no foreign keys: rows go in table by table
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	exec := func(q string, args ...any) {
		if _, err := db.Exec(q, args...); err != nil {
			b.Fatalf("%s: %v", q, err)
		}
	}
	// sfx appends the suffix ?1 to a non-empty column.
	sfx := func(col string) string {
		return "CASE WHEN coalesce(" + col + ", '') = '' THEN " + col + " ELSE " + col + " || ?1 END"
	}
	skips := "CASE WHEN coalesce(skips, '') = '' THEN skips ELSE replace(skips, ',', ?1 || ',') || ?1 END"
	pkgValue := "CASE WHEN type = 'olm.package' THEN json_set(value, '$.packageName', json_extract(value, '$.packageName') || ?1) ELSE value END"
	var off int
	if err := db.QueryRow(`SELECT max(entry_id) FROM channel_entry`).Scan(&off); err != nil {
		b.Fatal(err)
	}
	exec(`ATTACH DATABASE ? AS o`, "file:"+orig)
	exec(`BEGIN`)
	for _, t := range []string{"package", "channel", "channel_entry", "operatorbundle", "related_image", "properties", "dependencies", "api_provider", "api_requirer"} {
		exec(`DELETE FROM main.` + t)
	}
	for k := 0; k < n; k++ {
		s, o := fmt.Sprintf("-%d", k), k*off
		exec(`INSERT INTO main.package(name, default_channel) SELECT name || ?1, default_channel FROM o.package`, s)
		exec(`INSERT INTO main.channel(name, package_name, head_operatorbundle_name) SELECT name, package_name || ?1, head_operatorbundle_name || ?1 FROM o.channel`, s)
		exec(`INSERT INTO main.channel_entry(entry_id, channel_name, package_name, operatorbundle_name, replaces, depth)
			SELECT entry_id + ?2, channel_name, package_name || ?1, operatorbundle_name || ?1, replaces + ?2, depth FROM o.channel_entry`, s, o)
		exec(`INSERT INTO main.operatorbundle(name, csv, bundle, bundlepath, skiprange, version, replaces, skips, substitutesfor)
			SELECT name || ?1, csv, bundle, `+sfx("bundlepath")+`, skiprange, version, `+sfx("replaces")+`, `+skips+`, substitutesfor
			FROM o.operatorbundle`, s)
		exec(`INSERT INTO main.related_image(image, operatorbundle_name) SELECT image, operatorbundle_name || ?1 FROM o.related_image`, s)
		for _, t := range []string{"properties", "dependencies"} {
			exec(`INSERT INTO main.`+t+`(type, value, operatorbundle_name, operatorbundle_version, operatorbundle_path)
				SELECT type, `+pkgValue+`, operatorbundle_name || ?1, operatorbundle_version, `+sfx("operatorbundle_path")+` FROM o.`+t, s)
		}
		for _, t := range []string{"api_provider", "api_requirer"} {
			exec(`INSERT INTO main.`+t+`(group_name, version, kind, operatorbundle_name, operatorbundle_version, operatorbundle_path)
				SELECT group_name, version, kind, operatorbundle_name || ?1, operatorbundle_version, `+sfx("operatorbundle_path")+` FROM o.`+t, s)
		}
	}
	exec(`COMMIT`)
	exec(`DETACH DATABASE o`)
}
