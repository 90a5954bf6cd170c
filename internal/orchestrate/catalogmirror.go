package orchestrate

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/airlock-mirror/airlock/internal/catalog"
	"github.com/airlock-mirror/airlock/internal/catalogimage"
	"github.com/airlock-mirror/airlock/internal/catalogmirror"
	"github.com/airlock-mirror/airlock/internal/clusterres"
	"github.com/airlock-mirror/airlock/internal/engine"
	"github.com/airlock-mirror/airlock/internal/imageset"
	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/report"
)

// CatalogMirrorOptions are one `catalog mirror` run (oc adm catalog mirror
// semantics): plain data the front-end fills from its flags, plus the
// engines and where messages go.
type CatalogMirrorOptions struct {
	// IndexArg is INDEX as given: it names the catalog in messages and
	// picks the --config entry.
	IndexArg string
	// Index is the catalog image; nil for a catalog on disk (LocalPath).
	Index     *ref.Ref
	LocalPath string
	Dest      ref.Ref

	// Packages (--package specs) or ConfigFile (an ImageSetConfiguration)
	// select operators; neither mirrors the whole catalog.
	Packages         []string
	ConfigFile       string
	SkipDependencies bool

	IndexFilterByOS string
	MaxComponents   int
	// ToManifests is the manifests directory ("": manifests-<name>-<unix time>).
	ToManifests string
	Scope       clusterres.Scope
	MaxIDMSSize int
	// CatalogSource is the CatalogSource's spec; ExtractContent adds
	// grpcPodConfig.extractContent (refused for a rebuilt catalog).
	CatalogSource  clusterres.CatalogSourceOptions
	ExtractContent bool
	// ConvertToFBC pushes a selected sqlite catalog as a file-based one on Base.
	ConvertToFBC bool
	Base         string

	ManifestsOnly   bool
	DryRun          bool
	ContinueOnError bool

	// Engine copies; DryRunEngine builds the engine of a --dry-run (the
	// catalog is read with Engine either way).
	Engine       Engine
	DryRunEngine func() (Engine, error)
	// Out gets results, ErrOut warnings, notes and failures.
	Out, ErrOut io.Writer
	Now         func() time.Time
}

// CatalogMirrorResult is what a catalog mirror run did.
type CatalogMirrorResult struct {
	// ManifestsDir holds the Files written (mapping.txt, mirror sets,
	// catalogSource.yaml).
	ManifestsDir string
	Files        []string
	// Plan is the whole plan, catalog image included.
	Plan plan.Plan
	// Report is the engine's report of the referenced images (nil with
	// ManifestsOnly).
	Report *engine.Report
}

// CatalogMirror loads the catalog, applies the selection, plans with oc's
// naming, writes the manifests, copies the referenced images and then
// pushes the catalog (copied, rebuilt with the selection, or its sqlite
// database pruned). A failed image does not stop the others; the error
// then names how many failed, after the affected bundles are listed.
func CatalogMirror(ctx context.Context, o CatalogMirrorOptions) (*CatalogMirrorResult, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	eng := o.Engine
	source := o.LocalPath
	if o.Index != nil {
		source = WithTransport(*o.Index)
	}
	cat, err := catalog.Load(ctx, source, PlatformOpener(eng, o.IndexFilterByOS))
	if err != nil {
		return nil, err
	}
	// The loader and the collector both see an unusable reference; say it once.
	printed := map[string]bool{}
	warn := func(w catalog.Warning) {
		key := w.Package + "\x00" + w.Bundle + "\x00" + w.Field
		if !printed[key] {
			printed[key] = true
			fmt.Fprintf(o.ErrOut, "warning: %s\n", w)
		}
	}
	for _, w := range cat.Warnings {
		warn(w)
	}
	if cat.Format == catalog.FormatSQLite {
		fmt.Fprintln(o.ErrOut, "warning: the catalog is a legacy sqlite index, deprecated by OLM; consider `airlock catalog filter ... --to REF --convert-to-fbc --base OPM_IMAGE`")
	}

	selected, filtered, err := o.selectOperators(ctx, cat)
	if err != nil {
		return nil, err
	}
	// A legacy sqlite catalog image keeps its format: its opm predates
	// file-based catalogs. Its database is pruned now (locally, before any
	// copy) and what the pruned database serves is what gets mirrored: the
	// same as the selection, unless the selection cannot be expressed in
	// sqlite and whole packages had to be kept.
	pruneSQLite := filtered && o.Index != nil && cat.Format == catalog.FormatSQLite && !o.ConvertToFBC
	var prunedDB *PrunedDatabase
	if pruneSQLite {
		prunedDB, err = PruneSQLiteDatabase(ctx, eng, *o.Index, selected)
		if err != nil {
			return nil, fmt.Errorf("pruning sqlite catalog %s: %w", o.Index, err)
		}
		defer prunedDB.Close()
		for _, n := range PruneNotes(prunedDB.Result) {
			fmt.Fprintf(o.ErrOut, "note: %s\n", n)
		}
		selected = prunedDB.Result.Catalog
	}
	name := o.indexName()
	col, err := catalogmirror.Collect(selected, catalogmirror.Options{Index: o.Index, Dest: o.Dest, MaxComponents: o.MaxComponents})
	if err != nil {
		return nil, err
	}
	for _, w := range col.Warnings {
		warn(w)
	}
	if o.Index == nil {
		fmt.Fprintf(o.ErrOut, "note: %s is a local catalog, so no catalog image is mirrored and no CatalogSource is written; build one with: airlock catalog build --from-dir DIR --base OPM_IMAGE --to REF\n", o.LocalPath)
	}

	res := &CatalogMirrorResult{ManifestsDir: o.ToManifests, Plan: col.Plan}
	if res.ManifestsDir == "" {
		res.ManifestsDir = catalogmirror.DefaultManifestsDir(name, o.Now())
	}
	cso := o.CatalogSource
	if o.ExtractContent {
		if filtered {
			// A rebuilt catalog has no valid pre-built cache (see
			// catalogimage); extractContent would make OLM serve the cache dir.
			return nil, fmt.Errorf("--extract-content with --package/--config: the rebuilt catalog carries no pre-built cache for OLM to extract; drop --extract-content (the catalog's own opm serves it)")
		}
		cso.ExtractContent = &clusterres.ExtractContent{CatalogDir: catalogimage.ConfigsDir, CacheDir: catalogimage.DefaultCacheDir}
	}
	res.Files, err = catalogmirror.WriteManifests(res.ManifestsDir, col, catalogmirror.ManifestOptions{Name: name, Scope: o.Scope, MaxBytes: o.MaxIDMSSize, CatalogSource: cso,
		CatalogRebuilt: filtered && o.Index != nil})
	if err != nil {
		return nil, fmt.Errorf("writing manifests: %w", err)
	}
	fmt.Fprintf(o.Out, "wrote mirroring manifests to %s (%d files, %d images)\n", res.ManifestsDir, len(res.Files), len(col.Plan.Items))

	// Referenced images first, the catalog last: a cluster polling the
	// catalog must never see bundles whose images are not there yet.
	var images, catalogItems plan.Plan
	for _, it := range col.Plan.Items {
		if it.Kind == plan.KindCatalog {
			catalogItems.Add(it)
		} else {
			images.Add(it)
		}
	}
	if o.ManifestsOnly {
		return res, nil
	}
	if o.DryRun {
		deng, err := o.DryRunEngine()
		if err != nil {
			return res, err
		}
		all := images
		if !filtered {
			all.Items = append(all.Items, catalogItems.Items...)
		}
		rep, err := deng.Run(ctx, all)
		if rep != nil {
			res.Report = rep
			report.DryRun(o.Out, rep)
		}
		if filtered && o.Index != nil {
			fmt.Fprintf(o.Out, "would rebuild %s with the selected operators and push it to %s\n", o.Index, col.IndexDest)
		}
		return res, err
	}

	rep, err := eng.Run(ctx, images)
	if err := runErr(err); err != nil {
		return res, err
	}
	res.Report = rep
	if rep != nil {
		report.Summary(o.Out, rep)
	}
	var catErr error
	skipCatalog := o.Index != nil && rep != nil && len(rep.Failed()) > 0 && !o.ContinueOnError
	if skipCatalog {
		fmt.Fprintf(o.ErrOut, "catalog %s not pushed: images failed and --continue-on-error=false\n", o.Index)
	}
	if o.Index != nil && !skipCatalog {
		switch {
		case pruneSQLite:
			r, err := catalogimage.ReplaceDatabase(ctx, eng, *o.Index, prunedDB.Path, col.IndexDest)
			if err != nil {
				catErr = fmt.Errorf("pushing pruned sqlite catalog %s to %s: %w", o.Index, col.IndexDest, err)
			} else {
				fmt.Fprintf(o.Out, "sqlite catalog %s pruned to %s and pushed to %s@%s\n", o.Index, strings.Join(selected.PackageNames(), ", "), col.IndexDest, r.Digest)
			}
		case filtered:
			r, err := PushFilteredCatalog(ctx, eng, FilteredCatalogPush{Source: cat, SourceImage: o.Index, Filtered: selected,
				To: col.IndexDest, ConvertToFBC: o.ConvertToFBC, Base: o.Base})
			if err != nil {
				catErr = fmt.Errorf("rebuilding catalog %s for %s: %w", o.Index, col.IndexDest, err)
			} else {
				fmt.Fprintf(o.Out, "catalog %s rebuilt with %d package(s) and pushed to %s@%s (platforms %s)\n",
					o.Index, len(selected.Config.Packages), col.IndexDest, r.Digest, strings.Join(r.Platforms, ", "))
			}
		default:
			crep, err := eng.Run(ctx, catalogItems)
			if err != nil {
				catErr = fmt.Errorf("mirroring catalog image %s: %w", o.Index, err)
			} else if crep != nil && len(crep.Items) == 1 {
				fmt.Fprintf(o.Out, "catalog %s mirrored to %s\n", o.Index, col.IndexDest)
			}
		}
	}
	failed := 0
	if rep != nil {
		failed = len(rep.Failed())
		if failed > 0 {
			printFailedBundles(o.ErrOut, rep)
		}
	}
	switch {
	case failed > 0 && catErr != nil:
		return res, fmt.Errorf("%d image(s) failed (bundles listed above), and %w", failed, catErr)
	case failed > 0:
		return res, fmt.Errorf("%d of %d image(s) failed; affected bundles are listed above; re-run the same command to retry (copied images are skipped)", failed, len(images.Items))
	case catErr != nil:
		return res, catErr
	}
	return res, nil
}

// printFailedBundles lists, per bundle, the images that failed: the unit a
// user acts on ("which operators will not install?").
func printFailedBundles(w io.Writer, rep *engine.Report) {
	type failure struct{ image, err string }
	byBundle := map[string][]failure{}
	for _, it := range rep.Failed() {
		msg := "unknown error"
		if it.Err != nil {
			msg = it.Err.Error()
		} else if it.Error != "" {
			msg = it.Error
		}
		bundles := it.Origin.Bundles
		if len(bundles) == 0 {
			bundles = []string{"(no bundle)"}
		}
		for _, b := range bundles {
			byBundle[b] = append(byBundle[b], failure{it.Source.String(), msg})
		}
	}
	names := make([]string, 0, len(byBundle))
	for b := range byBundle {
		names = append(names, b)
	}
	sort.Strings(names)
	fmt.Fprintf(w, "failed bundles (%d): their operators will not install from the mirror until these images are copied:\n", len(names))
	for _, b := range names {
		fmt.Fprintf(w, "  bundle %s:\n", b)
		for _, f := range byBundle[b] {
			fmt.Fprintf(w, "    %s: %s\n", f.image, f.err)
		}
	}
}

// indexName names the catalog's manifests and CatalogSource.
func (o *CatalogMirrorOptions) indexName() string {
	if o.Index != nil {
		return clusterres.SanitizeName(catalogmirror.IndexName(*o.Index), 63)
	}
	return clusterres.SanitizeName(LocalCatalogName(o.LocalPath), 63)
}

// selectOperators applies --package / --config. filtered reports whether a
// selection was made (the catalog image must then be rebuilt). The
// selection is read only now, after the catalog: --package defaults its
// channels from the catalog's packages.
func (o *CatalogMirrorOptions) selectOperators(ctx context.Context, cat *catalog.Catalog) (*catalog.Catalog, bool, error) {
	var op *imageset.Operator
	switch {
	case len(o.Packages) > 0:
		sel, err := ParsePackageSpecs(o.IndexArg, o.Packages)
		if err != nil {
			return nil, false, err
		}
		DefaultFirstChannels(cat, sel)
		op = sel
	case o.ConfigFile != "":
		cfg, err := imageset.Load(o.ConfigFile)
		if err != nil {
			return nil, false, err
		}
		sel, err := OperatorFor(cfg, o.ConfigFile, o.IndexArg)
		if err != nil {
			return nil, false, err
		}
		op = sel
	default:
		return cat, false, nil
	}
	op.SkipDependencies = op.SkipDependencies || o.SkipDependencies
	out, rep, err := catalog.Filter(ctx, cat, *op)
	if err != nil {
		return nil, false, fmt.Errorf("selecting operators of %s: %w", o.IndexArg, err)
	}
	if rep != nil {
		for _, d := range rep.Dependencies {
			fmt.Fprintf(o.ErrOut, "added dependency: %s/%s (channel %s), required by %s: %s\n", d.Package, d.Bundle, d.Channel, d.RequiredBy, d.Requirement)
		}
		for _, w := range rep.Warnings {
			fmt.Fprintf(o.ErrOut, "warning: %s\n", w)
		}
	}
	return out, true, nil
}

// FilteredCatalogPush is a filtered catalog to push as an image (catalog
// mirror with a selection, catalog filter --to).
type FilteredCatalogPush struct {
	// Source is the catalog as loaded (its Format says sqlite or FBC);
	// SourceImage the catalog image it came from (nil when read from disk).
	Source      *catalog.Catalog
	SourceImage *ref.Ref
	Filtered    *catalog.Catalog
	To          ref.Ref
	// ConvertToFBC builds a file-based catalog image on Base instead of
	// keeping a sqlite catalog's format; Base is also the opm image of a
	// catalog read from disk, which has no source image to rebuild.
	ConvertToFBC bool
	Base         string
}

// PushFilteredCatalog pushes p.Filtered to p.To in the form the target
// opm serves: built on Base (a catalog from disk, or --convert-to-fbc),
// the sqlite image with its database pruned, or the source image rebuilt
// with the filtered file-based catalog on every platform.
func PushFilteredCatalog(ctx context.Context, imgs Images, p FilteredCatalogPush) (*catalogimage.Result, error) {
	switch {
	case p.SourceImage == nil || p.ConvertToFBC:
		base, err := ref.Parse(p.Base)
		if err != nil {
			return nil, fmt.Errorf("--base: %w", err)
		}
		return catalogimage.Build(ctx, imgs, base, p.Filtered, p.To)
	case p.Source.Format == catalog.FormatSQLite:
		// Keep the format the image's opm can serve: prune its database
		// and replace it in the image.
		return PruneSQLiteImage(ctx, imgs, *p.SourceImage, p.Filtered, p.To)
	default:
		return catalogimage.Rebuild(ctx, imgs, *p.SourceImage, p.Filtered, p.To)
	}
}
