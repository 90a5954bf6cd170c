package orchestrate

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
	"sigs.k8s.io/yaml"

	"github.com/airlock-mirror/airlock/internal/atomicfile"
	"github.com/airlock-mirror/airlock/internal/engine"
	"github.com/airlock-mirror/airlock/internal/imageset"
	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/release/graph"
)

// Inspector is what PlanConfig needs of the copy engine: manifests only.
type Inspector interface {
	Images
	Inspect(ctx context.Context, it plan.Item) (*engine.Inventory, error)
	Holds(ctx context.Context, dst ref.Ref, tag string, inv *engine.Inventory) (*engine.Holding, error)
}

// PlanOptions configure PlanConfig.
type PlanOptions struct {
	Config     *imageset.ImageSetConfiguration
	ConfigFile string
	// Dest is where a mirror would write: file://DIR (the store at Dir)
	// or docker://REG[/prefix]; zero for no destination (nothing held).
	Dest ref.Ref
	Dir  string
	// Engine must have Dir as its store directory for a file:// Dest.
	Engine Inspector
	Graph  graph.Fetcher
	// GraphData builds the graph-data image of mirror.platform.graph.
	GraphData GraphData
	Warn      func(string)
	// Parallel is how many images are inspected at once (default 8).
	Parallel int
	Now      func() time.Time
}

// PlanKind and PlanVersion identify a saved plan file.
const (
	PlanKind    = "AirlockPlan"
	PlanVersion = 1
)

// ConfigPlan is what a mirror of a config would do, resolved to digests:
// `airlock plan`. Every number comes from the manifests, no blob is read.
type ConfigPlan struct {
	Kind       string        `json:"kind"`
	Version    int           `json:"version"`
	Config     string        `json:"config"`
	Dest       string        `json:"destination,omitempty"`
	Created    time.Time     `json:"created"`
	Images     []Planned     `json:"images"`
	Groups     []Summary     `json:"groups"`
	Total      Summary       `json:"total"`
	Blocked    []Blocked     `json:"blocked,omitempty"`
	Releases   []ReleaseInfo `json:"releases,omitempty"`
	Space      *Space        `json:"space,omitempty"`
	Errors     []string      `json:"errors,omitempty"`
	PinnedFile string        `json:"pinnedConfig,omitempty"`
}

// Planned is one image of a plan.
type Planned struct {
	Source ref.Ref     `json:"source"`
	Dests  []ref.Ref   `json:"destinations"`
	Kind   plan.Kind   `json:"kind"`
	Origin plan.Origin `json:"origin,omitempty"`
	// Digest is the source digest; Written the digest a copy writes.
	Digest  string `json:"digest"`
	Written string `json:"written,omitempty"`
	// Rebuilt: a filtered catalog, rebuilt at mirror time; its numbers are
	// the source catalog's.
	Rebuilt   bool          `json:"rebuilt,omitempty"`
	Manifests []engine.Blob `json:"manifests"`
	Blobs     []engine.Blob `json:"blobs"`
	// Complete: the destination already has the image (a run skips it).
	Complete bool     `json:"complete,omitempty"`
	Held     []string `json:"held,omitempty"` // blob digests the destination holds
	Error    string   `json:"error,omitempty"`
}

// Summary counts one group of images (a release, a catalog, a package, a
// chart, the additional images) or the whole plan. Blobs and Bytes count
// each blob once within the group; BytesBeforeDedup adds the images' sizes.
type Summary struct {
	Group            string `json:"group"`
	Images           int    `json:"images"`
	Manifests        int    `json:"manifests"`
	Blobs            int    `json:"blobs"`
	BytesBeforeDedup int64  `json:"bytesBeforeDedup"`
	Bytes            int64  `json:"bytes"`
	// HeldBlobs/HeldBytes: blobs the destination has (anywhere a copy
	// would mount them from); TransferBlobs/TransferBytes: the rest, what
	// a run actually moves.
	HeldBlobs     int   `json:"heldBlobs"`
	HeldBytes     int64 `json:"heldBytes"`
	TransferBlobs int   `json:"transferBlobs"`
	TransferBytes int64 `json:"transferBytes"`
}

// Space is the free-space check of a file:// destination.
type Space struct {
	Dir       string `json:"dir"`
	Available int64  `json:"available"`
	Needed    int64  `json:"needed"`
}

// Enough reports whether the destination file system can take the run.
func (s *Space) Enough() bool { return s.Available >= s.Needed }

// PlanConfig resolves every release, catalog selection, chart and image of
// the config to digests and counts what a mirror would write and what the
// destination already holds. An image that cannot be read is recorded in
// Errors (and in its Planned entry); the plan is still returned.
func PlanConfig(ctx context.Context, o PlanOptions) (*ConfigPlan, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Parallel <= 0 {
		o.Parallel = 8
	}
	work, err := os.MkdirTemp("", "airlock-plan-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	root := o.Dest
	if root.Transport == "" || root.Transport == ref.File {
		root = ref.Ref{Transport: ref.File}
	}
	in := &Input{Config: o.Config, ConfigFile: o.ConfigFile, Images: o.Engine, Root: root, Graph: o.Graph, Warn: o.Warn, WorkDir: work, GraphData: o.GraphData}
	col, err := CollectAll(ctx, in)
	if err != nil {
		return nil, err
	}
	cp := &ConfigPlan{Kind: PlanKind, Version: PlanVersion, Config: o.ConfigFile, Created: o.Now().UTC(),
		Blocked: col.Blocked, Releases: col.Releases}
	if o.Dest.Transport != "" {
		cp.Dest = o.Dest.String()
		if o.Dest.Transport == ref.File {
			cp.Dest = "file://" + o.Dir
		}
	}
	for _, it := range col.Plan.Items {
		cp.Images = append(cp.Images, Planned{Source: it.Source, Dests: it.Dests, Kind: it.Kind, Origin: it.Origin, Digest: it.Digest})
	}
	items := col.Plan.Items
	for _, cj := range col.Catalogs {
		if cj.Filtered != nil {
			items = append(items, cj.Item)
			cp.Images = append(cp.Images, Planned{Source: cj.Item.Source, Dests: cj.Item.Dests, Kind: cj.Item.Kind,
				Origin: cj.Item.Origin, Digest: cj.Item.Digest, Rebuilt: true})
		}
	}
	holds := o.Dest.Transport == ref.Docker || (o.Dest.Transport == ref.File && storeExists(o.Dir))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.Parallel)
	for i := range items {
		g.Go(func() error {
			p := &cp.Images[i]
			if err := inspectOne(gctx, o.Engine, items[i], p, holds); err != nil {
				p.Error = err.Error()
			}
			return gctx.Err()
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, p := range cp.Images {
		if p.Error != "" {
			cp.Errors = append(cp.Errors, fmt.Sprintf("%s: %s", p.Source, p.Error))
		}
	}
	cp.summarize()
	if o.Dest.Transport == ref.File {
		avail, dir, err := freeSpace(o.Dir)
		if err != nil {
			return nil, err
		}
		cp.Space = &Space{Dir: dir, Available: avail, Needed: cp.Total.TransferBytes}
	}
	return cp, nil
}

func inspectOne(ctx context.Context, eng Inspector, it plan.Item, p *Planned, holds bool) error {
	inv, err := eng.Inspect(ctx, it)
	if err != nil {
		return err
	}
	p.Digest, p.Written, p.Manifests, p.Blobs = inv.SourceDigest, inv.Digest, inv.Manifests, inv.Blobs
	if p.Written == p.Digest {
		p.Written = ""
	}
	if !holds {
		return nil
	}
	held := map[string]bool{}
	complete := true
	for _, d := range it.Dests {
		h, err := eng.Holds(ctx, d, engine.DestTag(it, d), inv)
		if err != nil {
			return err
		}
		complete = complete && h.Complete
		for b := range h.Blobs {
			held[b] = true
		}
	}
	p.Complete = complete
	for b := range held {
		p.Held = append(p.Held, b)
	}
	sort.Strings(p.Held)
	return nil
}

func storeExists(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "blobs"))
	return err == nil
}

// InspectBlobs reads the manifests of items (parallel at once) and returns
// the size of every manifest and blob they name, each digest once: what a
// copy of them would read, before a blob moves. An image that cannot be
// read is left out (the copy fails it and reports it).
func InspectBlobs(ctx context.Context, eng Inspector, items []plan.Item, parallel int) (map[string]int64, error) {
	if parallel <= 0 {
		parallel = 8
	}
	invs := make([]*engine.Inventory, len(items))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for i := range items {
		g.Go(func() error {
			if inv, err := eng.Inspect(gctx, items[i]); err == nil {
				invs[i] = inv
			}
			return gctx.Err()
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, inv := range invs {
		if inv == nil {
			continue
		}
		for _, b := range append(append([]engine.Blob(nil), inv.Manifests...), inv.Blobs...) {
			out[b.Digest] = b.Size
		}
	}
	return out, nil
}

// FreeSpace is the space available to an unprivileged writer on the file
// system dir is (or would be) on, and the directory it was measured at.
func FreeSpace(dir string) (int64, string, error) { return freeSpace(dir) }

// freeSpace is the space available to an unprivileged writer on the file
// system dir is (or would be) on: dir, or its nearest existing parent.
func freeSpace(dir string) (int64, string, error) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return 0, "", err
	}
	for {
		var st syscall.Statfs_t
		err := syscall.Statfs(d, &st)
		if err == nil {
			return int64(st.Bavail) * int64(st.Bsize), d, nil
		}
		parent := filepath.Dir(d)
		if !os.IsNotExist(err) || parent == d {
			return 0, "", fmt.Errorf("checking free space for %s: %w", dir, err)
		}
		d = parent
	}
}

// groupsOf names the groups an image counts in.
func groupsOf(p Planned) []string {
	var gs []string
	switch p.Kind {
	case plan.KindRelease, plan.KindReleaseComponent:
		// A component shared by releases counts in each.
		for _, r := range strings.Split(p.Origin.Release, ",") {
			gs = append(gs, "release "+strings.TrimSpace(r))
		}
	case plan.KindCatalog, plan.KindBundle, plan.KindRelated:
		gs = append(gs, "catalog "+p.Origin.Catalog)
		if p.Kind != plan.KindCatalog {
			for _, pkg := range p.Origin.Packages {
				gs = append(gs, "package "+pkg+" ("+p.Origin.Catalog+")")
			}
		}
	case plan.KindHelmChart:
		gs = append(gs, "chart "+p.Origin.Chart)
	}
	if p.Origin.Chart != "" && p.Kind != plan.KindHelmChart {
		for _, c := range strings.Split(p.Origin.Chart, ",") {
			gs = append(gs, "chart "+strings.TrimSpace(c))
		}
	}
	if strings.Contains(p.Origin.File, "mirror.additionalImages") {
		gs = append(gs, "additionalImages")
	}
	if len(gs) == 0 {
		gs = append(gs, string(p.Kind))
	}
	return gs
}

// summarize computes the groups and the total. A blob is held when the
// destination has it in any repository (a copy mounts it from there).
func (cp *ConfigPlan) summarize() {
	held := map[string]bool{}
	for _, p := range cp.Images {
		for _, b := range p.Held {
			held[b] = true
		}
	}
	type acc struct {
		s     Summary
		blobs map[string]bool
		mans  map[string]bool
	}
	accs := map[string]*acc{}
	total := &acc{s: Summary{Group: "total"}, blobs: map[string]bool{}, mans: map[string]bool{}}
	add := func(a *acc, p Planned) {
		a.s.Images++
		for _, m := range p.Manifests {
			a.s.BytesBeforeDedup += m.Size
			if !a.mans[m.Digest] {
				a.mans[m.Digest] = true
				a.s.Manifests++
				a.s.Bytes += m.Size
			}
		}
		for _, b := range p.Blobs {
			a.s.BytesBeforeDedup += b.Size
			if a.blobs[b.Digest] {
				continue
			}
			a.blobs[b.Digest] = true
			a.s.Blobs++
			a.s.Bytes += b.Size
			if held[b.Digest] {
				a.s.HeldBlobs++
				a.s.HeldBytes += b.Size
			} else {
				a.s.TransferBlobs++
				a.s.TransferBytes += b.Size
			}
		}
	}
	for _, p := range cp.Images {
		add(total, p)
		for _, g := range groupsOf(p) {
			a := accs[g]
			if a == nil {
				a = &acc{s: Summary{Group: g}, blobs: map[string]bool{}, mans: map[string]bool{}}
				accs[g] = a
			}
			add(a, p)
		}
	}
	cp.Groups = cp.Groups[:0]
	for _, a := range accs {
		cp.Groups = append(cp.Groups, a.s)
	}
	sort.Slice(cp.Groups, func(i, j int) bool { return cp.Groups[i].Group < cp.Groups[j].Group })
	cp.Total = total.s
}

// PinnedConfig is the config with every catalog and additional image
// pinned to the digest planned, its tag kept (repo:tag@digest), so a later
// run reads the same bits and names them the same. Release channels stay
// as they are (v2alpha1 cannot pin several releases); the plan records
// their digests, and `plan --diff` shows when a channel moved.
func (cp *ConfigPlan) PinnedConfig(cfg *imageset.ImageSetConfiguration) *imageset.ImageSetConfiguration {
	pinned := *cfg
	pinned.Mirror.Operators = append([]imageset.Operator(nil), cfg.Mirror.Operators...)
	pinned.Mirror.AdditionalImages = append([]imageset.AdditionalImage(nil), cfg.Mirror.AdditionalImages...)
	byCatalog := map[string]string{}
	bySource := map[string]string{}
	for _, p := range cp.Images {
		if p.Kind == plan.KindCatalog && p.Origin.Catalog != "" {
			byCatalog[p.Origin.Catalog] = p.Digest
		}
		bySource[p.Source.Name()] = p.Digest
	}
	pin := func(name, digest string) string {
		r, err := ref.Parse(name)
		if err != nil || digest == "" || r.Transport != ref.Docker {
			return name
		}
		return r.WithDigest(digest).String()
	}
	for i, op := range pinned.Mirror.Operators {
		pinned.Mirror.Operators[i].Catalog = pin(op.Catalog, byCatalog[op.Catalog])
	}
	for i, ai := range pinned.Mirror.AdditionalImages {
		if r, err := ref.Parse(ai.Name); err == nil {
			pinned.Mirror.AdditionalImages[i].Name = pin(ai.Name, bySource[r.Name()])
		}
	}
	return &pinned
}

// Save writes the plan to path and the pinned config beside it
// (NAME-imageset.yaml), each atomically.
func (cp *ConfigPlan) Save(path string, cfg *imageset.ImageSetConfiguration) error {
	pinnedPath := strings.TrimSuffix(path, filepath.Ext(path)) + "-imageset.yaml"
	y, err := yaml.Marshal(cp.PinnedConfig(cfg))
	if err != nil {
		return err
	}
	head := fmt.Sprintf("# %s pinned to the digests planned on %s (airlock plan)\n", cp.Config, cp.Created.Format(time.RFC3339))
	if err := atomicfile.Write(pinnedPath, append([]byte(head), y...), 0o644); err != nil {
		return err
	}
	cp.PinnedFile = pinnedPath
	data, err := json.MarshalIndent(cp, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(data, '\n'), 0o644)
}

// LoadPlan reads a plan Save wrote.
func LoadPlan(path string) (*ConfigPlan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cp ConfigPlan
	if err := json.Unmarshal(data, &cp); err != nil {
		return nil, fmt.Errorf("%s: not a plan file: %w", path, err)
	}
	if cp.Kind != PlanKind {
		return nil, fmt.Errorf("%s: kind %q: not a plan written by airlock plan", path, cp.Kind)
	}
	return &cp, nil
}

// PlanDiff is what changed between two plans of a config.
type PlanDiff struct {
	Added   []Planned `json:"added,omitempty"`
	Removed []Planned `json:"removed,omitempty"`
	// Changed: the same source and destination, another digest (a moved
	// tag, a new catalog build, a new release in a channel).
	Changed []Change `json:"changed,omitempty"`
	// NewBlobs/NewBytes are the blobs of the new plan the old one lacks:
	// what an incremental transfer after the old plan carries.
	NewBlobs int   `json:"newBlobs"`
	NewBytes int64 `json:"newBytes"`
}

// Change is one image whose digest moved.
type Change struct {
	Source string `json:"source"`
	Dest   string `json:"destination"`
	Old    string `json:"old"`
	New    string `json:"new"`
}

// planKey names an image across plans: by source and destination, except
// what the run builds itself (a chart's OCI artifact, the graph-data image),
// whose source is a layout in that plan's own temporary working directory:
// those by kind and destination, so an unchanged chart is not "removed" and
// "added" again between two plans.
func planKey(p Planned) string {
	d := ""
	if len(p.Dests) > 0 {
		d = p.Dests[0].String()
	}
	if p.Kind == plan.KindHelmChart || p.Kind == plan.KindGraph {
		return string(p.Kind) + "=" + d
	}
	return p.Source.Name() + "=" + d
}

// Diff compares old (an earlier plan) with cp.
func (cp *ConfigPlan) Diff(old *ConfigPlan) *PlanDiff {
	d := &PlanDiff{}
	was := map[string]Planned{}
	oldBlobs := map[string]bool{}
	for _, p := range old.Images {
		was[planKey(p)] = p
		for _, b := range p.Blobs {
			oldBlobs[b.Digest] = true
		}
	}
	seen := map[string]bool{}
	counted := map[string]bool{}
	for _, p := range cp.Images {
		k := planKey(p)
		seen[k] = true
		o, ok := was[k]
		switch {
		case !ok:
			d.Added = append(d.Added, p)
		case o.Digest != p.Digest:
			d.Changed = append(d.Changed, Change{Source: p.Source.Name(), Dest: p.Dests[0].String(), Old: o.Digest, New: p.Digest})
		}
		for _, b := range p.Blobs {
			if !oldBlobs[b.Digest] && !counted[b.Digest] {
				counted[b.Digest] = true
				d.NewBlobs++
				d.NewBytes += b.Size
			}
		}
	}
	for _, p := range old.Images {
		if !seen[planKey(p)] {
			d.Removed = append(d.Removed, p)
		}
	}
	return d
}

// Empty reports whether nothing changed.
func (d *PlanDiff) Empty() bool { return len(d.Added)+len(d.Removed)+len(d.Changed) == 0 }
