package cli

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

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
	if isLocalCatalog(args[0]) {
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
