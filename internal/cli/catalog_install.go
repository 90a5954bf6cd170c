package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/airlock-mirror/airlock/internal/catalog"
	"github.com/airlock-mirror/airlock/internal/catalogmirror"
	"github.com/airlock-mirror/airlock/internal/clusterres"
	"github.com/airlock-mirror/airlock/internal/orchestrate"
	"github.com/airlock-mirror/airlock/internal/ref"
)

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
	if !isLocalCatalog(catalogArg) {
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
