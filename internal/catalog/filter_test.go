package catalog

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/operator-framework/operator-registry/alpha/declcfg"
	"github.com/operator-framework/operator-registry/alpha/property"

	"github.com/airlock-mirror/airlock/internal/imageset"
)

func loadTestDir(t testing.TB, elem ...string) *Catalog {
	t.Helper()
	c, err := LoadDir(context.Background(), testdata(t, elem...))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// canonical renders a config in a stable form for comparison.
func canonical(t testing.TB, cfg *declcfg.DeclarativeConfig) string {
	t.Helper()
	cp := *cfg
	sortConfig(&cp)
	var buf bytes.Buffer
	if err := declcfg.WriteYAML(cp, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// TestFilterGolden checks Filter against the expected outputs of opm's own
// filtering (operator-registry alpha/action/testdata/index-declcfgs). Each
// case expresses the opm invocation that produced the golden file as an
// operators[] entry:
//   - exp-headsonly: `opm alpha diff latest` = heads of every channel plus
//     their dependencies (foo.v0.3.1 requires bar <0.2.0, which brings
//     bar.v0.1.0 and the alpha upgrade path v0.1.0 -> v0.2.0 -> v1.0.0);
//   - exp-latest: the diff old -> latest, i.e. only the new heads, which is
//     heads-only without dependency resolution (old already had them);
//   - exp-include-pkg / exp-include-channel: heads of everything plus all
//     of baz (its stable channel from 1.0.0), with dependencies.
func TestFilterGolden(t *testing.T) {
	latest := loadTestDir(t, "operator-registry-index-declcfgs", "latest")
	cases := []struct {
		golden string
		op     imageset.Operator
	}{
		{"exp-headsonly", imageset.Operator{}},
		{"exp-latest", imageset.Operator{SkipDependencies: true}},
		{"exp-include-pkg", imageset.Operator{Packages: []imageset.IncludePackage{
			{Name: "bar"}, {Name: "foo"}, {Name: "baz", MinVersion: "1.0.0"}}}},
		{"exp-include-channel", imageset.Operator{Packages: []imageset.IncludePackage{
			{Name: "bar"}, {Name: "foo"}, {Name: "baz", Channels: []imageset.IncludeChannel{{Name: "stable", MinVersion: "1.0.0"}}}}}},
	}
	for _, tc := range cases {
		t.Run(tc.golden, func(t *testing.T) {
			got, rep, err := Filter(context.Background(), latest, tc.op)
			if err != nil {
				t.Fatal(err)
			}
			want := loadTestDir(t, "operator-registry-index-declcfgs", tc.golden)
			if g, w := canonical(t, got.Config), canonical(t, want.Config); g != w {
				t.Errorf("filtered catalog differs from %s:\n%s", tc.golden, lineDiff(g, w))
			}
			t.Logf("report: %+v", rep)
		})
	}
}

// lineDiff shows the first differing lines, enough to debug a golden mismatch.
func lineDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return "line " + itoa(i+1) + ":\n got:  " + gl + "\n want: " + wl
		}
	}
	return "(equal)"
}

func itoa(i int) string {
	var b [20]byte
	n := len(b)
	for {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
		if i == 0 {
			break
		}
	}
	return string(b[n:])
}

func imagesetFull() imageset.Operator { return imageset.Operator{Full: true} }

func TestFilterCommunityHeadsOnlyAndFull(t *testing.T) {
	c := loadTestDir(t, "community-operators-prod-v4.18")
	heads, rep, err := Filter(context.Background(), c, imageset.Operator{SkipDependencies: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(heads.Config.Packages) != 35 || len(heads.Config.Channels) != 78 {
		t.Errorf("heads-only: %d packages %d channels", len(heads.Config.Packages), len(heads.Config.Channels))
	}
	for _, ch := range heads.Config.Channels {
		if len(ch.Entries) != 1 {
			t.Errorf("heads-only channel %s/%s has %d entries", ch.Package, ch.Name, len(ch.Entries))
		}
	}
	if len(rep.Packages) != 35 {
		t.Errorf("report packages %d", len(rep.Packages))
	}
	full, _, err := Filter(context.Background(), c, imageset.Operator{Full: true})
	if err != nil {
		t.Fatal(err)
	}
	if canonical(t, full.Config) != canonical(t, c.Config) {
		t.Error("full with no packages changed the catalog")
	}
	// Every package with full: every bundle of every channel, still valid.
	var pkgs []imageset.IncludePackage
	for _, p := range c.Config.Packages {
		pkgs = append(pkgs, imageset.IncludePackage{Name: p.Name})
	}
	all, _, err := Filter(context.Background(), c, imageset.Operator{Full: true, Packages: pkgs})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Config.Bundles) != 727 {
		t.Errorf("full per package: %d bundles", len(all.Config.Bundles))
	}
}

// TestFilterRangeKeepsSingleHead selects a range in the middle of a real
// channel: the result must be exactly the range, a valid channel whose
// head is the range's top.
func TestFilterRangeKeepsSingleHead(t *testing.T) {
	c := loadTestDir(t, "community-operators-prod-v4.18")
	op := imageset.Operator{SkipDependencies: true, Packages: []imageset.IncludePackage{{
		Name: "project-quay", DefaultChannel: "stable-3.10",
		Channels: []imageset.IncludeChannel{{Name: "stable-3.10", MinVersion: "3.10.5", MaxVersion: "3.10.12"}}}}}
	out, rep, err := Filter(context.Background(), c, op)
	if err != nil {
		t.Fatal(err)
	}
	ch := rep.Packages[0].Channels[0]
	if ch.Head != "quay-operator.v3.10.12" || len(ch.Bundles) != 8 {
		t.Errorf("channel %+v, want head v3.10.12 and 8 bundles (3.10.5..3.10.12)", ch)
	}
	if out.Config.Packages[0].DefaultChannel != "stable-3.10" {
		t.Errorf("default channel %s", out.Config.Packages[0].DefaultChannel)
	}
	// Package-level range over all channels of the package.
	op = imageset.Operator{SkipDependencies: true, Packages: []imageset.IncludePackage{{Name: "project-quay", MinVersion: "3.10.0", MaxVersion: "3.10.99", DefaultChannel: "stable-3.10"}}}
	out, _, err = Filter(context.Background(), c, op)
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range out.Config.Channels {
		if !strings.HasPrefix(ch.Name, "stable-3.10") {
			t.Errorf("channel %s kept though none of its bundles is in 3.10.x", ch.Name)
		}
	}
}

// TestFilterDependencyOnlyPackage selects foo alone: bar (required by
// foo.v0.3.1 as package bar <0.2.0 and gvk test.bar/v1alpha1 Bar) is added
// as a dependency-only package whose default channel must be one it keeps.
func TestFilterDependencyOnlyPackage(t *testing.T) {
	latest := loadTestDir(t, "operator-registry-index-declcfgs", "latest")
	out, rep, err := Filter(context.Background(), latest, imageset.Operator{Packages: []imageset.IncludePackage{{Name: "foo"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(out.PackageNames(), ","); got != "bar,foo" {
		t.Fatalf("packages %s", got)
	}
	bar := out.Package("bar")
	if bar.DefaultChannel != "alpha" {
		t.Errorf("bar default channel %s, want alpha (stable holds nothing foo needs)", bar.DefaultChannel)
	}
	if len(rep.Dependencies) != 1 || rep.Dependencies[0].Bundle != "bar.v0.1.0" || rep.Dependencies[0].RequiredBy != "foo/foo.v0.3.1" {
		t.Errorf("dependencies %+v", rep.Dependencies)
	}
	if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0].Message, `default channel set to "alpha"`) {
		t.Errorf("warnings %+v", rep.Warnings)
	}
	if !rep.Packages[0].Dependency || rep.Packages[1].Dependency {
		t.Errorf("dependency flags %+v", rep.Packages)
	}
	// --skip-dependencies keeps foo alone.
	out, _, err = Filter(context.Background(), latest, imageset.Operator{SkipDependencies: true, Packages: []imageset.IncludePackage{{Name: "foo"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(out.PackageNames(), ","); got != "foo" {
		t.Errorf("skip dependencies: packages %s", got)
	}
}

// TestFilterGVKDependency resolves an olm.gvk.required against the
// providers' olm.gvk when no package requirement names the provider.
func TestFilterGVKDependency(t *testing.T) {
	latest := loadTestDir(t, "operator-registry-index-declcfgs", "latest")
	// Drop foo's package requirement so only the GVK one remains.
	cfg := *latest.Config
	cfg.Bundles = append([]declcfg.Bundle(nil), cfg.Bundles...)
	for i := range cfg.Bundles {
		b := &cfg.Bundles[i]
		var props []property.Property
		for _, p := range b.Properties {
			if p.Type != property.TypePackageRequired {
				props = append(props, p)
			}
		}
		b.Properties = props
	}
	c := &Catalog{Config: &cfg, Format: FormatFBC}
	_, rep, err := Filter(context.Background(), c, imageset.Operator{Packages: []imageset.IncludePackage{{Name: "foo"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Dependencies) != 1 {
		t.Fatalf("dependencies %+v", rep.Dependencies)
	}
	d := rep.Dependencies[0]
	// The highest provider of test.bar/v1alpha1 Bar, in bar's default channel.
	if d.Bundle != "bar.v1.0.0" || d.Channel != "stable" || d.Requirement != "olm.gvk.required test.bar/v1alpha1 Bar" {
		t.Errorf("dependency %+v", d)
	}
}

func TestFilterErrors(t *testing.T) {
	latest := loadTestDir(t, "operator-registry-index-declcfgs", "latest")
	cases := []struct {
		pkg  imageset.IncludePackage
		want string
	}{
		{imageset.IncludePackage{Name: "nope"}, `package "nope" not found in catalog (have: [bar baz foo])`},
		{imageset.IncludePackage{Name: "bar", Channels: []imageset.IncludeChannel{{Name: "beta"}}}, `package "bar": channel "beta" does not exist (channels: alpha, stable)`},
		{imageset.IncludePackage{Name: "bar", Channels: []imageset.IncludeChannel{{Name: "alpha"}}}, `package "bar": the selection keeps channels alpha but not the default channel "stable"`},
		{imageset.IncludePackage{Name: "bar", Channels: []imageset.IncludeChannel{{Name: "alpha", MinVersion: "2.0.0"}}, DefaultChannel: "alpha"}, `package "bar" channel "alpha": no bundle in version range >=2.0.0 (channel versions: 0.1.0, 0.2.0, 1.0.0)`},
		{imageset.IncludePackage{Name: "bar", MinVersion: "5.0.0"}, `package "bar": no bundle in version range >=5.0.0 in any channel`},
		{imageset.IncludePackage{Name: "bar", DefaultChannel: "nope"}, `package "bar": defaultChannel "nope" does not exist`},
		{imageset.IncludePackage{Name: "bar", MinVersion: "1.0.0", Channels: []imageset.IncludeChannel{{Name: "alpha", MaxVersion: "2.0.0"}}}, "both on the package and on this channel"},
	}
	for _, tc := range cases {
		_, _, err := Filter(context.Background(), latest, imageset.Operator{Packages: []imageset.IncludePackage{tc.pkg}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.pkg, err, tc.want)
		}
	}
	// With defaultChannel the non-default channel alone is fine.
	out, _, err := Filter(context.Background(), latest, imageset.Operator{SkipDependencies: true, Packages: []imageset.IncludePackage{{Name: "bar", DefaultChannel: "alpha", Channels: []imageset.IncludeChannel{{Name: "alpha"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if out.Package("bar").DefaultChannel != "alpha" || len(out.Config.Channels) != 1 {
		t.Errorf("defaultChannel override: %+v", out.Config.Packages)
	}
}

func TestWriteDirRoundTripAndReplace(t *testing.T) {
	c := loadTestDir(t, "community-operators-prod-v4.18")
	dir := filepath.Join(t.TempDir(), "out")
	os.MkdirAll(filepath.Join(dir, "stale-package"), 0o755)
	if err := WriteDir(c, dir, "json"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "stale-package")); err == nil {
		t.Error("previous content survived the replacement")
	}
	back, err := LoadDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if canonical(t, back.Config) != canonical(t, c.Config) {
		t.Error("written catalog differs from the loaded one")
	}
	entries, _ := os.ReadDir(filepath.Dir(dir))
	if len(entries) != 1 {
		t.Errorf("temporary directories left behind: %v", entries)
	}
	if err := WriteDir(c, dir, "toml"); err == nil {
		t.Error("unknown format accepted")
	}
}

// graphCatalog is one package "p" with channel "s":
//
//	1.3.0 -> 1.2.0 -> 1.1.0 -> 1.0.0   (replaces)
//	         1.2.0 skips 1.1.5         (a side entry only reachable by skip)
//	1.2.0 requires package q >=2.0.0; q has 1.0.0 and 2.0.0 (default "s")
//	        and 3.0.0 (only in channel "fast")
func graphCatalog(t *testing.T) *Catalog {
	t.Helper()
	doc := `{"schema":"olm.package","name":"p","defaultChannel":"s"}
{"schema":"olm.channel","name":"s","package":"p","entries":[
 {"name":"p.1.0.0"},{"name":"p.1.1.0","replaces":"p.1.0.0"},{"name":"p.1.1.5"},
 {"name":"p.1.2.0","replaces":"p.1.1.0","skips":["p.1.1.5"]},{"name":"p.1.3.0","replaces":"p.1.2.0"}]}
{"schema":"olm.package","name":"q","defaultChannel":"s"}
{"schema":"olm.channel","name":"s","package":"q","entries":[{"name":"q.1.0.0"},{"name":"q.2.0.0","replaces":"q.1.0.0"}]}
{"schema":"olm.channel","name":"fast","package":"q","entries":[{"name":"q.2.0.0"},{"name":"q.3.0.0","replaces":"q.2.0.0"}]}
`
	for _, v := range []string{"1.0.0", "1.1.0", "1.1.5", "1.2.0", "1.3.0"} {
		req := ""
		if v == "1.2.0" {
			req = `,{"type":"olm.package.required","value":{"packageName":"q","versionRange":">=2.0.0 <3.0.0"}}`
		}
		doc += `{"schema":"olm.bundle","name":"p.` + v + `","package":"p","image":"example.com/p/bundle:` + v + `","properties":[{"type":"olm.package","value":{"packageName":"p","version":"` + v + `"}}` + req + `]}` + "\n"
	}
	for _, v := range []string{"1.0.0", "2.0.0", "3.0.0"} {
		doc += `{"schema":"olm.bundle","name":"q.` + v + `","package":"q","image":"example.com/q/bundle:` + v + `","properties":[{"type":"olm.package","value":{"packageName":"q","version":"` + v + `"}}]}` + "\n"
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "catalog.json"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := LoadDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestFilterUpgradeGraphShapes(t *testing.T) {
	c := graphCatalog(t)
	cases := []struct {
		name     string
		min, max string
		want     string // kept entries of p/s, in channel order
		deps     string // added dependencies
	}{
		{"side entry alone", "1.1.5", "1.1.5", "p.1.1.5", ""},
		{"side entry and chain: joined by the entry skipping it", "1.1.0", "1.1.5", "p.1.1.0,p.1.1.5,p.1.2.0", "q.2.0.0"},
		{"tail of the chain", "1.0.0", "1.1.0", "p.1.0.0,p.1.1.0", ""},
		{"range over the skip", "1.1.0", "1.3.0", "p.1.1.0,p.1.1.5,p.1.2.0,p.1.3.0", "q.2.0.0"},
		{"min only: up to the head", "1.2.0", "", "p.1.2.0,p.1.3.0", "q.2.0.0"},
		{"max only: from the bottom", "", "1.1.0", "p.1.0.0,p.1.1.0", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			op := imageset.Operator{Packages: []imageset.IncludePackage{{Name: "p", Channels: []imageset.IncludeChannel{{Name: "s", MinVersion: tc.min, MaxVersion: tc.max}}}}}
			out, rep, err := Filter(context.Background(), c, op)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, ch := range out.Config.Channels {
				if ch.Package == "p" {
					for _, e := range ch.Entries {
						got = append(got, e.Name)
					}
				}
			}
			if strings.Join(got, ",") != tc.want {
				t.Errorf("kept %v, want %s (warnings %v)", got, tc.want, rep.Warnings)
			}
			var deps []string
			for _, d := range rep.Dependencies {
				deps = append(deps, d.Bundle)
			}
			if strings.Join(deps, ",") != tc.deps {
				t.Errorf("dependencies %v, want %q", deps, tc.deps)
			}
			if _, err := declcfg.ConvertToModel(*out.Config); err != nil {
				t.Errorf("invalid result: %v", err)
			}
		})
	}
	// The dependency q >=2.0.0 <3.0.0 is q.2.0.0 in q's default channel s,
	// never q.3.0.0 from fast.
	out, _, err := Filter(context.Background(), c, imageset.Operator{Packages: []imageset.IncludePackage{{Name: "p"}}, Full: true})
	if err != nil {
		t.Fatal(err)
	}
	q := out.Package("q")
	if q == nil || q.DefaultChannel != "s" || len(out.Config.Channels) != 2 {
		t.Errorf("dependency package: %+v, channels %+v", q, out.Config.Channels)
	}
}

func TestFilterReportsUnresolvableRequirements(t *testing.T) {
	c := graphCatalog(t)
	// Remove q: p.1.2.0's requirement cannot be satisfied.
	cfg := *c.Config
	cfg.Packages = cfg.Packages[:1]
	var chs []declcfg.Channel
	for _, ch := range cfg.Channels {
		if ch.Package == "p" {
			chs = append(chs, ch)
		}
	}
	cfg.Channels = chs
	var bs []declcfg.Bundle
	for _, b := range cfg.Bundles {
		if b.Package == "p" {
			bs = append(bs, b)
		}
	}
	cfg.Bundles = bs
	_, rep, err := Filter(context.Background(), &Catalog{Config: &cfg}, imageset.Operator{Full: true, Packages: []imageset.IncludePackage{{Name: "p"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Warnings) != 1 || rep.Warnings[0].Bundle != "p.1.2.0" || !strings.Contains(rep.Warnings[0].Message, "olm.package.required q >=2.0.0 <3.0.0") {
		t.Errorf("warnings %+v", rep.Warnings)
	}
}

// TestFilterSelectedBundles: packages[].bundles (oc-mirror v2) keeps the
// named bundles of the REAL kairos-operator channel (2.0.1 -> 2.1.0 ->
// 2.1.1 -> 2.2.0, 2.2.0 skipping 2.0.1 and 2.1.0) and only what links them
// to one head; an unknown bundle is an error listing the package's.
func TestFilterSelectedBundles(t *testing.T) {
	c, err := LoadFile(context.Background(), testdata(t, "community-operators-prod-v4.18", "kairos-operator", "catalog.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	kept := func(names ...string) string {
		op := imageset.Operator{SkipDependencies: true, Packages: []imageset.IncludePackage{{Name: "kairos-operator"}}}
		for _, n := range names {
			op.Packages[0].Bundles = append(op.Packages[0].Bundles, imageset.SelectedBundle{Name: n})
		}
		out, _, err := Filter(context.Background(), c, op)
		if err != nil {
			return "error: " + err.Error()
		}
		var got []string
		for _, b := range out.Config.Bundles {
			got = append(got, b.Name)
		}
		sort.Strings(got)
		return strings.Join(got, " ")
	}
	for _, tc := range []struct {
		bundles []string
		want    string
	}{
		{[]string{"kairos-operator.v2.1.1"}, "kairos-operator.v2.1.1"},
		{[]string{"kairos-operator.v2.2.0", "kairos-operator.v2.0.1"}, "kairos-operator.v2.0.1 kairos-operator.v2.2.0"},
		{[]string{"kairos-operator.v9"}, `error: package "kairos-operator": bundle "kairos-operator.v9" does not exist (bundles: kairos-operator.v2.0.1, kairos-operator.v2.1.0, kairos-operator.v2.1.1, kairos-operator.v2.2.0)`},
	} {
		if got := kept(tc.bundles...); got != tc.want {
			t.Errorf("bundles %v: got %q, want %q", tc.bundles, got, tc.want)
		}
	}
}
