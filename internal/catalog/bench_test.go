package catalog

import (
	"context"
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
