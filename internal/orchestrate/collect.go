package orchestrate

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/airlock-mirror/airlock/internal/catalogimage"
	"github.com/airlock-mirror/airlock/internal/catalogmirror"
	"github.com/airlock-mirror/airlock/internal/imageset"
	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/release/graph"
)

// Images is the read (and, for rebuilt catalogs, write) access collectors
// and the executor need; *engine.Engine provides it on every transport.
type Images = catalogimage.Images

// Input is what every section collector gets.
type Input struct {
	Config *imageset.ImageSetConfiguration
	// ConfigFile names the config in origins and messages.
	ConfigFile string
	Images     Images
	// Root is the destination root items are named under: file:// (the
	// local store) for mirror-to-disk, docker://host[/prefix] otherwise.
	Root ref.Ref
	// Graph answers update-graph queries for mirror.platform.channels.
	Graph graph.Fetcher
	// Warn reports something the user should know but that does not stop
	// the run (skipped references, added dependencies).
	Warn func(string)
	// WorkDir is DIR/working-dir, where collectors keep what they fetch
	// (helm chart archives); "" when the run has none.
	WorkDir string
	// GraphData configures the graph-data image (mirror.platform.graph).
	GraphData GraphData
}

// Name is the oc-mirror v2 destination of src below in.Root.
func (in *Input) Name(src ref.Ref) (ref.Ref, error) { return DestFor(src, in.Root), nil }

func (in *Input) warn(format string, a ...any) {
	if in.Warn != nil {
		in.Warn(fmt.Sprintf(format, a...))
	}
}

// Collection is what one collector found.
type Collection struct {
	Items []plan.Item
	// Catalogs are the operator catalogs of the run; a filtered one is
	// rebuilt by the executor instead of copied.
	Catalogs []CatalogJob
	// Releases are the resolved release payloads (for signatures and the
	// UpdateService).
	Releases []ReleaseInfo
}

// Collector collects one section of mirror:.
type Collector interface {
	// Section names the config section, "platform", "operators", ...
	Section() string
	Collect(ctx context.Context, in *Input) (*Collection, error)
}

var (
	registryMu sync.Mutex
	collectors []Collector
)

// Register adds a section collector; CollectAll runs them in registration
// order. Registering the same section twice panics (a programming error).
func Register(c Collector) {
	registryMu.Lock()
	defer registryMu.Unlock()
	for _, have := range collectors {
		if have.Section() == c.Section() {
			panic("orchestrate: collector for section " + c.Section() + " registered twice")
		}
	}
	collectors = append(collectors, c)
}

// Collectors returns the registered collectors in order.
func Collectors() []Collector {
	registryMu.Lock()
	defer registryMu.Unlock()
	return append([]Collector(nil), collectors...)
}

func init() {
	Register(platformCollector{})
	Register(operatorsCollector{})
	Register(additionalCollector{})
	Register(helmCollector{})
	Register(graphCollector{})
}

// Blocked is an image removed from the plan by mirror.blockedImages.
type Blocked struct {
	Image   string      `json:"image"`
	Pattern string      `json:"pattern"`
	Kind    plan.Kind   `json:"kind"`
	Origin  plan.Origin `json:"origin,omitempty"`
}

// Collected is the plan of a whole config.
type Collected struct {
	Plan     plan.Plan
	Catalogs []CatalogJob
	Releases []ReleaseInfo
	Blocked  []Blocked
}

// CollectAll runs every registered collector over in, merges the items,
// and removes the blocked images. Errors name the section.
func CollectAll(ctx context.Context, in *Input) (*Collected, error) {
	block, err := blockedPatterns(in.Config.Mirror.BlockedImages, in.ConfigFile)
	if err != nil {
		return nil, err
	}
	out := &Collected{}
	var items []plan.Item
	for _, c := range Collectors() {
		col, err := c.Collect(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("%s: mirror.%s: %w", in.ConfigFile, c.Section(), err)
		}
		if col == nil {
			continue
		}
		items = append(items, col.Items...)
		out.Releases = append(out.Releases, col.Releases...)
		for _, cj := range col.Catalogs {
			if pat := block.match(cj.Item); pat != "" {
				out.Blocked = append(out.Blocked, Blocked{Image: cj.Item.Source.String(), Pattern: pat, Kind: plan.KindCatalog, Origin: cj.Item.Origin})
				continue
			}
			out.Catalogs = append(out.Catalogs, cj)
		}
	}
	for _, it := range mergeItems(items) {
		if pat := block.match(it); pat != "" {
			out.Blocked = append(out.Blocked, Blocked{Image: it.Source.String(), Pattern: pat, Kind: it.Kind, Origin: it.Origin})
			continue
		}
		out.Plan.Add(it)
	}
	if err := out.Plan.Validate(); err != nil {
		return nil, err
	}
	return out, nil
}

// mergeItems makes one item per source (an image named by two sections is
// read once), destinations and origins merged, order kept.
func mergeItems(items []plan.Item) []plan.Item {
	at := map[string]int{}
	var out []plan.Item
	for _, it := range items {
		k := it.Source.String()
		i, ok := at[k]
		if !ok {
			at[k] = len(out)
			out = append(out, it)
			continue
		}
		m := &out[i]
		for _, d := range it.Dests {
			if !hasRef(m.Dests, d) {
				m.Dests = append(m.Dests, d)
			}
		}
		m.Origin.Packages = mergeSorted(m.Origin.Packages, it.Origin.Packages)
		m.Origin.Bundles = mergeSorted(m.Origin.Bundles, it.Origin.Bundles)
		m.Origin.Chart = joinUnique(m.Origin.Chart, it.Origin.Chart)
		m.Origin.File = joinUnique(m.Origin.File, it.Origin.File)
		m.Origin.Component = joinUnique(m.Origin.Component, it.Origin.Component)
		m.Origin.Release = joinUnique(m.Origin.Release, it.Origin.Release)
		m.Origin.Catalog = joinUnique(m.Origin.Catalog, it.Origin.Catalog)
		if m.Digest == "" {
			m.Digest = it.Digest
		}
	}
	return out
}

func hasRef(rs []ref.Ref, r ref.Ref) bool {
	for _, x := range rs {
		if x.String() == r.String() {
			return true
		}
	}
	return false
}

func joinUnique(a, b string) string {
	if b == "" || a == b {
		return a
	}
	if a == "" {
		return b
	}
	for _, p := range strings.Split(a, ",") {
		if p == b {
			return a
		}
	}
	return a + "," + b
}

func mergeSorted(a, b []string) []string { return catalogmirror.MergeSorted(a, b) }

type patterns []struct {
	text string
	re   *regexp.Regexp
}

func blockedPatterns(bs []imageset.BlockedImage, file string) (patterns, error) {
	var ps patterns
	for i, b := range bs {
		re, err := regexp.Compile(b.Name)
		if err != nil {
			return nil, fmt.Errorf("%s: mirror.blockedImages[%d].name %q is not a Go regular expression: %w", file, i, b.Name, err)
		}
		ps = append(ps, struct {
			text string
			re   *regexp.Regexp
		}{b.Name, re})
	}
	return ps, nil
}

// match returns the first pattern matching the item's source or one of its
// destinations (oc-mirror matches both), "" if none.
func (ps patterns) match(it plan.Item) string {
	names := []string{it.Source.Name()}
	for _, d := range it.Dests {
		names = append(names, d.Name())
	}
	for _, p := range ps {
		for _, n := range names {
			if p.re.MatchString(n) {
				return p.text
			}
		}
	}
	return ""
}

// platformFilter is the os/arch[/variant] regular expression a catalog is
// read with: the first platform the config names, linux/amd64 otherwise.
func platformFilter(ps []imageset.OSPlatform) string {
	if len(ps) > 0 {
		return regexp.QuoteMeta(ps[0].String())
	}
	return "linux/amd64"
}
