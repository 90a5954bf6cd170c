package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/airlock-mirror/airlock/internal/catalog"
	"github.com/airlock-mirror/airlock/internal/catalogimage"
	"github.com/airlock-mirror/airlock/internal/catalogmirror"
	"github.com/airlock-mirror/airlock/internal/clusterres"
	"github.com/airlock-mirror/airlock/internal/engine"
	"github.com/airlock-mirror/airlock/internal/imageset"
	"github.com/airlock-mirror/airlock/internal/orchestrate"
	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/report"
)

// CatalogMirrorOptions are the options of `airlock catalog mirror`, named
// like the flags of `oc adm catalog mirror`.
type CatalogMirrorOptions struct {
	RegistryFlags

	ManifestsOnly    bool
	DryRun           bool
	MaxComponents    int
	IndexFilterByOS  string
	ToManifests      string
	Config           string
	Packages         []string
	SkipDependencies bool
	IDMSScope        string
	MaxIDMSSize      int
	Dir              string
	Parallel         int
	ContinueOnError  bool

	// CatalogSource
	CatalogSourceName string
	DisplayName       string
	Publisher         string
	RegistryPoll      time.Duration
	MemoryTarget      string
	ExtractContent    bool

	// ConvertToFBC and Base turn a selected legacy sqlite catalog image
	// into a file-based catalog image on an opm base.
	ConvertToFBC bool
	Base         string

	// Filled by Complete.
	IndexArg  string
	Index     *ref.Ref // nil for a local catalog
	LocalPath string   // local directory or file
	Dest      ref.Ref
	Scope     clusterres.Scope

	streams IOStreams
	now     func() time.Time
}

func newCatalogMirrorCommand(streams IOStreams) *cobra.Command {
	o := &CatalogMirrorOptions{streams: streams, MaxComponents: catalogmirror.DefaultMaxComponents, IndexFilterByOS: "linux/amd64",
		IDMSScope: string(clusterres.ScopeRepository), MaxIDMSSize: clusterres.MaxObjectBytes, ContinueOnError: true, now: time.Now}
	cmd := &cobra.Command{
		Use:   "mirror INDEX DEST",
		Short: "Mirror an operator catalog and every image it references (compatible with oc adm catalog mirror)",
		Long: `Mirror an operator catalog image, every bundle image and every related image
to DEST, and write the files a cluster needs to use the mirror: mapping.txt,
imageContentSourcePolicy.yaml, imageDigestMirrorSet.yaml, imageTagMirrorSet.yaml
(for images the catalog names by tag, which oc leaves out) and catalogSource.yaml
(in --to-manifests, default manifests-<index name>-<unix time>).

INDEX is a catalog image (registry reference, or docker://, oci://, file://),
or a local file-based catalog directory or index.db. DEST is a registry
(myregistry.com[:port]), a registry with a prefix (myregistry.com/olm) or
file://DIR (the local store under --dir). Images are named as oc names them:
the source registry is dropped, paths deeper than --max-components are folded
with "-", and digest-only images get the FNV-32a tag oc gives them.

Referenced images are always mirrored with every architecture: the catalog
pins them by digest, and dropping platforms would change the digest. Only the
catalog content is read from one platform (--index-filter-by-os).

With --package or --config only the selected operators (plus what they depend
on) are mirrored, and the catalog image is rebuilt with just that content, so
the catalog pod stays small. A legacy sqlite catalog image stays sqlite (its
opm predates file-based catalogs): its index.db is pruned to the selection in
its own schema (channels, heads, default channel, bundles; a kept bundle keeps
its upgrade edge from a dropped one) and replaced on every platform;
--convert-to-fbc --base OPM_IMAGE pushes the selection as a file-based catalog
image on a newer opm instead.

Related images with empty or invalid references
are skipped with a warning naming the bundle and field; an image that fails to
copy does not stop the others, and the bundles affected are listed at the end
(exit code 1).`,
		Example: `  # mirror a whole catalog to a registry under /olm, then apply the manifests
  airlock catalog mirror registry.redhat.io/redhat/redhat-operator-index:v4.18 myregistry.com:5000/olm -a pull-secret.json
  oc apply -f manifests-redhat-operator-index-*/

  # only two operators (and their dependencies); the catalog image is rebuilt with just them
  airlock catalog mirror registry.redhat.io/redhat/redhat-operator-index:v4.18 myregistry.com/olm \
      --package odf-operator --package cluster-logging:stable-6.1

  # write mapping.txt and cluster resources only, copy nothing
  airlock catalog mirror --manifests-only quay.io/ns/index:v1 myregistry.com

  # a catalog directory on disk (the catalog image itself is then not mirrored)
  airlock catalog mirror ./my-fbc myregistry.com/olm`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	fs := cmd.Flags()
	o.RegistryFlags.AddFlags(fs)
	o.RegistryFlags.AddSignatureFlags(fs)
	fs.BoolVar(&o.ManifestsOnly, "manifests-only", false, "write mapping.txt and the cluster resources, copy nothing")
	fs.BoolVar(&o.DryRun, "dry-run", false, "write the manifests and show what would be copied (with sizes); copy nothing")
	fs.IntVar(&o.MaxComponents, "max-components", o.MaxComponents, "maximum path components of a destination repository; deeper paths are folded with '-' (0 = no limit)")
	fs.StringVar(&o.IndexFilterByOS, "index-filter-by-os", o.IndexFilterByOS, "os/arch[/variant] (or regular expression) of the catalog image variant to READ; referenced images are always mirrored with every platform")
	fs.StringVar(&o.IndexFilterByOS, "filter-by-os", o.IndexFilterByOS, "deprecated alias of --index-filter-by-os")
	_ = fs.MarkDeprecated("filter-by-os", "use --index-filter-by-os")
	fs.StringVar(&o.ToManifests, "to-manifests", "", "directory for mapping.txt and the cluster resources (default manifests-<index name>-<unix time>)")
	fs.StringVar(&o.Config, "config", "", "ImageSetConfiguration file: mirror only what its operators[] entry for INDEX selects")
	fs.StringArrayVar(&o.Packages, "package", nil, "mirror only this package: NAME, NAME:CHANNEL, NAME:CHANNEL@MIN-MAX or NAME@MIN-MAX (as catalog filter); repeatable")
	fs.BoolVar(&o.SkipDependencies, "skip-dependencies", false, "with --package/--config, do not add the packages the selected bundles require")
	fs.StringVar(&o.IDMSScope, "idms-scope", o.IDMSScope, "source scope of mirror entries: repository, namespace or registry (wider scopes are used only where correct)")
	fs.IntVar(&o.MaxIDMSSize, "max-idms-size", o.MaxIDMSSize, "maximum bytes of one ImageDigestMirrorSet/ImageContentSourcePolicy object; more entries are split into -1, -2, ...")
	// oc's older names for the same two settings.
	fs.StringVar(&o.IDMSScope, "icsp-scope", o.IDMSScope, "deprecated alias of --idms-scope")
	fs.IntVar(&o.MaxIDMSSize, "max-icsp-size", o.MaxIDMSSize, "deprecated alias of --max-idms-size")
	_ = fs.MarkDeprecated("icsp-scope", "use --idms-scope")
	_ = fs.MarkDeprecated("max-icsp-size", "use --max-idms-size")
	fs.StringVar(&o.Dir, "dir", "", "local store directory for file:// destinations or sources")
	fs.IntVar(&o.Parallel, "parallel", 0, "images copied at once (0 = engine default)")
	fs.BoolVar(&o.ContinueOnError, "continue-on-error", true, "keep copying when an image fails (the failures are listed at the end)")
	fs.StringVar(&o.CatalogSourceName, "catalog-source-name", "", "name of the CatalogSource (default: the index name)")
	fs.StringVar(&o.DisplayName, "display-name", "", "CatalogSource spec.displayName")
	fs.StringVar(&o.Publisher, "publisher", "", "CatalogSource spec.publisher")
	fs.DurationVar(&o.RegistryPoll, "registry-poll", 0, "CatalogSource spec.updateStrategy.registryPoll.interval, e.g. 30m (0 = none)")
	fs.StringVar(&o.MemoryTarget, "memory-target", "", "CatalogSource spec.grpcPodConfig.memoryTarget, e.g. 64Mi")
	fs.BoolVar(&o.ConvertToFBC, "convert-to-fbc", false, "with --package/--config on a legacy sqlite catalog image: push the selection as a file-based catalog image built on --base")
	fs.StringVar(&o.Base, "base", "", "opm base image for --convert-to-fbc, e.g. quay.io/operator-framework/opm:v1.50.0")
	fs.BoolVar(&o.ExtractContent, "extract-content", false, "CatalogSource spec.grpcPodConfig.extractContent {catalogDir: /configs, cacheDir: /tmp/cache}: OLM runs the catalog with its own opm (needed for scratch-based catalogs)")
	return cmd
}

// Complete parses INDEX and DEST.
func (o *CatalogMirrorOptions) Complete(args []string) error {
	if o.now == nil {
		o.now = time.Now
	}
	o.IndexArg = args[0]
	if _, err := os.Stat(args[0]); err == nil && !strings.Contains(args[0], "://") {
		o.LocalPath = args[0]
	} else {
		r, err := ref.Parse(args[0])
		if err != nil {
			return fmt.Errorf("INDEX %q is neither a local catalog directory/index.db nor an image reference: %w", args[0], err)
		}
		if !r.HasTagOrDigest() {
			return fmt.Errorf("INDEX %s: give a tag or digest (e.g. %s:v4.18)", args[0], args[0])
		}
		o.Index = &r
	}
	d, err := catalogmirror.ParseDest(args[1])
	if err != nil {
		return err
	}
	o.Dest = d
	sc, err := clusterres.ParseScope(o.IDMSScope)
	if err != nil {
		return fmt.Errorf("--idms-scope: %w", err)
	}
	o.Scope = sc
	return nil
}

// Validate checks the flags against each other.
func (o *CatalogMirrorOptions) Validate() error {
	if o.MaxComponents < 0 {
		return fmt.Errorf("--max-components %d: must be 0 (no limit) or more", o.MaxComponents)
	}
	if o.MaxIDMSSize <= 0 || o.MaxIDMSSize > clusterres.MaxObjectBytes {
		return fmt.Errorf("--max-idms-size %d: must be between 1 and %d", o.MaxIDMSSize, clusterres.MaxObjectBytes)
	}
	if o.Config != "" && len(o.Packages) > 0 {
		return fmt.Errorf("--config and --package both select operators; use one")
	}
	if _, err := regexp.Compile(o.IndexFilterByOS); err != nil {
		return fmt.Errorf("--index-filter-by-os %q: %w", o.IndexFilterByOS, err)
	}
	if o.ManifestsOnly && o.DryRun {
		return fmt.Errorf("--manifests-only and --dry-run: use one (--dry-run also resolves every image)")
	}
	if o.Dest.Transport == ref.File && o.Dir == "" && len(strings.Split(o.Dest.Path, "/")) < 2 {
		return fmt.Errorf("DEST %s: with file:// give --dir, or a path whose first component is the store directory (file://mirror/olm)", o.Dest)
	}
	if o.Parallel < 0 {
		return fmt.Errorf("--parallel %d: must be 0 (default) or more", o.Parallel)
	}
	if o.ConvertToFBC != (o.Base != "") {
		return fmt.Errorf("--convert-to-fbc and --base OPM_IMAGE go together")
	}
	if o.Base != "" {
		b, err := ref.Parse(o.Base)
		if err != nil {
			return fmt.Errorf("--base: %w", err)
		}
		if !b.HasTagOrDigest() {
			return fmt.Errorf("--base %s: give a tag or digest", o.Base)
		}
	}
	return nil
}

func (o *CatalogMirrorOptions) newEngine(dryRun bool) (*engine.Engine, error) {
	opts, err := o.EngineOptions(o.Dir)
	if err != nil {
		return nil, err
	}
	// Never filter referenced images by platform (FilterByOS stays empty):
	// the catalog pins them by digest and a filtered list has another digest.
	opts.Parallel = o.Parallel
	opts.FailFast = !o.ContinueOnError
	opts.DryRun = dryRun
	opts.Progress = o.streams.ErrOut
	return engine.New(opts)
}

// Run loads, selects, plans, writes the manifests and mirrors.
func (o *CatalogMirrorOptions) Run(ctx context.Context) error {
	eng, err := o.newEngine(false)
	if err != nil {
		return fmt.Errorf("configuring the copy engine: %w", err)
	}
	source := o.LocalPath
	if o.Index != nil {
		source = orchestrate.WithTransport(*o.Index)
	}
	cat, err := catalog.Load(ctx, source, orchestrate.PlatformOpener(eng, o.IndexFilterByOS))
	if err != nil {
		return err
	}
	// The loader and the collector both see an unusable reference; say it once.
	printed := map[string]bool{}
	warn := func(w catalog.Warning) {
		key := w.Package + "\x00" + w.Bundle + "\x00" + w.Field
		if !printed[key] {
			printed[key] = true
			fmt.Fprintf(o.streams.ErrOut, "warning: %s\n", w)
		}
	}
	for _, w := range cat.Warnings {
		warn(w)
	}
	if cat.Format == catalog.FormatSQLite {
		fmt.Fprintln(o.streams.ErrOut, "warning: the catalog is a legacy sqlite index, deprecated by OLM; consider `airlock catalog filter ... --to REF --convert-to-fbc --base OPM_IMAGE`")
	}

	selected, filtered, err := o.selectOperators(ctx, cat)
	if err != nil {
		return err
	}
	// A legacy sqlite catalog image keeps its format: its opm predates
	// file-based catalogs. Its database is pruned now (locally, before any
	// copy) and what the pruned database serves is what gets mirrored: the
	// same as the selection, unless the selection cannot be expressed in
	// sqlite and whole packages had to be kept.
	pruneSQLite := filtered && o.Index != nil && cat.Format == catalog.FormatSQLite && !o.ConvertToFBC
	var prunedDB *orchestrate.PrunedDatabase
	if pruneSQLite {
		prunedDB, err = orchestrate.PruneSQLiteDatabase(ctx, eng, *o.Index, selected)
		if err != nil {
			return fmt.Errorf("pruning sqlite catalog %s: %w", o.Index, err)
		}
		defer prunedDB.Close()
		for _, n := range orchestrate.PruneNotes(prunedDB.Result) {
			fmt.Fprintf(o.streams.ErrOut, "note: %s\n", n)
		}
		selected = prunedDB.Result.Catalog
	}
	name := o.indexName()
	res, err := catalogmirror.Collect(selected, catalogmirror.Options{Index: o.Index, Dest: o.Dest, MaxComponents: o.MaxComponents})
	if err != nil {
		return err
	}
	for _, w := range res.Warnings {
		warn(w)
	}
	if o.Index == nil {
		fmt.Fprintf(o.streams.ErrOut, "note: %s is a local catalog, so no catalog image is mirrored and no CatalogSource is written; build one with: airlock catalog build --from-dir DIR --base OPM_IMAGE --to REF\n", o.LocalPath)
	}

	dir := o.ToManifests
	if dir == "" {
		dir = catalogmirror.DefaultManifestsDir(name, o.now())
	}
	cso := clusterres.CatalogSourceOptions{Name: o.CatalogSourceName, DisplayName: o.DisplayName, Publisher: o.Publisher,
		RegistryPoll: o.RegistryPoll, MemoryTarget: o.MemoryTarget}
	if o.ExtractContent {
		if filtered {
			// A rebuilt catalog has no valid pre-built cache (see
			// catalogimage); extractContent would make OLM serve the cache dir.
			return fmt.Errorf("--extract-content with --package/--config: the rebuilt catalog carries no pre-built cache for OLM to extract; drop --extract-content (the catalog's own opm serves it)")
		}
		cso.ExtractContent = &clusterres.ExtractContent{CatalogDir: catalogimage.ConfigsDir, CacheDir: catalogimage.DefaultCacheDir}
	}
	written, err := catalogmirror.WriteManifests(dir, res, catalogmirror.ManifestOptions{Name: name, Scope: o.Scope, MaxBytes: o.MaxIDMSSize, CatalogSource: cso,
		CatalogRebuilt: filtered && o.Index != nil})
	if err != nil {
		return fmt.Errorf("writing manifests: %w", err)
	}
	fmt.Fprintf(o.streams.Out, "wrote mirroring manifests to %s (%d files, %d images)\n", dir, len(written), len(res.Plan.Items))

	// Referenced images first, the catalog last: a cluster polling the
	// catalog must never see bundles whose images are not there yet.
	var images, catalogItems plan.Plan
	for _, it := range res.Plan.Items {
		if it.Kind == plan.KindCatalog {
			catalogItems.Add(it)
		} else {
			images.Add(it)
		}
	}
	if o.ManifestsOnly {
		return nil
	}
	if o.DryRun {
		deng, err := o.newEngine(true)
		if err != nil {
			return err
		}
		all := images
		if !filtered {
			all.Items = append(all.Items, catalogItems.Items...)
		}
		rep, err := deng.Run(ctx, all)
		if rep != nil {
			report.DryRun(o.streams.Out, rep)
		}
		if filtered && o.Index != nil {
			fmt.Fprintf(o.streams.Out, "would rebuild %s with the selected operators and push it to %s\n", o.Index, res.IndexDest)
		}
		return err
	}

	rep, runErr := eng.Run(ctx, images)
	var runFailed *engine.RunError
	if runErr != nil && !errors.As(runErr, &runFailed) {
		return fmt.Errorf("mirroring: %w", runErr)
	}
	if rep != nil {
		report.Summary(o.streams.Out, rep)
	}
	var catErr error
	skipCatalog := o.Index != nil && rep != nil && len(rep.Failed()) > 0 && !o.ContinueOnError
	if skipCatalog {
		fmt.Fprintf(o.streams.ErrOut, "catalog %s not pushed: images failed and --continue-on-error=false\n", o.Index)
	}
	if o.Index != nil && !skipCatalog {
		if pruneSQLite {
			r, err := catalogimage.ReplaceDatabase(ctx, eng, *o.Index, prunedDB.Path, res.IndexDest)
			if err != nil {
				catErr = fmt.Errorf("pushing pruned sqlite catalog %s to %s: %w", o.Index, res.IndexDest, err)
			} else {
				fmt.Fprintf(o.streams.Out, "sqlite catalog %s pruned to %s and pushed to %s@%s\n", o.Index, strings.Join(selected.PackageNames(), ", "), res.IndexDest, r.Digest)
			}
		} else if filtered {
			rb := CatalogRebuildFlags{To: res.IndexDest.String(), ConvertToFBC: o.ConvertToFBC, Base: o.Base}
			r, err := rb.Rebuild(ctx, eng, cat, o.Index, selected)
			if err != nil {
				catErr = fmt.Errorf("rebuilding catalog %s for %s: %w", o.Index, res.IndexDest, err)
			} else {
				fmt.Fprintf(o.streams.Out, "catalog %s rebuilt with %d package(s) and pushed to %s@%s (platforms %s)\n",
					o.Index, len(selected.Config.Packages), res.IndexDest, r.Digest, strings.Join(r.Platforms, ", "))
			}
		} else {
			crep, err := eng.Run(ctx, catalogItems)
			if err != nil {
				catErr = fmt.Errorf("mirroring catalog image %s: %w", o.Index, err)
			} else if crep != nil && len(crep.Items) == 1 {
				fmt.Fprintf(o.streams.Out, "catalog %s mirrored to %s\n", o.Index, res.IndexDest)
			}
		}
	}
	failed := 0
	if rep != nil {
		failed = len(rep.Failed())
		if failed > 0 {
			orchestrate.PrintFailedBundles(o.streams.ErrOut, rep)
		}
	}
	switch {
	case failed > 0 && catErr != nil:
		return fmt.Errorf("%d image(s) failed (bundles listed above), and %w", failed, catErr)
	case failed > 0:
		return fmt.Errorf("%d of %d image(s) failed; affected bundles are listed above; re-run the same command to retry (copied images are skipped)", failed, len(images.Items))
	case catErr != nil:
		return catErr
	}
	return nil
}

func (o *CatalogMirrorOptions) indexName() string {
	if o.Index != nil {
		return clusterres.SanitizeName(catalogmirror.IndexName(*o.Index), 63)
	}
	return clusterres.SanitizeName(localCatalogName(o.LocalPath), 63)
}

// selectOperators applies --package / --config. filtered reports whether a
// selection was made (the catalog image must then be rebuilt).
func (o *CatalogMirrorOptions) selectOperators(ctx context.Context, cat *catalog.Catalog) (*catalog.Catalog, bool, error) {
	var op *imageset.Operator
	switch {
	case len(o.Packages) > 0:
		sel, err := parsePackageSpecs(o.IndexArg, o.Packages)
		if err != nil {
			return nil, false, err
		}
		defaultFirstChannels(cat, sel)
		op = sel
	case o.Config != "":
		cfg, err := imageset.Load(o.Config)
		if err != nil {
			return nil, false, err
		}
		sel, err := operatorFor(cfg, o.Config, o.IndexArg)
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
			fmt.Fprintf(o.streams.ErrOut, "added dependency: %s/%s (channel %s), required by %s: %s\n", d.Package, d.Bundle, d.Channel, d.RequiredBy, d.Requirement)
		}
		for _, w := range rep.Warnings {
			fmt.Fprintf(o.streams.ErrOut, "warning: %s\n", w)
		}
	}
	return out, true, nil
}

// operatorFor picks the operators[] entry of cfg for the catalog INDEX:
// the one whose catalog names the same image, or the only one.
func operatorFor(cfg *imageset.ImageSetConfiguration, file, index string) (*imageset.Operator, error) {
	ops := cfg.Mirror.Operators
	if len(ops) == 0 {
		return nil, fmt.Errorf("%s: no mirror.operators entry", file)
	}
	want, werr := ref.Parse(index)
	var names []string
	for i := range ops {
		names = append(names, ops[i].Catalog)
		if ops[i].Catalog == index {
			return &ops[i], nil
		}
		if werr == nil {
			if r, err := ref.Parse(ops[i].Catalog); err == nil && r.Name() == want.Name() {
				return &ops[i], nil
			}
		}
	}
	if len(ops) == 1 {
		return &ops[0], nil
	}
	return nil, fmt.Errorf("%s: no mirror.operators entry for catalog %s (entries: %s)", file, index, strings.Join(names, ", "))
}

// CatalogBuildOptions are the options of `airlock catalog build`.
type CatalogBuildOptions struct {
	RegistryFlags
	FromDir string
	Base    string
	To      string
	Dir     string

	base, to ref.Ref
	streams  IOStreams
}

func newCatalogBuildCommand(streams IOStreams) *cobra.Command {
	o := &CatalogBuildOptions{streams: streams}
	cmd := &cobra.Command{
		Use:   "build --from-dir FBC --base OPM_IMAGE --to REF",
		Short: "Build a catalog image from a file-based catalog on an opm base image",
		Long: `Build an operator catalog image: every platform of --base (an opm image) plus the
catalog at /configs, the configs label, ENTRYPOINT /bin/opm and CMD serve /configs.
No pre-built cache is shipped: opm builds it when the catalog pod starts, so a
cache from another opm version can never crash-loop the pod.

--from-dir is a file-based catalog directory, or a legacy index.db, which is
converted to a file-based catalog (the modern form of oc adm catalog build).`,
		Example: `  # build and push a catalog for every platform of the opm image
  airlock catalog build --from-dir ./my-catalog --base quay.io/operator-framework/opm:v1.50.0 --to myregistry.com/olm/my-index:v1

  # convert a legacy sqlite index database to a file-based catalog image
  airlock catalog build --from-dir ./index.db --base quay.io/operator-framework/opm:v1.50.0 --to myregistry.com/olm/my-index:v1-fbc`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	fs := cmd.Flags()
	o.RegistryFlags.AddFlags(fs)
	fs.StringVar(&o.FromDir, "from-dir", "", "file-based catalog directory (or legacy index.db) to put in the image")
	fs.StringVar(&o.Base, "base", "", "opm base image, e.g. quay.io/operator-framework/opm:v1.50.0 (every platform is used)")
	fs.StringVar(&o.To, "to", "", "where to push the catalog image (needs a tag)")
	fs.StringVar(&o.Dir, "dir", "", "local store directory for file:// references")
	return cmd
}

// Validate checks the flags.
func (o *CatalogBuildOptions) Validate() error {
	if o.FromDir == "" || o.Base == "" || o.To == "" {
		return fmt.Errorf("--from-dir, --base and --to are all required")
	}
	var err error
	if o.base, err = ref.Parse(o.Base); err != nil {
		return fmt.Errorf("--base: %w", err)
	}
	if !o.base.HasTagOrDigest() {
		return fmt.Errorf("--base %s: give a tag or digest (e.g. :v1.50.0), so the build is reproducible", o.Base)
	}
	if o.to, err = ref.Parse(o.To); err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	if o.to.Tag == "" || o.to.Digest != "" {
		return fmt.Errorf("--to %s: give a tag and no digest (the image's digest is only known once built)", o.To)
	}
	if _, err := os.Stat(o.FromDir); err != nil {
		return fmt.Errorf("--from-dir: %w", err)
	}
	return nil
}

// Run loads the catalog and builds the image.
func (o *CatalogBuildOptions) Run(ctx context.Context) error {
	c, err := catalog.Load(ctx, o.FromDir, nil)
	if err != nil {
		return err
	}
	for _, w := range c.Warnings {
		fmt.Fprintf(o.streams.ErrOut, "warning: %s\n", w)
	}
	eng, err := o.NewEngine(o.Dir)
	if err != nil {
		return err
	}
	res, err := catalogimage.Build(ctx, eng, o.base, c, o.to)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.streams.Out, "built %s@%s from %s (%d packages, %d bundles) on %s, platforms %s\n",
		o.to, res.Digest, o.FromDir, len(c.Config.Packages), len(c.Config.Bundles), o.base, strings.Join(res.Platforms, ", "))
	return nil
}

// CatalogInstallOptions are the options of `airlock catalog install-manifests`.
type CatalogInstallOptions struct {
	RegistryFlags
	Package                string
	Channel                string
	Namespace              string
	Approval               string
	CatalogSource          string
	CatalogSourceNamespace string
	IndexFilterByOS        string
	Dir                    string

	streams IOStreams
}

func newCatalogInstallManifestsCommand(streams IOStreams) *cobra.Command {
	o := &CatalogInstallOptions{streams: streams, Approval: "Automatic", CatalogSourceNamespace: clusterres.MarketplaceNamespace, IndexFilterByOS: "linux/amd64"}
	cmd := &cobra.Command{
		Use:   "install-manifests CATALOG --package P",
		Short: "Print the Namespace, OperatorGroup and Subscription that install an operator from a catalog",
		Long: `Print (as YAML on stdout) the objects that install one operator from a mirrored
catalog: a Namespace, an OperatorGroup (AllNamespaces when the operator supports
it, OwnNamespace otherwise, read from the bundle's install modes) and a
Subscription on the channel (default: the package's default channel) starting
at its head. In openshift-operators only the Subscription is written: that
namespace already has its global OperatorGroup.

CATALOG is a catalog image or a local catalog directory / index.db.`,
		Example: `  # install manifests for an operator from the mirrored catalog, applied directly
  airlock catalog install-manifests myregistry.com/olm/redhat-operator-index:v4.18 --package odf-operator \
      --catalog-source redhat-operator-index | oc apply -f -

  # a given channel, manual approval, into an existing global namespace
  airlock catalog install-manifests ./catalog --package etcd --channel stable --approval Manual --namespace openshift-operators --catalog-source my-catalog`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.Run(cmd.Context(), args[0])
		},
	}
	fs := cmd.Flags()
	o.RegistryFlags.AddFlags(fs)
	fs.StringVar(&o.Package, "package", "", "the operator package to install (required)")
	fs.StringVar(&o.Channel, "channel", "", "subscription channel (default: the package's default channel)")
	fs.StringVar(&o.Namespace, "namespace", "", "namespace to install into (default: the package name)")
	fs.StringVar(&o.Approval, "approval", o.Approval, "installPlanApproval: Automatic or Manual")
	fs.StringVar(&o.CatalogSource, "catalog-source", "", "name of the CatalogSource serving the catalog (default: derived from CATALOG as catalog mirror names it)")
	fs.StringVar(&o.CatalogSourceNamespace, "catalog-source-namespace", o.CatalogSourceNamespace, "namespace of the CatalogSource")
	fs.StringVar(&o.IndexFilterByOS, "index-filter-by-os", o.IndexFilterByOS, "platform variant of a multi-arch catalog image to read")
	fs.StringVar(&o.Dir, "dir", "", "local store directory for file:// references")
	return cmd
}

// Run loads the catalog and prints the objects.
func (o *CatalogInstallOptions) Run(ctx context.Context, catalogArg string) error {
	if o.Package == "" {
		return fmt.Errorf("--package is required")
	}
	source := catalogArg
	name := ""
	if _, err := os.Stat(catalogArg); err != nil || strings.Contains(catalogArg, "://") {
		r, err := ref.Parse(catalogArg)
		if err != nil {
			return fmt.Errorf("CATALOG %q is neither a local catalog nor an image reference: %w", catalogArg, err)
		}
		source = orchestrate.WithTransport(r)
		name = catalogmirror.IndexName(r)
	} else {
		name = localCatalogName(catalogArg)
	}
	var opener catalog.ImageOpener
	if source != catalogArg || strings.Contains(catalogArg, "://") {
		eng, err := o.NewEngine(o.Dir)
		if err != nil {
			return err
		}
		opener = orchestrate.PlatformOpener(eng, o.IndexFilterByOS)
	}
	c, err := catalog.Load(ctx, source, opener)
	if err != nil {
		return err
	}
	cs := o.CatalogSource
	if cs == "" {
		cs = clusterres.CatalogSourceName(name)
	}
	in, err := catalogmirror.InstallFor(c, catalogmirror.InstallRequest{Package: o.Package, Channel: o.Channel, Namespace: o.Namespace,
		Approval: o.Approval, CatalogSource: cs, SourceNamespace: o.CatalogSourceNamespace})
	if err != nil {
		return err
	}
	for _, n := range in.Notes {
		fmt.Fprintf(o.streams.ErrOut, "note: %s\n", n)
	}
	b, err := clusterres.YAML(in.Objects...)
	if err != nil {
		return err
	}
	_, err = o.streams.Out.Write(b)
	return err
}

// CatalogRebuildFlags are the flags that push a filtered catalog as an
// image (`airlock catalog filter ... --to REF`). The filter command embeds
// them and calls Rebuild after filtering.
type CatalogRebuildFlags struct {
	// To is where the rebuilt catalog image goes (needs a tag).
	To string
	// ConvertToFBC turns a legacy sqlite catalog into a file-based catalog
	// image on Base instead of keeping sqlite.
	ConvertToFBC bool
	// Base is the opm image used for --convert-to-fbc and for catalogs read
	// from disk (which have no source image to rebuild).
	Base string
}

// AddFlags registers --to, --convert-to-fbc and --base.
func (f *CatalogRebuildFlags) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.To, "to", "", "push the filtered catalog as an image to REF: the source catalog image rebuilt for every platform (or built on --base for a catalog read from disk)")
	fs.BoolVar(&f.ConvertToFBC, "convert-to-fbc", false, "with --to and a legacy sqlite catalog image: build a file-based catalog image on --base instead of keeping sqlite")
	fs.StringVar(&f.Base, "base", "", "opm base image for --convert-to-fbc or for catalogs read from disk, e.g. quay.io/operator-framework/opm:v1.50.0")
}

// Validate checks the flags; source is the CATALOG argument, local whether
// it is a path on disk.
func (f *CatalogRebuildFlags) Validate(local bool) error {
	if f.To == "" {
		if f.ConvertToFBC || f.Base != "" {
			return fmt.Errorf("--convert-to-fbc and --base need --to REF")
		}
		return nil
	}
	to, err := ref.Parse(f.To)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	if to.Tag == "" || to.Digest != "" {
		return fmt.Errorf("--to %s: give a tag and no digest (the rebuilt image has a new digest)", f.To)
	}
	if (f.ConvertToFBC || local) && f.Base == "" {
		return fmt.Errorf("--base OPM_IMAGE is required with --convert-to-fbc or when CATALOG is on disk (there is no source image to rebuild)")
	}
	if f.Base != "" {
		b, err := ref.Parse(f.Base)
		if err != nil {
			return fmt.Errorf("--base: %w", err)
		}
		if !b.HasTagOrDigest() {
			return fmt.Errorf("--base %s: give a tag or digest", f.Base)
		}
	}
	return nil
}

// Rebuild pushes filtered to --to. src is the catalog as loaded (its Format
// says sqlite or FBC); srcImage the catalog image it came from (nil when
// read from disk). It returns the result of the push.
func (f *CatalogRebuildFlags) Rebuild(ctx context.Context, eng catalogimage.Images, src *catalog.Catalog, srcImage *ref.Ref, filtered *catalog.Catalog) (*catalogimage.Result, error) {
	to, err := ref.Parse(f.To)
	if err != nil {
		return nil, fmt.Errorf("--to: %w", err)
	}
	switch {
	case srcImage == nil || f.ConvertToFBC:
		base, err := ref.Parse(f.Base)
		if err != nil {
			return nil, fmt.Errorf("--base: %w", err)
		}
		return catalogimage.Build(ctx, eng, base, filtered, to)
	case src.Format == catalog.FormatSQLite:
		// Keep the format the image's opm can serve: prune its database
		// and replace it in the image.
		return orchestrate.PruneSQLiteImage(ctx, eng, *srcImage, filtered, to)
	default:
		return catalogimage.Rebuild(ctx, eng, *srcImage, filtered, to)
	}
}

// Push is the whole --to step of `catalog filter`: it opens the engine
// from the command's CatalogSourceFlags, works out whether arg (CATALOG)
// was an image, pushes filtered with Rebuild, and prints the result to out.
// c is the catalog as loaded from arg.
func (f *CatalogRebuildFlags) Push(ctx context.Context, src CatalogSourceFlags, arg string, c, filtered *catalog.Catalog, out io.Writer) error {
	var srcImage *ref.Ref
	if strings.Contains(arg, "://") || !pathExists(arg) {
		r, err := ref.Parse(arg)
		if err != nil {
			return fmt.Errorf("CATALOG %q: %w", arg, err)
		}
		srcImage = &r
	}
	eng, err := src.RegistryFlags.NewEngine(src.Dir)
	if err != nil {
		return err
	}
	res, err := f.Rebuild(ctx, eng, c, srcImage, filtered)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "pushed filtered catalog (%d package(s)) to %s@%s, platforms %s\n", len(filtered.Config.Packages), f.To, res.Digest, strings.Join(res.Platforms, ", "))
	for _, n := range res.Notes {
		fmt.Fprintf(out, "note: %s\n", n)
	}
	return nil
}

func pathExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// localCatalogName names a catalog read from disk: a directory by its
// name (community-operators-v4.18 keeps its ".18"), a file without its
// extension (index.db => index).
func localCatalogName(p string) string {
	base := filepath.Base(filepath.Clean(p))
	if st, err := os.Stat(p); err == nil && !st.IsDir() {
		base = strings.TrimSuffix(base, filepath.Ext(base))
	}
	return base
}
