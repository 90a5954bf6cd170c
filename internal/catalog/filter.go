package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/blang/semver/v4"
	"github.com/operator-framework/operator-registry/alpha/declcfg"
	"github.com/operator-framework/operator-registry/alpha/property"

	"github.com/airlock-mirror/airlock/internal/imageset"
)

// FilterReport says what a filter kept and why it added what was not asked for.
type FilterReport struct {
	// Packages lists, per kept package, the channels and bundles kept.
	Packages []FilteredPackage `json:"packages"`
	// Dependencies lists what was added because a kept bundle requires it.
	Dependencies []AddedDependency `json:"dependencies,omitempty"`
	// Warnings are tolerated problems (a requirement no bundle in the
	// catalog satisfies, an invalid image reference removed, ...).
	Warnings []Warning `json:"warnings,omitempty"`
}

// FilteredPackage is one package of a filtered catalog.
type FilteredPackage struct {
	Name           string            `json:"name"`
	DefaultChannel string            `json:"defaultChannel"`
	Channels       []FilteredChannel `json:"channels"`
	// Dependency is true when the package was not requested and is only
	// there because a kept bundle requires it.
	Dependency bool `json:"dependency,omitempty"`
}

// FilteredChannel is one kept channel with its kept entries.
type FilteredChannel struct {
	Name    string   `json:"name"`
	Head    string   `json:"head"`
	Bundles []string `json:"bundles"`
}

// AddedDependency is one bundle added to satisfy a requirement.
type AddedDependency struct {
	Package string `json:"package"`
	Channel string `json:"channel"`
	Bundle  string `json:"bundle"`
	// RequiredBy is the bundle whose requirement it satisfies.
	RequiredBy string `json:"requiredBy"`
	// Requirement is the requirement, e.g. `olm.package.required etcd >=0.9.0`
	// or `olm.gvk.required etcd.database.coreos.com/v1beta2 EtcdCluster`.
	Requirement string `json:"requirement"`
}

// Filter returns the part of c that op selects, with the semantics of
// oc-mirror v2's operators[] entries:
//
//   - no packages and full: the whole catalog, unchanged;
//   - no packages, not full: every package, each channel reduced to its head;
//   - a package without channels: all its channels, heads only unless full;
//   - a package with channels: only those channels;
//   - minVersion/maxVersion (package level, or per channel — not both):
//     the entries in range, plus the entries the upgrade graph needs so
//     each channel keeps a single head; full keeps every entry of the kept
//     channels instead of heads;
//   - defaultChannel overrides the package's default channel, and is
//     required when the kept channels exclude the original default.
//
// Beyond oc-mirror, unless op.SkipDependencies is set the bundles the kept
// bundles require (olm.package.required with its version range,
// olm.gvk.required resolved against providers' olm.gvk) are added
// transitively — the highest version that satisfies each requirement,
// preferring the dependency package's default channel — together with the
// upgrade path that connects it to what its channel already keeps, and
// are reported.
//
// The result is validated with operator-registry's model (no empty
// channel, an existing default channel, no dangling reference); when the
// request cannot give a valid catalog the error names the package and
// channel and says why. c is not modified.
func Filter(ctx context.Context, c *Catalog, op imageset.Operator) (*Catalog, *FilterReport, error) {
	if err := validateOperator(op); err != nil {
		return nil, nil, err
	}
	f := &filter{ix: newIndex(c.Config), kept: map[string]map[string]map[string]bool{},
		requested: map[string]bool{}, defaults: map[string]string{}, report: &FilterReport{}}
	if len(op.Packages) == 0 && op.Full {
		// The whole catalog: nothing to select, nothing to resolve.
		for _, ch := range c.Config.Channels {
			for _, e := range ch.Entries {
				f.keep(ch.Package, ch.Name, e.Name)
			}
			f.requested[ch.Package] = true
		}
	} else if len(op.Packages) == 0 {
		for i := range c.Config.Channels {
			ch := &c.Config.Channels[i]
			if h := f.ix.channelHead(ch); h != "" {
				f.keep(ch.Package, ch.Name, h)
			}
			f.requested[ch.Package] = true
		}
	} else {
		for _, p := range op.Packages {
			if err := ctx.Err(); err != nil {
				return nil, nil, err
			}
			if err := f.selectPackage(p, op.Full); err != nil {
				return nil, nil, err
			}
		}
	}
	if !op.SkipDependencies {
		if err := f.resolveDependencies(ctx); err != nil {
			return nil, nil, err
		}
	}
	out, err := f.build(c)
	if err != nil {
		return nil, nil, err
	}
	return out, f.report, nil
}

// validateOperator repeats the imageset checks that matter here, so that
// callers building an Operator in code (the CLI's --package) get the same
// clear errors as a config file.
func validateOperator(op imageset.Operator) error {
	m := imageset.Mirror{Operators: []imageset.Operator{op}}
	if op.Catalog == "" {
		m.Operators[0].Catalog = "catalog"
	}
	return m.Validate()
}

type filter struct {
	ix *index
	// kept: package -> channel -> entry names.
	kept map[string]map[string]map[string]bool
	// requested marks packages the user asked for (the rest are dependencies).
	requested map[string]bool
	// defaults holds default channel overrides.
	defaults map[string]string
	report   *FilterReport
}

func (f *filter) keep(pkg, ch, entry string) bool {
	chs := f.kept[pkg]
	if chs == nil {
		chs = map[string]map[string]bool{}
		f.kept[pkg] = chs
	}
	es := chs[ch]
	if es == nil {
		es = map[string]bool{}
		chs[ch] = es
	}
	if es[entry] {
		return false
	}
	es[entry] = true
	return true
}

func (f *filter) channel(pkg, name string) *declcfg.Channel {
	for _, ch := range f.ix.channels[pkg] {
		if ch.Name == name {
			return ch
		}
	}
	return nil
}

func (f *filter) channelNames(pkg string) []string {
	var out []string
	for _, ch := range f.ix.channels[pkg] {
		out = append(out, ch.Name)
	}
	sort.Strings(out)
	return out
}

// versionRange builds the semver range of min/max; nil when both are empty.
func versionRange(minV, maxV string) (semver.Range, string) {
	var parts []string
	if minV != "" {
		parts = append(parts, ">="+minV)
	}
	if maxV != "" {
		parts = append(parts, "<="+maxV)
	}
	if len(parts) == 0 {
		return nil, ""
	}
	s := strings.Join(parts, " ")
	r, err := semver.ParseRange(s)
	if err != nil { // validated before; keep the error visible anyway
		return func(semver.Version) bool { return false }, s + " (invalid: " + err.Error() + ")"
	}
	return r, s
}

// selectPackage applies one packages[] entry.
func (f *filter) selectPackage(p imageset.IncludePackage, full bool) error {
	pkg := f.ix.pkgs[p.Name]
	if pkg == nil {
		return errNotFound("package", p.Name, sortedKeys(f.ix.pkgs))
	}
	f.requested[p.Name] = true
	type want struct {
		ch       *declcfg.Channel
		minV     string
		maxV     string
		explicit bool
	}
	var wants []want
	if len(p.Channels) == 0 {
		for _, ch := range f.ix.channels[p.Name] {
			wants = append(wants, want{ch, p.MinVersion, p.MaxVersion, false})
		}
	} else {
		for _, ic := range p.Channels {
			ch := f.channel(p.Name, ic.Name)
			if ch == nil {
				return fmt.Errorf("package %q: channel %q does not exist (channels: %s)", p.Name, ic.Name, strings.Join(f.channelNames(p.Name), ", "))
			}
			minV, maxV := ic.MinVersion, ic.MaxVersion
			if minV == "" && maxV == "" {
				minV, maxV = p.MinVersion, p.MaxVersion
			}
			wants = append(wants, want{ch, minV, maxV, true})
		}
	}
	// packages[].bundles: exactly these bundles, in the selected channels
	// that list them (connect below adds what links them to one head).
	byName := map[string]bool{}
	for _, b := range p.Bundles {
		if f.ix.bundles[p.Name][b.Name] == nil {
			return fmt.Errorf("package %q: bundle %q does not exist (bundles: %s)", p.Name, b.Name, strings.Join(sortedKeys(f.ix.bundles[p.Name]), ", "))
		}
		byName[b.Name] = true
	}
	found := map[string]bool{}
	var chNames []string
	for _, w := range wants {
		chNames = append(chNames, w.ch.Name)
		rng, rs := versionRange(w.minV, w.maxV)
		var sel []string
		switch {
		case len(byName) > 0:
			for _, e := range w.ch.Entries {
				if byName[e.Name] {
					sel = append(sel, e.Name)
					found[e.Name] = true
				}
			}
			if len(sel) == 0 {
				if w.explicit {
					return fmt.Errorf("package %q channel %q lists none of the bundles %s", p.Name, w.ch.Name, strings.Join(sortedKeys(byName), ", "))
				}
				continue
			}
		case rng != nil:
			for _, e := range w.ch.Entries {
				if v, ok := f.ix.version(p.Name, e.Name); ok && rng(v) {
					sel = append(sel, e.Name)
				}
			}
		case full:
			for _, e := range w.ch.Entries {
				sel = append(sel, e.Name)
			}
		default:
			if h := f.ix.channelHead(w.ch); h != "" {
				sel = []string{h}
			}
		}
		if len(sel) == 0 {
			if w.explicit {
				return fmt.Errorf("package %q channel %q: no bundle in version range %s (channel versions: %s)", p.Name, w.ch.Name, rs, strings.Join(f.channelVersions(w.ch), ", "))
			}
			continue // a package-level range simply leaves this channel out
		}
		for _, e := range sel {
			f.keep(p.Name, w.ch.Name, e)
		}
		if err := f.connect(p.Name, w.ch.Name); err != nil {
			return err
		}
	}
	for b := range byName {
		if !found[b] {
			return fmt.Errorf("package %q: bundle %q is in none of the selected channels (%s)", p.Name, b, strings.Join(chNames, ", "))
		}
	}
	if len(f.kept[p.Name]) == 0 {
		_, rs := versionRange(p.MinVersion, p.MaxVersion)
		return fmt.Errorf("package %q: no bundle in version range %s in any channel (versions: %s)", p.Name, rs, strings.Join(f.packageVersions(p.Name), ", "))
	}
	def := pkg.DefaultChannel
	if p.DefaultChannel != "" {
		if f.channel(p.Name, p.DefaultChannel) == nil {
			return fmt.Errorf("package %q: defaultChannel %q does not exist (channels: %s)", p.Name, p.DefaultChannel, strings.Join(f.channelNames(p.Name), ", "))
		}
		def = p.DefaultChannel
		f.defaults[p.Name] = def
	}
	if f.kept[p.Name][def] == nil {
		return fmt.Errorf("package %q: the selection keeps channels %s but not the default channel %q; add it to channels, or set defaultChannel to one of the kept channels",
			p.Name, strings.Join(sortedKeys(f.kept[p.Name]), ", "), def)
	}
	return nil
}

func (f *filter) channelVersions(ch *declcfg.Channel) []string {
	var vs []semver.Version
	for _, e := range ch.Entries {
		if v, ok := f.ix.version(ch.Package, e.Name); ok {
			vs = append(vs, v)
		}
	}
	return versionStrings(vs)
}

func (f *filter) packageVersions(pkg string) []string {
	var vs []semver.Version
	for _, b := range f.ix.bundles[pkg] {
		if v, ok := f.ix.versions[b]; ok {
			vs = append(vs, v)
		}
	}
	return versionStrings(vs)
}

// versionStrings sorts versions semantically (3.10.2 before 3.10.10) and
// removes duplicates.
func versionStrings(vs []semver.Version) []string {
	semver.Sort(vs)
	var out []string
	for i, v := range vs {
		if i > 0 && v.EQ(vs[i-1]) {
			continue
		}
		out = append(out, v.String())
	}
	return out
}

// connect makes the kept entries of one channel a valid upgrade graph with
// a single head, the way OLM's model checks it: exactly one entry nobody
// replaces or skips, and every entry either on the replaces chain from
// that head or skipped by a kept entry. Entries the graph needs are added
// from the source channel (the replaces chain between the head and each
// kept entry); an entry that cannot be connected is dropped with a warning.
func (f *filter) connect(pkg, chName string) error {
	ch := f.channel(pkg, chName)
	kept := f.kept[pkg][chName]
	byName := make(map[string]*declcfg.ChannelEntry, len(ch.Entries))
	for i := range ch.Entries {
		byName[ch.Entries[i].Name] = &ch.Entries[i]
	}
	// The head is the highest kept entry that no kept entry replaces or skips.
	incoming := map[string]bool{}
	for n := range kept {
		e := byName[n]
		incoming[e.Replaces] = true
		for _, s := range e.Skips {
			incoming[s] = true
		}
	}
	head := ""
	heads := 0
	var headV semver.Version
	for n := range kept {
		if incoming[n] {
			continue
		}
		heads++
		v, _ := f.ix.version(pkg, n)
		if head == "" || v.GT(headV) || (v.EQ(headV) && n > head) {
			head, headV = n, v
		}
	}
	if head == "" {
		return fmt.Errorf("package %q channel %q: the kept bundles form a cycle (replaces/skips), no channel head", pkg, chName)
	}
	if heads > 1 {
		// Several kept entries are unrelated (e.g. a range holding a
		// skipped side entry): the lowest entry of the channel's replaces
		// chain from which all of them can be reached joins them, even if
		// it lies above the range.
		if j := f.joiningHead(ch, byName, kept); j != "" {
			kept[j] = true
			head = j
		}
	}
	// The full replaces chain below the head in the source channel.
	chain := []string{head}
	pos := map[string]int{head: 0}
	for cur := byName[head]; cur != nil && byName[cur.Replaces] != nil; cur = byName[cur.Replaces] {
		if _, loop := pos[cur.Replaces]; loop {
			break
		}
		pos[cur.Replaces] = len(chain)
		chain = append(chain, cur.Replaces)
	}
	for changed := true; changed; {
		changed = false
		skipped := map[string]bool{}
		for n := range kept {
			for _, s := range byName[n].Skips {
				skipped[s] = true
			}
		}
		// Walk the chain like the model does: stop where the next replaces
		// is skipped by a kept entry.
		onChain := map[string]bool{head: true}
		for i := 0; i+1 < len(chain); i++ {
			if skipped[chain[i+1]] || !kept[chain[i+1]] {
				break
			}
			onChain[chain[i+1]] = true
		}
		for _, n := range sortedKeys(kept) {
			if onChain[n] || skipped[n] {
				continue
			}
			// Stranded: connect it through the replaces chain from the
			// head, or else make the highest chain entry that skips it kept.
			if p, ok := pos[n]; ok && addChain(kept, chain, p) {
				changed = true
				continue
			}
			if t := skipperOnChain(byName, chain, n); t >= 0 && addChain(kept, chain, t) {
				changed = true
				continue
			}
			delete(kept, n)
			f.report.Warnings = append(f.report.Warnings, Warning{Package: pkg, Bundle: n, Field: "channel " + chName,
				Message: fmt.Sprintf("not on the upgrade path of the channel head %s; left out so the channel keeps a single head", head)})
			changed = true
		}
	}
	return nil
}

// requirement is one dependency of a bundle.
type requirement struct {
	pkg  string       // olm.package.required package
	rng  semver.Range // its range
	text string       // for reports
	gvk  *property.GVKRequired
}

func bundleRequirements(b *declcfg.Bundle) ([]requirement, error) {
	var out []requirement
	var errs []error
	for _, p := range b.Properties {
		switch p.Type {
		case property.TypePackageRequired:
			var pr property.PackageRequired
			if err := json.Unmarshal(p.Value, &pr); err != nil {
				errs = append(errs, fmt.Errorf("%s property: %w; requirement ignored", p.Type, err))
				continue
			}
			r, err := semver.ParseRange(pr.VersionRange)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s %s: version range %q: %w; requirement ignored", p.Type, pr.PackageName, pr.VersionRange, err))
				continue
			}
			out = append(out, requirement{pkg: pr.PackageName, rng: r, text: fmt.Sprintf("%s %s %s", p.Type, pr.PackageName, pr.VersionRange)})
		case property.TypeGVKRequired:
			var g property.GVKRequired
			if err := json.Unmarshal(p.Value, &g); err != nil {
				errs = append(errs, fmt.Errorf("%s property: %w; requirement ignored", p.Type, err))
				continue
			}
			out = append(out, requirement{gvk: &g, text: fmt.Sprintf("%s %s/%s %s", p.Type, g.Group, g.Version, g.Kind)})
		case property.TypeConstraint:
			// CEL and compound constraints need OLM's resolver; say so
			// instead of silently mirroring an operator that may not install.
			errs = append(errs, fmt.Errorf("%s %s is not resolved by airlock; select what it needs with packages[]", p.Type, string(p.Value)))
		}
	}
	// Package requirements first: they name a package and a range, and
	// the bundle they bring usually provides the required APIs too, so
	// resolving GVKs afterwards avoids adding a second, unneeded provider.
	sort.SliceStable(out, func(i, j int) bool { return out[i].gvk == nil && out[j].gvk != nil })
	return out, errors.Join(errs...)
}

func providedGVKs(b *declcfg.Bundle) []property.GVK {
	var out []property.GVK
	for _, p := range b.Properties {
		if p.Type != property.TypeGVK {
			continue
		}
		var g property.GVK
		if json.Unmarshal(p.Value, &g) == nil {
			out = append(out, g)
		}
	}
	return out
}

// resolveDependencies adds, transitively, what kept bundles require.
func (f *filter) resolveDependencies(ctx context.Context) error {
	provides := map[property.GVK][]*declcfg.Bundle{}
	for i := range f.ix.cfg.Bundles {
		b := &f.ix.cfg.Bundles[i]
		for _, g := range providedGVKs(b) {
			provides[g] = append(provides[g], b)
		}
	}
	done := map[*declcfg.Bundle]bool{}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		// Snapshot the kept bundles not yet examined, in a stable order.
		var todo []*declcfg.Bundle
		for _, pkg := range sortedKeys(f.kept) {
			seen := map[string]bool{}
			for _, ch := range sortedKeys(f.kept[pkg]) {
				for _, n := range sortedKeys(f.kept[pkg][ch]) {
					b := f.ix.bundle(pkg, n)
					if b != nil && !done[b] && !seen[n] {
						seen[n] = true
						todo = append(todo, b)
					}
				}
			}
		}
		if len(todo) == 0 {
			return nil
		}
		for _, b := range todo {
			done[b] = true
			reqs, err := bundleRequirements(b)
			if err != nil {
				// Resolve what could be read; report the rest.
				f.report.Warnings = append(f.report.Warnings, Warning{Package: b.Package, Bundle: b.Name, Field: "properties", Message: err.Error()})
			}
			for _, r := range reqs {
				var cands []*declcfg.Bundle
				if r.gvk != nil {
					cands = provides[property.GVK{Group: r.gvk.Group, Version: r.gvk.Version, Kind: r.gvk.Kind}]
				} else {
					for _, cb := range f.ix.bundles[r.pkg] {
						if v, ok := f.ix.versions[cb]; ok && r.rng(v) {
							cands = append(cands, cb)
						}
					}
				}
				if f.anyKept(cands) {
					continue
				}
				pick, ch := f.pickDependency(cands)
				if pick == nil {
					f.report.Warnings = append(f.report.Warnings, Warning{Package: b.Package, Bundle: b.Name, Field: "properties",
						Message: fmt.Sprintf("requires %s, which no bundle in a channel of this catalog satisfies; the operator will not install from this catalog", r.text)})
					continue
				}
				f.keep(pick.Package, ch, pick.Name)
				if err := f.connect(pick.Package, ch); err != nil {
					return err
				}
				if _, ok := f.defaults[pick.Package]; !ok && !f.requested[pick.Package] {
					if def := f.ix.pkgs[pick.Package].DefaultChannel; f.kept[pick.Package][def] == nil {
						// A dependency-only package must still have a default
						// channel that exists; OLM resolves dependencies
						// across all channels, so pointing it at the kept
						// channel changes nothing for the dependent operator.
						f.defaults[pick.Package] = ch
						f.report.Warnings = append(f.report.Warnings, Warning{Package: pick.Package,
							Message: fmt.Sprintf("default channel set to %q (the original default %q is not needed by any kept bundle)", ch, def)})
					}
				}
				f.report.Dependencies = append(f.report.Dependencies, AddedDependency{Package: pick.Package, Channel: ch, Bundle: pick.Name,
					RequiredBy: b.Package + "/" + b.Name, Requirement: r.text})
			}
		}
	}
}

func (f *filter) anyKept(bs []*declcfg.Bundle) bool {
	for _, b := range bs {
		for _, es := range f.kept[b.Package] {
			if es[b.Name] {
				return true
			}
		}
	}
	return false
}

// pickDependency chooses the bundle that satisfies a requirement: the
// highest version, preferring a package already kept, then the package's
// default channel. It returns the bundle and the channel to add it to.
func (f *filter) pickDependency(cands []*declcfg.Bundle) (*declcfg.Bundle, string) {
	var best *declcfg.Bundle
	bestCh := ""
	score := func(b *declcfg.Bundle, ch string) (int, semver.Version) {
		s := 0
		if f.kept[b.Package] != nil {
			s += 2
		}
		if p := f.ix.pkgs[b.Package]; p != nil && p.DefaultChannel == ch {
			s++
		}
		return s, f.ix.versions[b]
	}
	for _, b := range cands {
		// The channels that contain b; prefer the default one.
		var chs []string
		for _, c := range f.ix.channels[b.Package] {
			for _, e := range c.Entries {
				if e.Name == b.Name {
					chs = append(chs, c.Name)
				}
			}
		}
		for _, ch := range chs {
			if best == nil {
				best, bestCh = b, ch
				continue
			}
			s1, v1 := score(b, ch)
			s0, v0 := score(best, bestCh)
			if v1.GT(v0) || (v1.EQ(v0) && (s1 > s0 || (s1 == s0 && b.Package+ch < best.Package+bestCh))) {
				best, bestCh = b, ch
			}
		}
	}
	return best, bestCh
}

// build assembles the filtered catalog and validates it.
func (f *filter) build(src *Catalog) (*Catalog, error) {
	cfg := &declcfg.DeclarativeConfig{}
	keptBundle := map[string]map[string]bool{}
	for _, p := range src.Config.Packages {
		if f.kept[p.Name] == nil {
			continue
		}
		if d, ok := f.defaults[p.Name]; ok {
			p.DefaultChannel = d
		}
		cfg.Packages = append(cfg.Packages, p)
		fp := FilteredPackage{Name: p.Name, DefaultChannel: p.DefaultChannel, Dependency: !f.requested[p.Name]}
		for i := range src.Config.Channels {
			ch := src.Config.Channels[i]
			es := f.kept[p.Name][ch.Name]
			if ch.Package != p.Name || len(es) == 0 {
				continue
			}
			entries := make([]declcfg.ChannelEntry, 0, len(es))
			fc := FilteredChannel{Name: ch.Name}
			for _, e := range ch.Entries {
				if es[e.Name] {
					entries = append(entries, e)
					fc.Bundles = append(fc.Bundles, e.Name)
					if keptBundle[p.Name] == nil {
						keptBundle[p.Name] = map[string]bool{}
					}
					keptBundle[p.Name][e.Name] = true
				}
			}
			ch.Entries = entries
			fc.Head = f.ix.channelHead(&ch)
			cfg.Channels = append(cfg.Channels, ch)
			fp.Channels = append(fp.Channels, fc)
		}
		f.report.Packages = append(f.report.Packages, fp)
	}
	for _, b := range src.Config.Bundles {
		if !keptBundle[b.Package][b.Name] {
			continue
		}
		b.RelatedImages = append([]declcfg.RelatedImage(nil), b.RelatedImages...)
		f.dropInvalidImages(&b)
		cfg.Bundles = append(cfg.Bundles, b)
	}
	for _, d := range src.Config.Deprecations {
		if f.kept[d.Package] == nil {
			continue
		}
		var entries []declcfg.DeprecationEntry
		for _, e := range d.Entries {
			switch e.Reference.Schema {
			case declcfg.SchemaPackage:
				entries = append(entries, e)
			case declcfg.SchemaChannel:
				if f.kept[d.Package][e.Reference.Name] != nil {
					entries = append(entries, e)
				}
			case declcfg.SchemaBundle:
				if keptBundle[d.Package][e.Reference.Name] {
					entries = append(entries, e)
				}
			}
		}
		if len(entries) > 0 {
			d.Entries = entries
			cfg.Deprecations = append(cfg.Deprecations, d)
		}
	}
	for _, m := range src.Config.Others {
		if m.Package == "" || f.kept[m.Package] != nil {
			cfg.Others = append(cfg.Others, m)
		}
	}
	if _, err := declcfg.ConvertToModel(*cfg); err != nil {
		return nil, fmt.Errorf("the filtered catalog is not valid: %w", err)
	}
	out := &Catalog{Config: cfg, Format: FormatFBC, Source: src.Source, Labels: src.Labels,
		ConfigsDir: src.ConfigsDir, DatabasePath: src.DatabasePath}
	if src.Format == FormatSQLite {
		out.Format = FormatSQLite
	}
	return out, nil
}

// dropInvalidImages blanks an invalid bundle image and removes invalid
// related images, with a warning each: opm serve refuses a catalog holding
// one, so keeping them would make the rebuilt catalog pod crash.
func (f *filter) dropInvalidImages(b *declcfg.Bundle) {
	if b.Image != "" {
		if _, err := parseImageRef(b.Image); err != nil {
			f.report.Warnings = append(f.report.Warnings, Warning{Package: b.Package, Bundle: b.Name, Field: "image",
				Message: err.Error() + "; removed from the filtered catalog"})
			b.Image = ""
		}
	}
	keep := b.RelatedImages[:0]
	for i, ri := range b.RelatedImages {
		if _, err := parseImageRef(ri.Image); err != nil {
			f.report.Warnings = append(f.report.Warnings, Warning{Package: b.Package, Bundle: b.Name, Field: fmt.Sprintf("relatedImages[%d].image", i),
				Message: err.Error() + "; removed from the filtered catalog"})
			continue
		}
		keep = append(keep, ri)
	}
	b.RelatedImages = keep
}

// joiningHead returns the deepest entry on the source channel's replaces
// chain (from its head) from which every kept entry is reachable through
// replaces and skips edges, or "" when there is none.
func (f *filter) joiningHead(ch *declcfg.Channel, byName map[string]*declcfg.ChannelEntry, kept map[string]bool) string {
	top := f.ix.channelHead(ch)
	var chain []string
	seen := map[string]bool{}
	for cur := byName[top]; cur != nil && !seen[cur.Name]; cur = byName[cur.Replaces] {
		seen[cur.Name] = true
		chain = append(chain, cur.Name)
	}
	reaches := func(from string) bool {
		reach := map[string]bool{from: true}
		stack := []string{from}
		for len(stack) > 0 {
			e := byName[stack[len(stack)-1]]
			stack = stack[:len(stack)-1]
			if e == nil {
				continue
			}
			for _, next := range append([]string{e.Replaces}, e.Skips...) {
				if next != "" && !reach[next] {
					reach[next] = true
					stack = append(stack, next)
				}
			}
		}
		for n := range kept {
			if !reach[n] {
				return false
			}
		}
		return true
	}
	best := ""
	for _, c := range chain {
		if !reaches(c) {
			break
		}
		best = c
	}
	return best
}

// addChain keeps chain[0..upto]; it reports whether anything was added.
func addChain(kept map[string]bool, chain []string, upto int) bool {
	added := false
	for i := 0; i <= upto; i++ {
		if !kept[chain[i]] {
			kept[chain[i]] = true
			added = true
		}
	}
	return added
}

// skipperOnChain returns the position of the highest chain entry that
// skips name, or -1.
func skipperOnChain(byName map[string]*declcfg.ChannelEntry, chain []string, name string) int {
	for i, cn := range chain {
		for _, s := range byName[cn].Skips {
			if s == name {
				return i
			}
		}
	}
	return -1
}
