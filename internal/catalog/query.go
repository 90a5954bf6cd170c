package catalog

import (
	"encoding/json"
	"fmt"
	"path"
	"sort"

	"github.com/blang/semver/v4"
	"github.com/operator-framework/operator-registry/alpha/declcfg"
	"github.com/operator-framework/operator-registry/alpha/property"
)

// Selector narrows a query. Empty fields select everything.
type Selector struct {
	// Packages keeps only these packages.
	Packages []string
	// Channels keeps only these channels (in whichever selected package has them).
	Channels []string
	// Bundle is a shell glob (path.Match syntax) on bundle names.
	Bundle string
	// VersionRange is a blang/semver range on bundle versions, e.g.
	// ">=1.2.0 <2.0.0".
	VersionRange string
}

// PackageInfo summarises one package.
type PackageInfo struct {
	Name           string   `json:"name"`
	DefaultChannel string   `json:"defaultChannel"`
	Channels       []string `json:"channels"`
	// Head and HeadVersion are the head bundle of the default channel.
	Head        string `json:"head,omitempty"`
	HeadVersion string `json:"headVersion,omitempty"`
	// Bundles counts the package's distinct bundles (in the selection).
	Bundles int `json:"bundles"`
}

// ChannelInfo summarises one channel.
type ChannelInfo struct {
	Package     string `json:"package"`
	Name        string `json:"name"`
	Default     bool   `json:"default"`
	Head        string `json:"head,omitempty"`
	HeadVersion string `json:"headVersion,omitempty"`
	// Bundles counts the channel's entries (in the selection).
	Bundles int `json:"bundles"`
}

// BundleInfo describes one bundle.
type BundleInfo struct {
	Package  string   `json:"package"`
	Name     string   `json:"name"`
	Version  string   `json:"version"`
	Image    string   `json:"image"`
	Channels []string `json:"channels"`
	// Replaces, Skips and SkipRange are the bundle's upgrade edges, from
	// the first selected channel that lists it.
	Replaces  string   `json:"replaces,omitempty"`
	Skips     []string `json:"skips,omitempty"`
	SkipRange string   `json:"skipRange,omitempty"`
	// RelatedImages counts the bundle's related images.
	RelatedImages int `json:"relatedImages"`
}

// index is a lookup structure over a DeclarativeConfig, built per query
// or filter; catalogs are small enough that rebuilding it is cheaper than
// keeping it coherent under mutation.
type index struct {
	cfg      *declcfg.DeclarativeConfig
	pkgs     map[string]*declcfg.Package
	channels map[string][]*declcfg.Channel         // by package
	bundles  map[string]map[string]*declcfg.Bundle // package -> name -> bundle
	versions map[*declcfg.Bundle]semver.Version
	verErr   map[*declcfg.Bundle]error
}

func newIndex(cfg *declcfg.DeclarativeConfig) *index {
	ix := &index{
		cfg:      cfg,
		pkgs:     map[string]*declcfg.Package{},
		channels: map[string][]*declcfg.Channel{},
		bundles:  map[string]map[string]*declcfg.Bundle{},
		versions: map[*declcfg.Bundle]semver.Version{},
		verErr:   map[*declcfg.Bundle]error{},
	}
	for i := range cfg.Packages {
		ix.pkgs[cfg.Packages[i].Name] = &cfg.Packages[i]
	}
	for i := range cfg.Channels {
		ch := &cfg.Channels[i]
		ix.channels[ch.Package] = append(ix.channels[ch.Package], ch)
	}
	for i := range cfg.Bundles {
		b := &cfg.Bundles[i]
		m := ix.bundles[b.Package]
		if m == nil {
			m = map[string]*declcfg.Bundle{}
			ix.bundles[b.Package] = m
		}
		m[b.Name] = b
		v, err := bundleVersion(b)
		if err != nil {
			ix.verErr[b] = err
		} else {
			ix.versions[b] = v
		}
	}
	return ix
}

// bundle returns the bundle of pkg named name, or nil.
func (ix *index) bundle(pkg, name string) *declcfg.Bundle { return ix.bundles[pkg][name] }

// version returns the semver of the bundle named name in pkg.
func (ix *index) version(pkg, name string) (semver.Version, bool) {
	b := ix.bundle(pkg, name)
	if b == nil {
		return semver.Version{}, false
	}
	v, ok := ix.versions[b]
	return v, ok
}

// bundleVersion reads the version from the bundle's olm.package property.
func bundleVersion(b *declcfg.Bundle) (semver.Version, error) {
	for _, p := range b.Properties {
		if p.Type != property.TypePackage {
			continue
		}
		var pp property.Package
		if err := json.Unmarshal(p.Value, &pp); err != nil {
			return semver.Version{}, fmt.Errorf("bundle %s: olm.package property: %w", b.Name, err)
		}
		v, err := semver.Parse(pp.Version)
		if err != nil {
			return semver.Version{}, fmt.Errorf("bundle %s: version %q: %w", b.Name, pp.Version, err)
		}
		return v, nil
	}
	return semver.Version{}, fmt.Errorf("bundle %s: no olm.package property, version unknown", b.Name)
}

// channelHead returns the entry of ch that no other entry replaces or
// skips — the bundle OLM installs from that channel. When the graph has
// several such entries (a broken channel) the highest version wins, which
// is what operator-registry's model picks too.
func (ix *index) channelHead(ch *declcfg.Channel) string {
	incoming := map[string]bool{}
	for _, e := range ch.Entries {
		if e.Replaces != "" {
			incoming[e.Replaces] = true
		}
		for _, s := range e.Skips {
			incoming[s] = true
		}
	}
	var best string
	var bestV semver.Version
	for _, e := range ch.Entries {
		if incoming[e.Name] {
			continue
		}
		v, _ := ix.version(ch.Package, e.Name)
		if best == "" || v.GT(bestV) || (v.EQ(bestV) && e.Name > best) {
			best, bestV = e.Name, v
		}
	}
	return best
}

// compiledSelector is a Selector with its range and glob checked.
type compiledSelector struct {
	pkgs, chans map[string]bool
	glob        string
	rng         semver.Range
}

func compileSelector(ix *index, sel Selector) (*compiledSelector, error) {
	cs := &compiledSelector{glob: sel.Bundle}
	if len(sel.Packages) > 0 {
		cs.pkgs = map[string]bool{}
		for _, p := range sel.Packages {
			if ix.pkgs[p] == nil {
				return nil, errNotFound("package", p, sortedKeys(ix.pkgs))
			}
			cs.pkgs[p] = true
		}
	}
	if len(sel.Channels) > 0 {
		cs.chans = map[string]bool{}
		for _, c := range sel.Channels {
			found := false
			var all []string
			for pkg, chs := range ix.channels {
				if cs.pkgs != nil && !cs.pkgs[pkg] {
					continue
				}
				for _, ch := range chs {
					all = append(all, ch.Name)
					if ch.Name == c {
						found = true
					}
				}
			}
			if !found {
				return nil, errNotFound("channel", c, uniqueSorted(all))
			}
			cs.chans[c] = true
		}
	}
	if sel.Bundle != "" {
		if _, err := path.Match(sel.Bundle, ""); err != nil {
			return nil, fmt.Errorf("--bundle %q: bad glob: %w", sel.Bundle, err)
		}
	}
	if sel.VersionRange != "" {
		r, err := semver.ParseRange(sel.VersionRange)
		if err != nil {
			return nil, fmt.Errorf("--version %q: %w (want a semver range such as \">=1.2.0 <2.0.0\")", sel.VersionRange, err)
		}
		cs.rng = r
	}
	return cs, nil
}

func (cs *compiledSelector) pkg(name string) bool { return cs.pkgs == nil || cs.pkgs[name] }
func (cs *compiledSelector) ch(name string) bool  { return cs.chans == nil || cs.chans[name] }

// bundle reports whether the bundle matches the glob and range.
func (cs *compiledSelector) bundle(ix *index, b *declcfg.Bundle) bool {
	if cs.glob != "" {
		if ok, _ := path.Match(cs.glob, b.Name); !ok {
			return false
		}
	}
	if cs.rng != nil {
		v, ok := ix.versions[b]
		if !ok || !cs.rng(v) {
			return false
		}
	}
	return true
}

// selectedBundles returns the bundles matching sel with the selected
// channels each appears in, in catalog order.
func (ix *index) selectedBundles(cs *compiledSelector) ([]*declcfg.Bundle, map[*declcfg.Bundle][]*declcfg.Channel) {
	in := map[*declcfg.Bundle][]*declcfg.Channel{}
	for i := range ix.cfg.Channels {
		ch := &ix.cfg.Channels[i]
		if !cs.pkg(ch.Package) || !cs.ch(ch.Name) {
			continue
		}
		for _, e := range ch.Entries {
			if b := ix.bundle(ch.Package, e.Name); b != nil {
				in[b] = append(in[b], ch)
			}
		}
	}
	var out []*declcfg.Bundle
	for i := range ix.cfg.Bundles {
		b := &ix.cfg.Bundles[i]
		if !cs.pkg(b.Package) {
			continue
		}
		// A bundle in no channel is only listed when channels are not
		// being selected: it exists in the catalog but OLM never serves it.
		if cs.chans != nil && len(in[b]) == 0 {
			continue
		}
		if !cs.bundle(ix, b) {
			continue
		}
		out = append(out, b)
	}
	return out, in
}

// Packages summarises the packages matching sel; bundle counts honour the
// channel, glob and version parts of sel.
func (c *Catalog) Packages(sel Selector) ([]PackageInfo, error) {
	ix := newIndex(c.Config)
	cs, err := compileSelector(ix, sel)
	if err != nil {
		return nil, err
	}
	bundles, _ := ix.selectedBundles(cs)
	count := map[string]int{}
	for _, b := range bundles {
		count[b.Package]++
	}
	var out []PackageInfo
	for _, p := range c.Config.Packages {
		if !cs.pkg(p.Name) {
			continue
		}
		pi := PackageInfo{Name: p.Name, DefaultChannel: p.DefaultChannel, Bundles: count[p.Name]}
		for _, ch := range ix.channels[p.Name] {
			if !cs.ch(ch.Name) {
				continue
			}
			pi.Channels = append(pi.Channels, ch.Name)
			if ch.Name == p.DefaultChannel {
				pi.Head = ix.channelHead(ch)
				if v, ok := ix.version(p.Name, pi.Head); ok {
					pi.HeadVersion = v.String()
				}
			}
		}
		if cs.chans != nil && len(pi.Channels) == 0 {
			continue
		}
		out = append(out, pi)
	}
	return out, nil
}

// Channels summarises the channels matching sel.
func (c *Catalog) Channels(sel Selector) ([]ChannelInfo, error) {
	ix := newIndex(c.Config)
	cs, err := compileSelector(ix, sel)
	if err != nil {
		return nil, err
	}
	var out []ChannelInfo
	for i := range c.Config.Channels {
		ch := &c.Config.Channels[i]
		if !cs.pkg(ch.Package) || !cs.ch(ch.Name) {
			continue
		}
		ci := ChannelInfo{Package: ch.Package, Name: ch.Name, Head: ix.channelHead(ch)}
		if p := ix.pkgs[ch.Package]; p != nil {
			ci.Default = p.DefaultChannel == ch.Name
		}
		if v, ok := ix.version(ch.Package, ci.Head); ok {
			ci.HeadVersion = v.String()
		}
		for _, e := range ch.Entries {
			if b := ix.bundle(ch.Package, e.Name); b != nil && cs.bundle(ix, b) {
				ci.Bundles++
			}
		}
		if (cs.glob != "" || cs.rng != nil) && ci.Bundles == 0 {
			continue
		}
		out = append(out, ci)
	}
	return out, nil
}

// Bundles describes the bundles matching sel.
func (c *Catalog) Bundles(sel Selector) ([]BundleInfo, error) {
	ix := newIndex(c.Config)
	cs, err := compileSelector(ix, sel)
	if err != nil {
		return nil, err
	}
	bundles, in := ix.selectedBundles(cs)
	out := make([]BundleInfo, 0, len(bundles))
	for _, b := range bundles {
		bi := BundleInfo{Package: b.Package, Name: b.Name, Image: b.Image, RelatedImages: len(b.RelatedImages)}
		if v, ok := ix.versions[b]; ok {
			bi.Version = v.String()
		}
		for i, ch := range in[b] {
			bi.Channels = append(bi.Channels, ch.Name)
			if i == 0 {
				for _, e := range ch.Entries {
					if e.Name == b.Name {
						bi.Replaces, bi.Skips, bi.SkipRange = e.Replaces, e.Skips, e.SkipRange
					}
				}
			}
		}
		out = append(out, bi)
	}
	// By package, then version: the order a reader expects (3.10.2 before
	// 3.10.10), which name order does not give.
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Package != b.Package {
			return a.Package < b.Package
		}
		va, ea := semver.Parse(a.Version)
		vb, eb := semver.Parse(b.Version)
		if ea == nil && eb == nil && !va.EQ(vb) {
			return va.LT(vb)
		}
		return a.Name < b.Name
	})
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func uniqueSorted(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}
