package cli

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/airlock-mirror/airlock/internal/catalog"
	"github.com/airlock-mirror/airlock/internal/catalogimage"
	"github.com/airlock-mirror/airlock/internal/ref"
)

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
