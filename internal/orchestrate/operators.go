package orchestrate

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/airlock-mirror/airlock/internal/catalog"
	"github.com/airlock-mirror/airlock/internal/catalogmirror"
	"github.com/airlock-mirror/airlock/internal/imageset"
	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
)

// CatalogJob is one operator catalog of the run. With Filtered set the
// catalog image is rebuilt with just that content and pushed to
// Item.Dests[0] after its images are copied; otherwise Item is copied
// as is (it is then also in the plan).
type CatalogJob struct {
	Item plan.Item
	// Source is the catalog as read; Filtered the selection (nil: whole).
	Source   *catalog.Catalog
	Filtered *catalog.Catalog
}

// operatorsCollector collects mirror.operators: each catalog filtered with
// oc-mirror's semantics (internal/catalog.Filter), every bundle and related
// image of the selection, and the catalog itself under its tag, or
// targetCatalog/targetTag.
type operatorsCollector struct{}

func (operatorsCollector) Section() string { return "operators" }

func (operatorsCollector) Collect(ctx context.Context, in *Input) (*Collection, error) {
	col := &Collection{}
	for i, op := range in.Config.Mirror.Operators {
		cj, items, err := collectCatalog(ctx, in, op)
		if err != nil {
			return nil, fmt.Errorf("operators[%d] (catalog %s): %w", i, op.Catalog, err)
		}
		// Which entry the catalog came from: its targetCatalogSourceTemplate
		// is applied when cluster-resources/ is written.
		cj.Item.Origin.File = fmt.Sprintf("%s: mirror.operators[%d]", in.ConfigFile, i)
		col.Catalogs = append(col.Catalogs, *cj)
		if cj.Filtered == nil {
			items = append(items, cj.Item)
		}
		col.Items = append(col.Items, items...)
	}
	return col, nil
}

// CatalogDest is where oc-mirror v2 puts a catalog image below root: its
// path, or targetCatalog; its tag, or targetTag, or sha256-<hex> for a
// digest-only catalog.
func CatalogDest(src ref.Ref, digest string, op imageset.Operator, root ref.Ref) ref.Ref {
	p := src.Path
	if src.Transport == ref.OCI {
		p = path.Base(strings.TrimRight(p, "/"))
	}
	if op.TargetCatalog != "" {
		p = op.TargetCatalog
	}
	tag := src.Tag
	if op.TargetTag != "" {
		tag = op.TargetTag
	}
	if tag == "" {
		tag = DigestTag(digest)
	}
	return Rebase(ref.Ref{Path: p, Tag: tag}, root)
}

func collectCatalog(ctx context.Context, in *Input, op imageset.Operator) (*CatalogJob, []plan.Item, error) {
	src, err := ref.Parse(op.Catalog)
	if err != nil {
		return nil, nil, err
	}
	if src.Transport == ref.Docker && !src.HasTagOrDigest() {
		return nil, nil, fmt.Errorf("give a tag or digest, e.g. %s:v4.18", op.Catalog)
	}
	desc, err := in.Images.Resolve(ctx, src)
	if err != nil {
		return nil, nil, fmt.Errorf("resolving the catalog image: %w", err)
	}
	digest := desc.Digest.String()
	// Pinned: the catalog read is the catalog mirrored, even if the tag
	// moves during the run.
	pinned := src
	if src.Transport == ref.Docker {
		pinned = src.ByDigest(digest)
	}
	cat, err := catalog.Load(ctx, WithTransport(pinned), PlatformOpener(in.Images, platformFilter(op.Platforms)))
	if err != nil {
		return nil, nil, err
	}
	for _, w := range cat.Warnings {
		in.warn("catalog %s: %s", op.Catalog, w)
	}
	if cat.Format == catalog.FormatSQLite {
		return nil, nil, fmt.Errorf("a legacy sqlite catalog (oc-mirror v2 does not mirror these either): use `airlock catalog mirror --config` for it, or a file-based catalog")
	}
	cj := &CatalogJob{Source: cat, Item: plan.Item{
		Source: pinned, Dests: []ref.Ref{CatalogDest(src, digest, op, in.Root)},
		Kind: plan.KindCatalog, Origin: plan.Origin{Catalog: op.Catalog}, Digest: digest,
	}}
	selected := cat
	if !(op.Full && len(op.Packages) == 0) {
		f, rep, err := catalog.Filter(ctx, cat, op)
		if err != nil {
			return nil, nil, err
		}
		if rep != nil {
			for _, d := range rep.Dependencies {
				in.warn("catalog %s: added dependency %s/%s (channel %s), required by %s: %s", op.Catalog, d.Package, d.Bundle, d.Channel, d.RequiredBy, d.Requirement)
			}
			for _, w := range rep.Warnings {
				in.warn("catalog %s: %s", op.Catalog, w)
			}
		}
		selected, cj.Filtered = f, f
		cj.Item.Origin.Packages = f.PackageNames()
	}
	imgs, ws := catalog.RelatedImages(selected)
	for _, w := range ws {
		in.warn("catalog %s: %s", op.Catalog, w)
	}
	byName := map[string]*plan.Item{}
	for _, img := range imgs {
		s, kind := catalogmirror.Source(img)
		it := byName[s.Name()]
		if it == nil {
			it = &plan.Item{Source: s, Dests: []ref.Ref{DestFor(s, in.Root)}, Kind: kind,
				Origin: plan.Origin{Catalog: op.Catalog}, Digest: s.Digest}
			byName[s.Name()] = it
		}
		if kind == plan.KindBundle {
			it.Kind = kind
		}
		it.Origin.Packages = mergeSorted(it.Origin.Packages, img.Packages)
		it.Origin.Bundles = mergeSorted(it.Origin.Bundles, img.Bundles)
	}
	keys := make([]string, 0, len(byName))
	for k := range byName {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	items := make([]plan.Item, 0, len(keys))
	for _, k := range keys {
		items = append(items, *byName[k])
	}
	return cj, items, nil
}
