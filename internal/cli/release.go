package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/airlock-mirror/airlock/internal/atomicfile"
	"github.com/airlock-mirror/airlock/internal/clusterres"
	"github.com/airlock-mirror/airlock/internal/engine"
	"github.com/airlock-mirror/airlock/internal/orchestrate"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/release"
	"github.com/airlock-mirror/airlock/internal/release/graph"
	"github.com/airlock-mirror/airlock/internal/report"
)

func newReleaseCommand(streams IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "release",
		Short: "Inspect, list and mirror OpenShift release payloads",
		Example: `  # what is in a release, and how big is it to mirror
  airlock release info quay.io/openshift-release-dev/ocp-release:4.12.0-x86_64

  # mirror a release to a disconnected registry
  airlock release mirror --from quay.io/openshift-release-dev/ocp-release:4.12.0-x86_64 --to mirror.local:5000/ocp/release`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newReleaseInfoCommand(streams), newReleaseMirrorCommand(streams), newReleaseListCommand(streams))
	return cmd
}

func checkOutput(o string) error {
	switch o {
	case "", "json", "yaml":
		return nil
	}
	return fmt.Errorf("-o %q: want json or yaml (or nothing for text)", o)
}

func printStructured(w io.Writer, format string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if format == "yaml" {
		if b, err = yaml.JSONToYAML(b); err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func (f *RegistryFlags) newEngine(storeDir string, progress io.Writer, dryRun bool) (*engine.Engine, error) {
	opts, err := f.EngineOptions(storeDir)
	if err != nil {
		return nil, err
	}
	opts.Progress = progress
	opts.DryRun = dryRun
	return engine.New(opts)
}

// ---- release info ----

// ReleaseInfoOptions are the options of `airlock release info`.
type ReleaseInfoOptions struct {
	RegistryFlags
	FromDir  string
	Output   string
	Parallel int

	Image   ref.Ref
	streams IOStreams
}

func newReleaseInfoCommand(streams IOStreams) *cobra.Command {
	o := &ReleaseInfoOptions{streams: streams}
	cmd := &cobra.Command{
		Use:   "info RELEASE_IMAGE",
		Short: "Show the version, architecture, size and components of a release payload",
		Long: `Reads release-manifests/image-references and release-metadata from the release
image (only the layers needed, from the top) and resolves every component
manifest to compute the total size to mirror, each blob counted once.`,
		Example: `  airlock release info quay.io/openshift-release-dev/ocp-release:4.12.0-x86_64
  airlock release info -o json quay.io/openshift-release-dev/ocp-release@sha256:4c5a7e26d707780be6466ddc9591865beb2e3baa5556432d23e8d57966a2dd18
  # a release stored by "release mirror --to-dir"
  airlock release info --from-dir /mnt/mirror file://openshift/release:4.12.0-x86_64`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd)
		},
	}
	o.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&o.FromDir, "from-dir", "", "local store directory that a file:// release image is read from")
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "output format: json or yaml (default: text)")
	cmd.Flags().IntVar(&o.Parallel, "parallel", 8, "component manifests resolved at once")
	return cmd
}

// Complete parses the image reference.
func (o *ReleaseInfoOptions) Complete(args []string) error {
	r, err := ref.Parse(args[0])
	if err != nil {
		return err
	}
	o.Image = r
	return nil
}

// Validate checks the flags.
func (o *ReleaseInfoOptions) Validate() error {
	if err := checkOutput(o.Output); err != nil {
		return err
	}
	if !o.Image.HasTagOrDigest() {
		return fmt.Errorf("release image %s: give a tag or digest, e.g. %s:4.12.0-x86_64", o.Image, o.Image)
	}
	if o.Image.Transport == ref.File && o.FromDir == "" {
		return fmt.Errorf("release image %s is in a local store: pass the store directory with --from-dir", o.Image)
	}
	if o.Parallel < 1 {
		return fmt.Errorf("--parallel %d: want at least 1", o.Parallel)
	}
	return nil
}

// Run prints the release description.
func (o *ReleaseInfoOptions) Run(cmd *cobra.Command) error {
	eng, err := o.newEngine(o.FromDir, nil, false)
	if err != nil {
		return err
	}
	opts := release.InspectOptions{Parallel: o.Parallel}
	if o.Image.Transport == ref.File {
		// A stored release is read offline: its components are the
		// store's tags, not the registries image-references names.
		store := o.Image.Repo()
		opts.FromStore = &store
	}
	info, err := release.Inspect(cmd.Context(), eng, o.Image, opts)
	if err != nil {
		return err
	}
	if o.Output != "" {
		return printStructured(o.streams.Out, o.Output, info)
	}
	w := tabwriter.NewWriter(o.streams.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "Name:\t%s\n", info.Version)
	fmt.Fprintf(w, "Image:\t%s\n", info.Image)
	fmt.Fprintf(w, "Digest:\t%s\n", info.Digest)
	fmt.Fprintf(w, "Architecture:\t%s\n", info.Architecture)
	if len(info.Previous) > 0 {
		fmt.Fprintf(w, "Upgrades from:\t%s\n", strings.Join(info.Previous, ", "))
	}
	fmt.Fprintf(w, "Components:\t%d\n", info.ComponentCount)
	fmt.Fprintf(w, "Total size:\t%s (%d bytes, each blob counted once)\n", report.Bytes(info.TotalSize), info.TotalSize)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "COMPONENT\tSIZE\tIMAGE")
	for _, c := range info.Components {
		img := c.Image
		if len(c.Platforms) > 0 {
			img += " (" + strings.Join(c.Platforms, ", ") + ")"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\n", c.Name, report.Bytes(c.Size), img)
	}
	return w.Flush()
}

// ---- release mirror ----

// ReleaseMirrorOptions are the options of `airlock release mirror`, named
// like `oc adm release mirror`.
type ReleaseMirrorOptions struct {
	RegistryFlags
	From             string
	To               string
	ToReleaseImage   string
	ToDir            string
	FromDir          string
	ToManifests      string
	ReleaseSource    string
	DryRun           bool
	KeepManifestList bool
	SignatureDir     string
	VerifyKey        string
	PrintMirror      string
	SkipReleaseImage bool
	SignatureKeys    []string
	Lookaside        string

	keys      []clusterres.SigstoreKey
	from, to  ref.Ref
	toRelease *ref.Ref
	storeDir  string
	streams   IOStreams
}

func newReleaseMirrorCommand(streams IOStreams) *cobra.Command {
	o := &ReleaseMirrorOptions{streams: streams}
	cmd := &cobra.Command{
		Use:   "mirror --from RELEASE_IMAGE (--to REPOSITORY | --to-dir DIR)",
		Short: "Mirror an OpenShift release payload and all its component images",
		Long: `Copies the release image and every image its image-references lists, naming
them as oc adm release mirror does: the release as <version>-<arch> and each
component as <version>-<arch>-<component> in the --to repository (-multi with
--keep-manifest-list). Component images are always copied whole and
byte-for-byte, so every digest the payload references exists at the mirror.

After a registry mirror it prints the imageContentSources and
imageDigestSources sections for install-config.yaml and writes an
ImageDigestMirrorSet and an ImageContentSourcePolicy (clusters before 4.13)
into --to-manifests. With --to-dir it writes the local store
(file://openshift/release) and prints the command that uploads it later.

Release signatures: --signature-dir DIR imports DIR/sha256=<hex>/signature-N,
--verify-key FILE checks them (OpenPGP, and the signed digest must be the
release's) before anything is copied, and the ConfigMap the cluster-version
operator reads is written next to the mirror sets (with --to-dir into
DIR/config). --signature-key FILE (a cosign public key; repeatable) also
writes cip-airlock.yaml, a ClusterImagePolicy for the release image's source
repository (the components are pinned by digest in the signed payload; OpenShift 4.21+ refuses an update through a mirror unless the
sigstore signature verifies; airlock copies the signatures with the
images), and registries.d/policy.json files for plain CRI-O nodes.`,
		Example: `  # registry to registry
  airlock release mirror --from quay.io/openshift-release-dev/ocp-release:4.12.0-x86_64 \
    --to mirror.local:5000/ocp4/openshift4 --to-manifests ./release-manifests

  # to disk, carry the directory across the air gap, then upload
  airlock release mirror --from quay.io/openshift-release-dev/ocp-release:4.12.0-x86_64 --to-dir /mnt/mirror
  airlock release mirror --from-dir /mnt/mirror --from file://openshift/release:4.12.0-x86_64 \
    --release-source quay.io/openshift-release-dev/ocp-release --to mirror.local:5000/ocp4/openshift4

  # and a ClusterImagePolicy trusting the cosign key the release was signed with
  airlock release mirror --from quay.io/openshift-release-dev/ocp-release:4.12.0-x86_64 --to mirror.local:5000/ocp4/openshift4 \
    --signature-key cosign.pub

  # with verified signatures
  airlock release mirror --from quay.io/openshift-release-dev/ocp-release:4.12.0-x86_64 --to mirror.local:5000/ocp4/openshift4 \
    --signature-dir ./signatures --verify-key redhat-release-key.asc`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd)
		},
	}
	o.AddFlags(cmd.Flags())
	o.AddSignatureFlags(cmd.Flags())
	fs := cmd.Flags()
	fs.StringVar(&o.From, "from", "", "release image to mirror, by tag or digest (file://openshift/release:TAG with --from-dir)")
	fs.StringVar(&o.To, "to", "", "destination repository for the release and its components, e.g. mirror.local:5000/ocp/release")
	fs.StringVar(&o.ToReleaseImage, "to-release-image", "", "where to put the release image instead of <--to>:<version>-<arch>")
	fs.StringVar(&o.ToDir, "to-dir", "", "write the release into this local store directory (as file://openshift/release) instead of a registry")
	fs.StringVar(&o.FromDir, "from-dir", "", "read the release from this local store directory (written by --to-dir)")
	fs.StringVar(&o.ToManifests, "to-manifests", ".", "directory for the ImageDigestMirrorSet, ImageContentSourcePolicy and signature ConfigMap files")
	fs.StringVar(&o.ReleaseSource, "release-source", "", "original repository of the release image (e.g. quay.io/openshift-release-dev/ocp-release), for the mirror sections when reading --from-dir; default: the --from repository")
	fs.BoolVar(&o.DryRun, "dry-run", false, "check every source and print what would be copied; copy and write nothing")
	fs.BoolVar(&o.KeepManifestList, "keep-manifest-list", false, "mirror a multi-arch release image as the whole manifest list (tags end in -multi)")
	fs.StringVar(&o.SignatureDir, "signature-dir", "", "directory holding release signatures as sha256=<hex>/signature-N")
	fs.StringVar(&o.VerifyKey, "verify-key", "", "OpenPGP public key file the imported signatures must verify against")
	fs.StringVar(&o.PrintMirror, "print-mirror-instructions", "all", "install-config sections to print: all, idms (imageDigestSources), icsp (imageContentSources) or none")
	fs.BoolVar(&o.SkipReleaseImage, "skip-release-image", false, "copy only the components, not the release image itself")
	addSignatureKeyFlag(fs, &o.SignatureKeys)
	fs.StringVar(&o.Lookaside, "signature-lookaside", "", signatureLookasideUsage)
	return cmd
}

// Complete parses references and derives the store directory.
func (o *ReleaseMirrorOptions) Complete() error {
	var err error
	if o.From != "" {
		if o.from, err = ref.Parse(o.From); err != nil {
			return fmt.Errorf("--from: %w", err)
		}
	}
	switch {
	case o.ToDir != "":
		o.to = ref.Ref{Transport: ref.File, Path: release.StoreRepo}
		o.storeDir = o.ToDir
	case o.To != "":
		if o.to, err = ref.Parse(o.To); err != nil {
			return fmt.Errorf("--to: %w", err)
		}
	}
	if o.FromDir != "" {
		o.storeDir = o.FromDir
	}
	if o.keys, err = loadSignatureKeys(o.SignatureKeys); err != nil {
		return err
	}
	if o.ToReleaseImage != "" {
		r, err := ref.Parse(o.ToReleaseImage)
		if err != nil {
			return fmt.Errorf("--to-release-image: %w", err)
		}
		o.toRelease = &r
	}
	return nil
}

// Validate rejects contradictory or incomplete flags with what to do.
func (o *ReleaseMirrorOptions) Validate() error {
	switch {
	case o.From == "":
		return fmt.Errorf("--from is required: the release image, e.g. --from quay.io/openshift-release-dev/ocp-release:4.12.0-x86_64")
	case !o.from.HasTagOrDigest():
		return fmt.Errorf("--from %s: give a tag or digest", o.From)
	case o.To == "" && o.ToDir == "":
		return fmt.Errorf("give a destination: --to REPOSITORY (a registry) or --to-dir DIR (a local store)")
	case o.To != "" && o.ToDir != "":
		return fmt.Errorf("--to and --to-dir are exclusive: mirror to a registry or to disk, not both")
	case o.ToDir != "" && o.FromDir != "":
		return fmt.Errorf("--to-dir and --from-dir are exclusive: read from a store to upload it (--from-dir with --to), or write one (--to-dir)")
	case o.ToDir != "" && o.toRelease != nil:
		return fmt.Errorf("--to-release-image needs --to; with --to-dir the release image is stored as file://%s:<version>-<arch>", release.StoreRepo)
	case o.to.Transport != ref.Docker && o.ToDir == "":
		return fmt.Errorf("--to %s: give a registry repository; use --to-dir for a local store", o.To)
	case o.to.HasTagOrDigest():
		return fmt.Errorf("--to %s: give a repository without tag or digest; tags are derived from the release version (use --to-release-image to name the release image)", o.To)
	case o.from.Transport == ref.File && o.FromDir == "":
		return fmt.Errorf("--from %s is in a local store: pass the store directory with --from-dir", o.From)
	case o.FromDir != "" && o.from.Transport != ref.File:
		return fmt.Errorf("--from-dir %s: --from must name the stored release, e.g. --from file://%s:4.12.0-x86_64", o.FromDir, release.StoreRepo)
	case o.from.Transport == ref.OCI:
		return fmt.Errorf("--from %s: OCI layouts are not supported for releases; use a registry or --from-dir", o.From)
	case o.PrintMirror != "all" && o.PrintMirror != "idms" && o.PrintMirror != "icsp" && o.PrintMirror != "none":
		return fmt.Errorf("--print-mirror-instructions %q: want all, idms, icsp or none", o.PrintMirror)
	case o.SkipReleaseImage && o.toRelease != nil:
		return fmt.Errorf("--skip-release-image and --to-release-image contradict each other")
	case len(o.keys) > 0 && o.ToDir != "":
		return fmt.Errorf("--signature-key: --to-dir writes no cluster resources; give it to the run that uploads the store (--from-dir ... --to REGISTRY/REPOSITORY)")
	case o.VerifyKey != "" && o.SignatureDir == "":
		return fmt.Errorf("--verify-key needs --signature-dir: the directory holding sha256=<hex>/signature-N files")
	}
	if err := validateSignaturePolicyFlags(len(o.keys), o.Lookaside, nil, false); err != nil {
		return err
	}
	if o.toRelease != nil && (o.toRelease.Transport != ref.Docker || !o.toRelease.HasTagOrDigest() || o.toRelease.Digest != "") {
		return fmt.Errorf("--to-release-image %s: give a registry reference with a tag, e.g. mirror.local:5000/ocp/release:4.12.0", o.ToReleaseImage)
	}
	return nil
}

// Run mirrors through orchestrate.ReleaseMirror, which prints as it goes.
func (o *ReleaseMirrorOptions) Run(cmd *cobra.Command) error {
	eng, err := o.newEngine(o.storeDir, o.streams.ErrOut, o.DryRun)
	if err != nil {
		return fmt.Errorf("configuring the copy engine: %w", err)
	}
	_, err = orchestrate.ReleaseMirror(cmd.Context(), orchestrate.ReleaseMirrorOptions{
		ReleaseRequest: orchestrate.ReleaseRequest{From: o.from, To: o.to, ToRelease: o.toRelease,
			KeepManifestList: o.KeepManifestList, SkipReleaseImage: o.SkipReleaseImage},
		ToDir: o.ToDir, FromDir: o.FromDir, ToManifests: o.ToManifests, ReleaseSource: o.ReleaseSource,
		DryRun: o.DryRun, SignatureDir: o.SignatureDir, VerifyKey: o.VerifyKey, PrintMirror: o.PrintMirror,
		SignatureKeys: o.keys, Lookaside: o.Lookaside,
		Engine: eng, Out: o.streams.Out, ErrOut: o.streams.ErrOut,
	})
	return err
}

// ---- release list ----

// ReleaseListOptions are the options of `airlock release list`.
type ReleaseListOptions struct {
	Channels     []string
	Arch         string
	MinVersion   string
	MaxVersion   string
	ShortestPath bool
	Full         bool
	GraphURL     string
	Output       string
	// SaveGraph is the file the fetched graph is written to (the channels'
	// graphs merged), for `registry prune --graph` on the disconnected side.
	SaveGraph string

	streams IOStreams
	http    *http.Client
}

func newReleaseListCommand(streams IOStreams) *cobra.Command {
	o := &ReleaseListOptions{streams: streams}
	cmd := &cobra.Command{
		Use:   "list --channel CHANNEL",
		Short: "List the releases of update channels (heads, version ranges, upgrade paths)",
		Long: `Resolves releases from the OpenShift update graph (Cincinnati API):
  no versions          the channel head
  --min-version        from that version up to --max-version (default: head)
  --full               every release of the channel
  --shortest-path      only the releases on the upgrade path min -> max
Several --channel flags merge; with more than one, the upgrade path from the
lowest to the highest selected version across the channels is added.

Upgrade paths use recommended (unconditional) updates only; when there is no
such path, conditional updates are used too and each risky hop is reported
with its risk names.`,
		Example: `  airlock release list --channel stable-4.13
  airlock release list --channel stable-4.13 --min-version 4.13.10 --max-version 4.13.20
  airlock release list --channel stable-4.12 --channel stable-4.13 --min-version 4.12.50 --shortest-path -o yaml
  UPDATE_URL_OVERRIDE=http://osus.local/api/upgrades_info/v1/graph airlock release list --channel stable-4.13 --full

  # Carry the graph with the mirror, for 'registry prune --keep-upgrade-path --graph'
  airlock release list --channel stable-4.13 --save-graph stable-4.13-amd64.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd)
		},
	}
	fs := cmd.Flags()
	fs.StringArrayVar(&o.Channels, "channel", nil, "update channel, e.g. stable-4.13 (repeatable)")
	fs.StringVar(&o.Arch, "arch", "amd64", "architecture: amd64, arm64, ppc64le, s390x or multi")
	fs.StringVar(&o.MinVersion, "min-version", "", "lowest version (default: the channel head, or its first release with --full)")
	fs.StringVar(&o.MaxVersion, "max-version", "", "highest version (default: the channel head)")
	fs.BoolVar(&o.ShortestPath, "shortest-path", false, "only the releases on the upgrade path from --min-version to --max-version")
	fs.BoolVar(&o.Full, "full", false, "every release of the channel (from its first release)")
	fs.StringVar(&o.GraphURL, "graph-url", "", "update graph endpoint (default $"+graph.URLEnv+" or "+graph.DefaultURL+")")
	fs.StringVarP(&o.Output, "output", "o", "", "output format: json or yaml (default: text)")
	fs.StringVar(&o.SaveGraph, "save-graph", "", "also write the fetched update graph (the channels' graphs merged) to this JSON file, for 'registry prune --keep-upgrade-path --graph' offline")
	return cmd
}

// savingFetcher keeps the graphs it fetches, for --save-graph.
type savingFetcher struct {
	graph.Fetcher
	got []*graph.Graph
}

func (f *savingFetcher) Fetch(ctx context.Context, channel, arch string) (*graph.Graph, error) {
	g, err := f.Fetcher.Fetch(ctx, channel, arch)
	if err == nil {
		f.got = append(f.got, g)
	}
	return g, err
}

// Validate checks the flags.
func (o *ReleaseListOptions) Validate() error {
	if len(o.Channels) == 0 {
		return fmt.Errorf("--channel is required, e.g. --channel stable-4.13")
	}
	if err := checkOutput(o.Output); err != nil {
		return err
	}
	switch o.Arch {
	case "amd64", "arm64", "ppc64le", "s390x", "multi":
	default:
		return fmt.Errorf("--arch %q: want amd64, arm64, ppc64le, s390x or multi", o.Arch)
	}
	if o.ShortestPath && o.Full {
		return fmt.Errorf("--shortest-path and --full are exclusive: a path or the whole channel")
	}
	return nil
}

// Run resolves and prints.
func (o *ReleaseListOptions) Run(cmd *cobra.Command) error {
	var chans []graph.Channel
	for _, c := range o.Channels {
		chans = append(chans, graph.Channel{Name: c, MinVersion: o.MinVersion, MaxVersion: o.MaxVersion, ShortestPath: o.ShortestPath, Full: o.Full})
	}
	fetch := &savingFetcher{Fetcher: &graph.Client{URL: o.GraphURL, HTTP: o.http}}
	res, err := graph.Resolve(cmd.Context(), fetch, o.Arch, chans)
	if err != nil {
		return err
	}
	if o.SaveGraph != "" {
		g := graph.Merge(fetch.got...)
		data, err := json.Marshal(g)
		if err != nil {
			return err
		}
		if err := atomicfile.Write(o.SaveGraph, data, 0o644); err != nil {
			return fmt.Errorf("--save-graph: %w", err)
		}
	}
	for _, w := range res.Warnings {
		slog.Warn(w)
	}
	if o.Output != "" {
		return printStructured(o.streams.Out, o.Output, res)
	}
	w := tabwriter.NewWriter(o.streams.Out, 0, 4, 2, ' ', 0)
	for _, c := range res.Channels {
		fmt.Fprintf(w, "Channel %s: head %s, selected %s to %s\n", c.Name, c.Head, c.MinVersion, c.MaxVersion)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "VERSION\tCHANNELS\tPAYLOAD")
	for _, r := range res.Releases {
		ch := strings.Join(r.Channels, ",")
		if r.UpgradePath && ch == "" {
			ch = "(upgrade path)"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\n", r.Version, ch, r.Payload)
	}
	paths := map[string][]graph.Step{}
	for _, c := range res.Channels {
		if len(c.Path) > 0 {
			paths[c.Name] = c.Path
		}
	}
	if len(res.UpgradePath) > 0 {
		paths["across channels"] = res.UpgradePath
	}
	for _, c := range append(append([]string{}, o.Channels...), "across channels") {
		p, ok := paths[c]
		if !ok {
			continue
		}
		var hops []string
		for _, s := range p {
			h := s.Version
			if len(s.Risks) > 0 {
				h += " (conditional: " + strings.Join(s.Risks, ", ") + ")"
			}
			hops = append(hops, h)
		}
		fmt.Fprintf(w, "\nUpgrade path (%s): %s\n", c, strings.Join(hops, " -> "))
	}
	return w.Flush()
}
