package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/airlock-mirror/airlock/internal/clusterres"
	"github.com/airlock-mirror/airlock/internal/engine"
	"github.com/airlock-mirror/airlock/internal/imageset"
	"github.com/airlock-mirror/airlock/internal/orchestrate"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/release/graph"
	"github.com/airlock-mirror/airlock/internal/report"
)

// MirrorOptions are the options of `airlock mirror`, named as oc-mirror
// v2 names them.
type MirrorOptions struct {
	RegistryFlags
	Config string
	// From is repeatable: a transfer set's segments may be spread over
	// several directories (disks); the first is the store.
	From           []string
	Workspace      string
	DryRun         bool
	Since          string
	MaxNestedPaths int
	ParallelImages int
	ParallelLayers int
	RetryTimes     int
	GraphURL       string
	GraphDataURL   string
	GraphBase      string
	Strict         bool
	SignatureKeys  []string
	// ImagePolicyNamespaces and Lookaside shape the policy files of
	// SignatureKeys (--image-policy-namespace, --signature-lookaside).
	ImagePolicyNamespaces []string
	Lookaside             string
	// Release signatures (sha256=<hex>/signature-N files) for the
	// signature ConfigMap, and the OpenPGP key they must verify against.
	SignatureDir string
	VerifyKey    string
	// Transfer sets (internal/transfer).
	ArchiveSize  int64
	SegmentBytes string
	Full         bool
	SignKey      string
	Partial      bool
	Key          string
	// DiskLimit caps the free space counted on DIR (quotas the file
	// system does not report), as `plan --disk-limit`.
	DiskLimit string

	keys []clusterres.SigstoreKey
	mode orchestrate.Mode
	dir  string
	// fromDirs are all --from directories (dir is the first).
	fromDirs []string
	dest     ref.Ref
	since    time.Time
	cfg      *imageset.ImageSetConfiguration
	cfgData  []byte
	streams  IOStreams
}

// newMirrorOptions are the options with oc-mirror's defaults: 4 images
// and 5 blobs of each at once, 5 retries.
func newMirrorOptions(streams IOStreams) *MirrorOptions {
	return &MirrorOptions{streams: streams, ParallelImages: 4, ParallelLayers: 5, RetryTimes: 5}
}

func newMirrorCommand(streams IOStreams) *cobra.Command {
	o := newMirrorOptions(streams)
	cmd := &cobra.Command{
		Use:   "mirror -c IMAGESET.yaml (file://DIR | --from file://DIR docker://REG[/prefix] | --workspace file://DIR docker://REG[/prefix])",
		Short: "Mirror what an ImageSetConfiguration selects (oc-mirror v2's workflows)",
		Long: `Mirror the releases, operator catalogs and additional images an
ImageSetConfiguration (mirror.openshift.io/v2alpha1) selects, with oc-mirror
v2's three workflows:

  mirror-to-disk   airlock mirror -c isc.yaml file://DIR
                   sources into the local store at DIR; DIR/working-dir
                   records the config and the plan, so the next step
                   runs offline
  disk-to-mirror   airlock mirror -c isc.yaml --from file://DIR docker://REG[/prefix]
  mirror-to-mirror airlock mirror -c isc.yaml --workspace file://DIR docker://REG[/prefix]

Images are named as oc-mirror v2 names them: the source path below the
destination, digest-only images tagged sha256-<hex>; filtered catalogs are
rebuilt with the selection and pushed under their tag (or targetCatalog /
targetTag). blockedImages are removed from the plan and listed. After
disk-to-mirror and mirror-to-mirror, DIR/working-dir/cluster-resources/
holds idms-oc-mirror.yaml, itms-oc-mirror.yaml, cs-*.yaml and cc-*.yaml
(and updateService.yaml with graph: true); with --signature-key also
cip-airlock.yaml (ClusterImagePolicy: OpenShift 4.21+ admits the images of
its scopes only with a sigstore signature by the key; with
--image-policy-namespace NS instead ip-airlock.yaml, ImagePolicy objects
that require it for the pods of NS only),
sigstore-registries-airlock.yaml (with --signature-lookaside URL, where
OpenPGP signatures are served, on every entry) and
containers-policy-airlock.json (for plain CRI-O/podman nodes). The
policy's scopes are the source repositories of the images that carried a
signature: unsigned ones stay outside it. With --signature-lookaside, the
mirrors of the releases whose OpenPGP signatures were imported
(--signature-dir, or carried by the mirror-to-disk record) get a
registries.d entry with the lookaside whether or not a cosign signature
covers them; --signature-lookaside without --signature-key writes only
that registries.d file.

Release signatures: --signature-dir DIR imports DIR/sha256=<hex>/signature-N
for every release of the run (--verify-key FILE checks them first; one that
does not verify stops the run before anything is copied). They travel in the
mirror-to-disk record, and disk-to-mirror and mirror-to-mirror write them as
cluster-resources/signature-configmap.yaml (and .json): the ConfigMap the
cluster-version operator verifies releases with offline. A missing signature
is a warning naming the file to download.

A failed image never stops the run: the failures are listed at the end and
in DIR/working-dir/logs/, and the same command retries them (what is there
is skipped). --dry-run writes DIR/working-dir/dry-run/mapping.txt and
missing.txt and copies nothing.`,
		Example: `  # connected side: to disk
  airlock mirror -c imageset.yaml file:///mnt/mirror
  # carry /mnt/mirror across; disconnected side: to the registry
  airlock mirror -c imageset.yaml --from file:///mnt/mirror docker://registry.local:5000/ocp
  # a transfer set carried on two disks (airlock-transfer.json on either);
  # unpacked into the first --from, which becomes the store
  airlock mirror -c imageset.yaml --from file:///mnt/usb1 --from file:///mnt/usb2 docker://registry.local:5000/ocp
  # a set with a damaged segment: push every image whose blobs are intact
  airlock mirror -c imageset.yaml --from file:///mnt/usb1 docker://registry.local:5000/ocp --partial
  # directly, registry to registry
  airlock mirror -c imageset.yaml --workspace file:///var/lib/airlock docker://registry.local:5000
  # and require cosign signatures on the cluster (ClusterImagePolicy)
  airlock mirror -c imageset.yaml --from file:///mnt/mirror docker://registry.local:5000/ocp --signature-key cosign.pub
  # with a transfer set of 4 GiB segments (checks first that DIR can hold the store and the segments)
  airlock mirror -c imageset.yaml file:///mnt/mirror --archive-size 4
  # only for the pods of two namespaces (ImagePolicy), OpenPGP signatures served from a lookaside
  airlock mirror -c imageset.yaml --from file:///mnt/mirror docker://registry.local:5000/ocp --signature-key cosign.pub \
    --image-policy-namespace team-a --image-policy-namespace team-b --signature-lookaside https://sigs.example.com/openpgp
  # with the release signatures downloaded from mirror.openshift.com
  airlock mirror -c imageset.yaml file:///mnt/mirror --signature-dir ./signatures --verify-key redhat-release-key.asc
  # nodes verify the releases' OpenPGP signatures, served from a lookaside (registries.d only)
  airlock mirror -c imageset.yaml --from file:///mnt/mirror docker://registry.local:5000/ocp --signature-lookaside https://sigs.example.com/openpgp
  # what would be copied, and what the store lacks
  airlock mirror -c imageset.yaml file:///mnt/mirror --dry-run`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			res, err := o.Run(cmd.Context())
			o.recordMirror(cmd.Context(), "mirror", commandLine(cmd, args), res, err)
			return err
		},
	}
	o.AddFlags(cmd)
	return cmd
}

// AddFlags registers the flags of `mirror` (sync shares them).
func (o *MirrorOptions) AddFlags(cmd *cobra.Command) {
	o.RegistryFlags.AddFlags(cmd.Flags())
	o.RegistryFlags.AddSignatureFlags(cmd.Flags())
	fs := cmd.Flags()
	fs.StringVarP(&o.Config, "config", "c", "", "ImageSetConfiguration file (required)")
	fs.StringArrayVar(&o.From, "from", nil, "disk-to-mirror: the file://DIR a mirror-to-disk run wrote; repeat it for a transfer set spread over several directories (the first one becomes the store)")
	fs.StringVar(&o.Workspace, "workspace", "", "mirror-to-mirror: file://DIR for working-dir (cluster resources, logs)")
	fs.BoolVar(&o.DryRun, "dry-run", false, "write working-dir/dry-run/mapping.txt and missing.txt; copy nothing")
	fs.StringVar(&o.Since, "since", "", "with transfer archives: only blobs added since DATE (YYYY-MM-DD or RFC 3339)")
	fs.IntVar(&o.MaxNestedPaths, "max-nested-paths", 0, "maximum path components of a destination repository (0 = no limit); deeper paths are folded with '-'")
	fs.IntVar(&o.ParallelImages, "parallel-images", o.ParallelImages, "images copied at once (1-10)")
	fs.IntVar(&o.ParallelLayers, "parallel-layers", o.ParallelLayers, "blobs of one image copied at once (1-10)")
	fs.IntVar(&o.RetryTimes, "retry-times", o.RetryTimes, "retries of a failed request")
	fs.StringVar(&o.GraphURL, "graph-url", "", "update graph endpoint (default $"+graph.URLEnv+" or "+graph.DefaultURL+")")
	fs.StringVar(&o.GraphDataURL, "graph-data-url", "", "with mirror.platform.graph: the graph-data tarball (default: beside --graph-url, .../upgrades_info/graph-data)")
	fs.StringVar(&o.GraphBase, "graph-base-image", orchestrate.DefaultGraphBase, "with mirror.platform.graph: the image the graph data is put on (its command copies the data for the Update Service)")
	fs.Int64Var(&o.ArchiveSize, "archive-size", 0, "mirror-to-disk: also write a transfer set of segments of at most this many GiB into DIR (default: the config's archiveSize; 0 = none)")
	fs.StringVar(&o.SegmentBytes, "segment-bytes", "", "mirror-to-disk: segment size in bytes (overrides --archive-size)")
	fs.BoolVar(&o.Full, "full", false, "mirror-to-disk: the transfer set holds every blob, not only those earlier sets did not ship")
	fs.StringVar(&o.SignKey, "sign-key", "", "mirror-to-disk: key to sign the transfer set with: PEM private key (ed25519, ECDSA) or OpenPGP secret key without passphrase")
	fs.StringVar(&o.DiskLimit, "disk-limit", "", "mirror-to-disk with a transfer set: count at most this much free on DIR (e.g. 500G, bytes), for quotas the file system does not report")
	fs.BoolVar(&o.Partial, "partial", false, "disk-to-mirror of a transfer set with bad segments: push every image whose blobs are intact (still exits non-zero)")
	fs.StringVar(&o.Key, "key", "", "disk-to-mirror of a transfer set: public key its signature must match (PEM or OpenPGP)")
	fs.BoolVar(&o.Strict, "strict", false, "unknown fields and oc-mirror v1 leftovers in the config are errors, not warnings")
	addSignatureKeyFlag(fs, &o.SignatureKeys)
	fs.StringArrayVar(&o.ImagePolicyNamespaces, "image-policy-namespace", nil, imagePolicyNamespaceUsage)
	fs.StringVar(&o.Lookaside, "signature-lookaside", "", mirrorLookasideUsage)
	fs.StringVar(&o.SignatureDir, "signature-dir", "", "directory holding release signatures as sha256=<hex>/signature-N (for cluster-resources/signature-configmap.yaml)")
	fs.StringVar(&o.VerifyKey, "verify-key", "", "OpenPGP public key file the imported release signatures must verify against")
}

// graphData is the graph-data image configuration of the flags.
func (o *MirrorOptions) graphData() orchestrate.GraphData {
	u := o.GraphDataURL
	if u == "" {
		u = orchestrate.GraphDataURL(o.GraphURL)
	}
	return orchestrate.GraphData{URL: u, Base: o.GraphBase}
}

func fileDir(flag, s string) (string, error) {
	if !strings.HasPrefix(s, "file://") || strings.TrimPrefix(s, "file://") == "" {
		return "", fmt.Errorf("%s %q: want file://DIR", flag, s)
	}
	return strings.TrimPrefix(s, "file://"), nil
}

// Complete picks the workflow from the destination and --from/--workspace,
// as oc-mirror does, and reads the config.
func (o *MirrorOptions) Complete(args []string) error {
	var err error
	dest := args[0]
	switch {
	case strings.HasPrefix(dest, "file://"):
		if len(o.From) > 0 || o.Workspace != "" {
			return fmt.Errorf("destination %s is a directory (mirror-to-disk): --from and --workspace do not apply", dest)
		}
		o.mode = orchestrate.MirrorToDisk
		if o.dir, err = fileDir("destination", dest); err != nil {
			return err
		}
	case strings.HasPrefix(dest, "docker://"):
		switch {
		case len(o.From) > 0 && o.Workspace != "":
			return fmt.Errorf("--from (disk-to-mirror) and --workspace (mirror-to-mirror) are exclusive")
		case len(o.From) > 0:
			o.mode = orchestrate.DiskToMirror
			o.fromDirs = nil
			for _, f := range o.From {
				var d string
				if d, err = fileDir("--from", f); err != nil {
					break
				}
				o.fromDirs = append(o.fromDirs, d)
			}
			if err == nil {
				o.dir = o.fromDirs[0]
			}
		case o.Workspace != "":
			o.mode = orchestrate.MirrorToMirror
			o.dir, err = fileDir("--workspace", o.Workspace)
		default:
			return fmt.Errorf("destination %s is a registry: give --from file://DIR (disk-to-mirror) or --workspace file://DIR (mirror-to-mirror)", dest)
		}
		if err != nil {
			return err
		}
		if o.dest, err = ref.Parse(dest); err != nil {
			return fmt.Errorf("destination: %w", err)
		}
		if o.dest.HasTagOrDigest() {
			return fmt.Errorf("destination %s: give a registry or registry/prefix without tag or digest", dest)
		}
	default:
		return fmt.Errorf("destination %q: want file://DIR (mirror-to-disk) or docker://REG[/prefix]", dest)
	}
	if o.Since != "" {
		for _, layout := range []string{time.RFC3339, "2006-01-02"} {
			if t, err := time.Parse(layout, o.Since); err == nil {
				o.since = t
				break
			}
		}
		if o.since.IsZero() {
			return fmt.Errorf("--since %q: want a date (2025-01-31) or an RFC 3339 time", o.Since)
		}
	}
	if o.keys, err = loadSignatureKeys(o.SignatureKeys); err != nil {
		return err
	}
	if err := validateSignaturePolicyFlags(len(o.keys), o.Lookaside, o.ImagePolicyNamespaces, true); err != nil {
		return err
	}
	if len(o.keys) > 0 && o.mode == orchestrate.MirrorToDisk {
		return fmt.Errorf("--signature-key: mirror-to-disk writes no cluster resources; give it to the disk-to-mirror run (--from file://DIR docker://REG)")
	}
	if o.Lookaside != "" && o.mode == orchestrate.MirrorToDisk {
		return fmt.Errorf("--signature-lookaside: mirror-to-disk writes no cluster resources; give it to the disk-to-mirror run (--from file://DIR docker://REG)")
	}
	if o.Config == "" {
		return fmt.Errorf("-c/--config is required: the ImageSetConfiguration file")
	}
	if o.cfgData, err = os.ReadFile(o.Config); err != nil {
		return fmt.Errorf("reading the config: %w", err)
	}
	cfg, warns, err := imageset.ParseWarn(o.cfgData, o.Config, o.Strict)
	printWarnings(o.streams.ErrOut, warns)
	if err != nil {
		return err
	}
	o.cfg = cfg
	return nil
}

// Validate checks the numeric flags with oc-mirror's bounds.
func (o *MirrorOptions) Validate() error {
	switch {
	case o.ParallelImages < 1 || o.ParallelImages > 10:
		return fmt.Errorf("--parallel-images %d: want 1 to 10", o.ParallelImages)
	case o.ParallelLayers < 1 || o.ParallelLayers > 10:
		return fmt.Errorf("--parallel-layers %d: want 1 to 10", o.ParallelLayers)
	case o.RetryTimes < 0:
		return fmt.Errorf("--retry-times %d: want 0 or more", o.RetryTimes)
	case o.MaxNestedPaths < 0:
		return fmt.Errorf("--max-nested-paths %d: want 0 (no limit) or more", o.MaxNestedPaths)
	case o.DiskLimit != "" && o.mode != orchestrate.MirrorToDisk:
		return fmt.Errorf("--disk-limit applies to mirror-to-disk (file://DIR) with a transfer set")
	case o.VerifyKey != "" && o.SignatureDir == "":
		return fmt.Errorf("--verify-key needs --signature-dir: the directory holding sha256=<hex>/signature-N files")
	case o.MaxNestedPaths > 0 && o.mode == orchestrate.MirrorToDisk:
		return fmt.Errorf("--max-nested-paths applies to a registry destination (disk-to-mirror or mirror-to-mirror), not to file://")
	}
	return nil
}

// engineOptions maps oc-mirror's flag names onto the copy engine:
// --parallel-images images at once, --parallel-layers blobs of one image at
// once, --retry-times retries of a failed request.
func (o *MirrorOptions) engineOptions() (engine.Options, error) {
	opts, err := o.EngineOptions(o.dir)
	if err != nil {
		return opts, err
	}
	opts.Parallel, opts.ParallelBlobs, opts.RetryTimes = o.ParallelImages, o.ParallelLayers, o.RetryTimes
	opts.DryRun = o.DryRun
	opts.Progress = o.streams.ErrOut
	return opts, nil
}

// Run builds the engine and runs the workflow; the result (nil when the
// run could not start) is what the audit trail records.
func (o *MirrorOptions) Run(ctx context.Context) (*orchestrate.Result, error) {
	opts, err := o.engineOptions()
	if err != nil {
		return nil, err
	}
	eng, err := engine.New(opts)
	if err != nil {
		return nil, fmt.Errorf("configuring the copy engine: %w", err)
	}
	warn := func(s string) { fmt.Fprintf(o.streams.ErrOut, "warning: %s\n", s) }
	fmt.Fprintf(o.streams.ErrOut, "%s: %s\n", o.mode, o.Config)
	mo := orchestrate.Options{
		Mode: o.mode, Config: o.cfg, ConfigFile: o.Config, ConfigData: o.cfgData, Dir: o.dir, Dest: o.dest,
		DryRun: o.DryRun, Since: o.since, MaxNestedPaths: o.MaxNestedPaths, SignatureKeys: o.keys, Engine: eng,
		ImagePolicyNamespaces: o.ImagePolicyNamespaces, Lookaside: o.Lookaside,
		Graph: &graph.Client{URL: o.GraphURL}, Warn: warn, GraphData: o.graphData(),
		ReleaseSignatures: orchestrate.SignatureSource{Dir: o.SignatureDir, VerifyKey: o.VerifyKey},
	}
	if err := o.transferHooks(&mo); err != nil {
		return nil, err
	}
	var partialErr error
	if o.mode == orchestrate.DiskToMirror && !o.DryRun {
		if mo.Skip, partialErr = o.importSet(); partialErr != nil && mo.Skip == nil {
			return nil, partialErr
		}
	}
	res, err := orchestrate.Mirror(ctx, mo)
	if res != nil {
		o.print(res)
	}
	if err == nil {
		err = partialErr
	}
	return res, err
}

func (o *MirrorOptions) print(res *orchestrate.Result) {
	out := o.streams.Out
	for _, b := range res.Blocked {
		fmt.Fprintf(out, "blocked: %s (%s) matches blockedImages %q: not mirrored\n", b.Image, b.Kind, b.Pattern)
	}
	if res.Report != nil {
		if o.DryRun {
			report.DryRun(out, res.Report)
		} else {
			report.Summary(out, res.Report)
			if len(res.Report.Failed()) > 0 {
				_ = report.Failures(o.streams.ErrOut, res.Report, time.Now())
			}
		}
	}
	for _, c := range res.Catalogs {
		fmt.Fprintf(out, "catalog %s -> %s@%s\n", c.Origin.Catalog, c.Dests[0], c.Digest)
	}
	for _, e := range res.CatalogErrors {
		fmt.Fprintf(o.streams.ErrOut, "error: %v\n", e)
	}
	for _, f := range res.Files {
		fmt.Fprintf(out, "wrote %s\n", f)
	}
}

// loadConfig reads an ImageSetConfiguration, printing its warnings
// (unknown fields, oc-mirror v1 leftovers) to errOut.
func loadConfig(errOut io.Writer, path string, strict bool) (*imageset.ImageSetConfiguration, error) {
	cfg, warns, err := imageset.LoadWarn(path, strict)
	printWarnings(errOut, warns)
	return cfg, err
}

func printWarnings(errOut io.Writer, warns imageset.Problems) {
	for _, w := range warns {
		fmt.Fprintf(errOut, "warning: %s\n", w.Error())
	}
}
