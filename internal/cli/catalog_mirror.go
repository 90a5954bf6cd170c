package cli

import (
	"context"
	"fmt"
	"io"
	"os"
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
	"github.com/airlock-mirror/airlock/internal/orchestrate"
	"github.com/airlock-mirror/airlock/internal/ref"
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

// Run mirrors through orchestrate.CatalogMirror, which prints as it goes.
func (o *CatalogMirrorOptions) Run(ctx context.Context) error {
	eng, err := o.newEngine(false)
	if err != nil {
		return fmt.Errorf("configuring the copy engine: %w", err)
	}
	_, err = orchestrate.CatalogMirror(ctx, orchestrate.CatalogMirrorOptions{
		IndexArg: o.IndexArg, Index: o.Index, LocalPath: o.LocalPath, Dest: o.Dest,
		Packages: o.Packages, ConfigFile: o.Config, SkipDependencies: o.SkipDependencies,
		IndexFilterByOS: o.IndexFilterByOS, MaxComponents: o.MaxComponents,
		ToManifests: o.ToManifests, Scope: o.Scope, MaxIDMSSize: o.MaxIDMSSize,
		CatalogSource: clusterres.CatalogSourceOptions{Name: o.CatalogSourceName, DisplayName: o.DisplayName, Publisher: o.Publisher,
			RegistryPoll: o.RegistryPoll, MemoryTarget: o.MemoryTarget},
		ExtractContent: o.ExtractContent, ConvertToFBC: o.ConvertToFBC, Base: o.Base,
		ManifestsOnly: o.ManifestsOnly, DryRun: o.DryRun, ContinueOnError: o.ContinueOnError,
		Engine:       eng,
		DryRunEngine: func() (orchestrate.Engine, error) { return o.newEngine(true) },
		Out:          o.streams.Out, ErrOut: o.streams.ErrOut, Now: o.now,
	})
	return err
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
		name = orchestrate.LocalCatalogName(catalogArg)
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
	return orchestrate.PushFilteredCatalog(ctx, eng, orchestrate.FilteredCatalogPush{Source: src, SourceImage: srcImage, Filtered: filtered,
		To: to, ConvertToFBC: f.ConvertToFBC, Base: f.Base})
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
