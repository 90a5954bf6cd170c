package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/airlock-mirror/airlock/internal/clusterres"
	"github.com/airlock-mirror/airlock/internal/clusterstate"
)

const clusterExportHelp = `The cluster is read live, read-only (list and get only; secrets are never
read), from the kubeconfig of --kubeconfig, else $KUBECONFIG, else
~/.kube/config, else the service account of the pod airlock runs in; the
user needs list on clusterversions, subscriptions, clusterserviceversions,
catalogsources, pods, imagedigestmirrorsets, imagetagmirrorsets and
imagecontentsourcepolicies at cluster scope. Kinds the cluster does not serve
(plain Kubernetes has no ClusterVersion) are skipped with a warning.

Where the cluster cannot be reached from here, read it with --from from an
export made where it runs:

  oc get clusterversion,subscriptions,clusterserviceversions,catalogsources,pods,imagedigestmirrorsets,imagetagmirrorsets,imagecontentsourcepolicies -A -o json > cluster.json

or from a must-gather directory (every YAML/JSON object below it is read).
--from and --kubeconfig/--context exclude each other.`

// ClusterInventoryOptions are the options of `airlock cluster inventory`.
type ClusterInventoryOptions struct {
	ClusterSourceFlags
	UpgradeTo string
	OutputFlags
	streams IOStreams
}

func newClusterInventoryCommand(streams IOStreams) *cobra.Command {
	o := &ClusterInventoryOptions{streams: streams}
	cmd := &cobra.Command{
		Use:   "inventory [--kubeconfig FILE [--context NAME] | --from cluster.json] [--upgrade-to VERSION]",
		Short: "An ImageSetConfiguration that mirrors what a cluster runs (release, operators, other images)",
		Long: `Write the ImageSetConfiguration that mirrors what a cluster runs: its
release channel from the installed version (to --upgrade-to, or the
ClusterVersion's desiredUpdate, by the shortest path), every subscription's
catalog, package and channel with the installed CSV's version as minVersion,
and every image a running pod uses that neither the release nor an installed
operator brings, as additionalImages (by digest, from the pods' imageID).
Names the cluster pulls through its mirror sets are mapped back to sources.

` + clusterExportHelp,
		Example: `  # read the cluster of the current kubeconfig context
  airlock cluster inventory > imageset.yaml

  # another kubeconfig and context, with a planned upgrade
  airlock cluster inventory --kubeconfig ~/.kube/prod --context admin@prod --upgrade-to 4.18.9 -o imageset/

  # on the disconnected side, where airlock cannot reach the cluster
  oc get clusterversion,subscriptions,clusterserviceversions,catalogsources,pods,imagedigestmirrorsets,imagetagmirrorsets,imagecontentsourcepolicies -A -o json > cluster.json
  # carry cluster.json out; on the connected side
  airlock cluster inventory --from cluster.json --upgrade-to 4.18.9 > imageset.yaml
  airlock mirror -c imageset.yaml file:///mnt/usb --v2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.ClusterSourceFlags.Validate(); err != nil {
				return err
			}
			if err := o.OutputFlags.Validate(); err != nil {
				return err
			}
			st, err := o.ClusterSourceFlags.Load(cmd.Context(), o.streams.ErrOut)
			if err != nil {
				return err
			}
			cfg, notes, err := clusterstate.Inventory(st, clusterstate.InventoryOptions{UpgradeTo: o.UpgradeTo})
			if err != nil {
				return err
			}
			for _, n := range notes {
				fmt.Fprintln(o.streams.ErrOut, "note:", n)
			}
			var b []byte
			if o.Format == "json" {
				b, err = json.MarshalIndent(cfg, "", "  ")
				b = append(b, '\n')
			} else {
				b, err = yaml.Marshal(cfg)
			}
			if err != nil {
				return err
			}
			paths, err := o.write(o.streams.Out, []handoffFile{{Name: "imageset-config." + o.Format, Raw: b}})
			for _, p := range paths {
				fmt.Fprintf(o.streams.ErrOut, "wrote %s\n", p)
			}
			return err
		},
	}
	o.ClusterSourceFlags.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&o.UpgradeTo, "upgrade-to", "", "target version of a planned upgrade (maxVersion of the release channel)")
	o.OutputFlags.AddFlags(cmd, "yaml")
	return cmd
}

// ClusterCheckOptions are the options of `airlock cluster check`.
type ClusterCheckOptions struct {
	RegistryFlags
	ClusterSourceFlags
	MirrorSets   []string
	Mirror       string
	UpgradeImage string
	Output       string
	Parallel     int
	streams      IOStreams
}

func newClusterCheckCommand(streams IOStreams) *cobra.Command {
	o := &ClusterCheckOptions{streams: streams, Parallel: 8}
	cmd := &cobra.Command{
		Use:   "check --mirror HOST:PORT [--kubeconfig FILE [--context NAME] | --from cluster.json] [--mirror-sets DIR] [--upgrade-image REF]",
		Short: "Is everything the cluster needs (now, after its upgrade, after its operators' next update) in the mirror?",
		Long: `Check a mirror against a cluster before an upgrade. Every image the
cluster's pods run, every component of the planned upgrade's release payload
(--upgrade-image, default the ClusterVersion's desiredUpdate), and the bundle
and related images of each subscription's next version (read from the
catalog the cluster uses) must resolve through the cluster's mirror sets
(IDMS/ITMS/ICSP from the cluster, plus --mirror-sets) to a digest present in
the mirror. Missing images are listed grouped by cause:

  no mirror set covers the source     the node would go to the source registry
  mirror set points at a wrong path   no mirror the rule names has the repository
  digest absent                       the repository is there, the digest is not
  cannot be read                      the payload or catalog itself is missing

The command exits non-zero when anything is missing.

` + clusterExportHelp,
		Example: `  # the cluster of the current kubeconfig context against its mirror
  airlock cluster check --mirror mirror.example.com:5000 --ca-file ca.crt -a auth.json

  # another kubeconfig and context
  airlock cluster check --kubeconfig ~/.kube/prod --context admin@prod --mirror mirror.example.com:5000

  # from an export of the cluster
  airlock cluster check --from cluster.json --mirror mirror.example.com:5000 --ca-file ca.crt -a auth.json
  # an upgrade that is not set on the cluster yet
  airlock cluster check --from cluster.json --mirror mirror.example.com:5000 \
      --upgrade-image quay.io/openshift-release-dev/ocp-release@sha256:... -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Mirror == "" {
				return fmt.Errorf("--mirror (the mirror registry HOST:PORT) is required")
			}
			if err := o.ClusterSourceFlags.Validate(); err != nil {
				return err
			}
			if o.Output != "" && o.Output != "text" && o.Output != "json" {
				return fmt.Errorf("--output %q: want text or json", o.Output)
			}
			return o.Run(cmd.Context())
		},
	}
	o.RegistryFlags.AddFlags(cmd.Flags())
	o.ClusterSourceFlags.AddFlags(cmd.Flags())
	cmd.Flags().StringArrayVar(&o.MirrorSets, "mirror-sets", nil, "more mirror sets to apply (a cluster-resources directory); repeatable")
	cmd.Flags().StringVar(&o.Mirror, "mirror", "", "mirror registry HOST:PORT (required)")
	cmd.Flags().StringVar(&o.UpgradeImage, "upgrade-image", "", "release image of the planned upgrade, by digest")
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "output format: text (default) or json")
	cmd.Flags().IntVar(&o.Parallel, "parallel", o.Parallel, "lookups at once")
	return cmd
}

// checkFailed is returned when images are missing: exit code 1 after the report.
type checkFailed struct{ n int }

func (e checkFailed) Error() string {
	return fmt.Sprintf("%d images the cluster needs are not in the mirror", e.n)
}

// Run loads, checks and reports.
func (o *ClusterCheckOptions) Run(ctx context.Context) error {
	st, err := o.ClusterSourceFlags.Load(ctx, o.streams.ErrOut)
	if err != nil {
		return err
	}
	for _, d := range o.MirrorSets {
		ms, err := clusterres.ReadMirrorSetDir(d)
		if err != nil {
			return err
		}
		st.MirrorSets.Rules = append(st.MirrorSets.Rules, ms.Rules...)
	}
	ropts, err := o.RemoteOptions(ctx)
	if err != nil {
		return err
	}
	res, err := clusterstate.Check(ctx, st, clusterstate.CheckOptions{Mirror: o.Mirror, Remote: ropts, Insecure: o.Insecure,
		UpgradeImage: o.UpgradeImage, Parallel: o.Parallel})
	if err != nil {
		return err
	}
	if o.Output == "json" {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(o.streams.Out, "%s\n", b)
	} else {
		printCheck(o.streams.Out, res)
	}
	if len(res.Missing) > 0 {
		return checkFailed{len(res.Missing)}
	}
	return nil
}

func printCheck(w io.Writer, res *clusterstate.Result) {
	up := ""
	if res.Upgrade != "" {
		up = " (with the upgrade to " + res.Upgrade + ")"
	}
	fmt.Fprintf(w, "%d images needed%s, %d missing from the mirror\n", res.Needed, up, len(res.Missing))
	by := res.ByCause()
	for _, c := range []clusterstate.Cause{clusterstate.CauseNoMirrorSet, clusterstate.CauseWrongPath, clusterstate.CauseDigestAbsent, clusterstate.CauseUnreadable} {
		fs := by[c]
		if len(fs) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s (%d):\n", c, len(fs))
		for _, f := range fs {
			fmt.Fprintf(w, "  %s\n      needed by %s\n", f.Image, f.Why)
			if len(f.Tried) > 0 {
				fmt.Fprintf(w, "      tried %s\n", strings.Join(f.Tried, ", "))
			}
			if f.Detail != "" {
				fmt.Fprintf(w, "      %s\n", f.Detail)
			}
		}
	}
}
