package cli

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/blang/semver/v4"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/airlock-mirror/airlock/internal/audit"
	"github.com/airlock-mirror/airlock/internal/engine"
	"github.com/airlock-mirror/airlock/internal/registry"
	"github.com/airlock-mirror/airlock/internal/regscan"
	"github.com/airlock-mirror/airlock/internal/release/graph"
	"github.com/airlock-mirror/airlock/internal/report"
	"github.com/airlock-mirror/airlock/internal/retention"
)

// RegistryPruneOptions holds `airlock registry prune` flags.
type RegistryPruneOptions struct {
	Root             string
	StorageConfig    string
	KeepLast         int
	KeepVersions     int
	KeepPulledWithin time.Duration
	Protect          []string
	DryRun           bool
	Output           string
	Force            bool
	// KeepUpgradePath are the clusters' current versions; Graph the update
	// graph file and AllPaths the "any path" choice (--keep-upgrade-path,
	// --graph, --all-paths).
	KeepUpgradePath []string
	Graphs          []string
	AllPaths        bool
	// Channel restricts the graph built from the mirror (no --graph) to
	// the versions of one channel of the mirrored graph-data image.
	Channel string
	// Registry is a registry airlock does not run (HOST[:PORT][/prefix]):
	// scanned and pruned through its API, with its own flags for access.
	Registry string
	Reg      RegistryFlags

	policy  retention.Policy
	rootSet bool // --root given: refused beside --registry
	storage registry.StorageFile
	streams IOStreams
	args    []string
}

func newRegistryPruneCommand(streams IOStreams) *cobra.Command {
	o := &RegistryPruneOptions{streams: streams}
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Delete what a retention policy lets go, then collect the space",
		Long: `Apply retention policies to the embedded registry's storage, delete what
they let go through the registry API, and run garbage collection so the space
really comes back. With --registry, prune a registry airlock does not run
(Quay, Harbor, a docker registry): scanned and pruned through its API only;
its own garbage collection must then return the space.

Policies (combine them; a tag is kept when any rule keeps it):
  --keep-last N            the newest N tags of each repository (semantic
                           versions first, then image creation time)
  --keep-versions N        the newest N bundles of each channel of every
                           operator catalog: the catalog image is rebuilt
                           under its tag without the others, and their bundle
                           and related images are deleted unless a kept bundle
                           or a kept release still names them
  --keep-pulled-within D   tags pulled within D (e.g. 720h), from the pull log
                           'registry serve' keeps
  --protect REGEX          repositories never pruned (repeatable)
  --keep-upgrade-path V    of the OpenShift release images, keep only those on
                           the upgrade path from the clusters' current
                           version(s) V (comma-separated or repeated) to the
                           channel head, per the Cincinnati graph --graph FILE
                           (a JSON response of the update service for the
                           clusters' channel and architecture). Without
                           --graph the graph is built from the mirror: the
                           mirrored releases, the updates their
                           release-metadata lists (previous) between them,
                           and, when openshift/graph-image:latest is
                           mirrored (mirror.platform.graph), its blocked
                           edges and with --channel NAME that channel's
                           versions. Paths go
                           through the releases the registry holds only; the
                           shortest one is kept (--all-paths: every release on
                           any path, conditional updates included). Releases
                           are matched by payload digest, else by version;
                           one not in the graph is kept. The current versions
                           and the head are never deleted; components of the
                           releases that go are deleted unless a kept release
                           (or another tag) still uses them.

Never deleted: a manifest a kept tag, index, catalog or release needs; blobs
a kept manifest uses; signatures and referrers of kept manifests (those of
deleted manifests go with them). --dry-run shows what would go and the space
freed after dedup; nothing is changed. Stop 'airlock registry serve' on this
storage first (prune refuses while it runs, see --force): garbage collection
must not race a push.

--registry HOST[:PORT][/prefix] prunes a remote registry instead of --root
(only the repositories under prefix when given), with --authfile, --insecure
and --ca-file as for mirror. It must answer the catalog API and allow deletes
(docker registry: REGISTRY_STORAGE_DELETE_ENABLED=true). airlock cannot
collect its garbage: manifests are deleted, blobs stay until the registry's
own garbage collection runs (docker registry: 'registry garbage-collect
CONFIG.yml' while it is read-only or stopped, never --delete-untagged, which
would delete the mirror's untagged component images; Quay and Harbor run
theirs on a schedule). The bytes shown are what that collection would free.`,
		Example: `  # What would the last 3 tags per repository and 2 versions per channel free?
  airlock registry prune --root /srv/mirror --keep-last 3 --keep-versions 2 --dry-run

  # Do it, keeping anything pulled in the last 30 days and the release repository
  airlock registry prune --root /srv/mirror --keep-last 3 --keep-pulled-within 720h \
      --protect '^ocp4/openshift4$'

  # Machine-readable decision
  airlock registry prune --root /srv/mirror --keep-versions 1 --dry-run -o json

  # Clusters run 4.12.10 and 4.13.0: keep the releases they need to reach the
  # stable-4.13 head, let the other releases (and their components) go
  airlock registry prune --root /srv/mirror --keep-upgrade-path 4.12.10,4.13.0 \
      --graph stable-4.13-amd64.json --dry-run

  # No graph file: the update graph from the mirrored releases' metadata and
  # the mirrored graph-data image's stable-4.13 channel and blocked edges
  airlock registry prune --root /srv/mirror --keep-upgrade-path 4.12.10 --channel stable-4.13 --dry-run

  # A registry airlock does not run (its garbage collection frees the space)
  airlock registry prune --registry quay.example.com:8443/ocp4 --authfile auth.json \
      --keep-upgrade-path 4.13.0 --graph stable-4.13-amd64.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.args = commandLine(cmd, args)
			o.rootSet = cmd.Flags().Changed("root")
			if err := o.Complete(); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Root, "root", "./airlock-registry", "registry directory (filesystem storage)")
	f.StringVar(&o.StorageConfig, "storage-config", "", "YAML storage section (as for serve) instead of --root")
	f.IntVar(&o.KeepLast, "keep-last", 0, "keep the newest N tags of each repository (0: no limit)")
	f.IntVar(&o.KeepVersions, "keep-versions", 0, "keep the newest N bundles of each catalog channel (0: no limit)")
	f.DurationVar(&o.KeepPulledWithin, "keep-pulled-within", 0, "keep tags pulled within this period (e.g. 720h)")
	f.StringArrayVar(&o.Protect, "protect", nil, "regular expression of repositories never pruned (repeatable)")
	f.BoolVar(&o.DryRun, "dry-run", false, "show what would be deleted and freed; change nothing")
	f.StringVarP(&o.Output, "output", "o", "", "output format: json (default: text)")
	f.BoolVar(&o.Force, "force", false, "run even though a serve process seems to be using --root")
	f.StringSliceVar(&o.KeepUpgradePath, "keep-upgrade-path", nil, "keep only the release images on the upgrade path from these current cluster versions to the channel head of --graph (comma-separated or repeated)")
	f.StringArrayVar(&o.Graphs, "graph", nil, "Cincinnati update graph JSON (nodes/edges, as the update service answers for the clusters' channel and architecture) for --keep-upgrade-path; repeat it for several channels (e.g. stable-4.13 and stable-4.14), they are merged")
	f.StringVar(&o.Channel, "channel", "", "with --keep-upgrade-path and no --graph: keep to the versions of this channel of the mirrored graph-data image (openshift/graph-image:latest)")
	f.BoolVar(&o.AllPaths, "all-paths", false, "with --keep-upgrade-path, keep every release on any upgrade path (conditional updates included), not only the shortest")
	f.StringVar(&o.Registry, "registry", "", "prune this registry through its API (HOST[:PORT][/prefix]) instead of --root; its own garbage collection must then run")
	// Only the access flags of RegistryFlags: prune copies nothing, so
	// the blob cache does not apply.
	reg := pflag.NewFlagSet("registry", pflag.ContinueOnError)
	o.Reg.AddFlags(reg)
	for _, n := range []string{"authfile", "insecure", "ca-file"} {
		f.AddFlag(reg.Lookup(n))
	}
	return cmd
}

// Complete compiles the policy and reads the storage configuration.
func (o *RegistryPruneOptions) Complete() error {
	o.policy = retention.Policy{KeepLast: o.KeepLast, KeepVersions: o.KeepVersions, KeepPulledWithin: o.KeepPulledWithin}
	for _, p := range o.Protect {
		re, err := regexp.Compile(p)
		if err != nil {
			return fmt.Errorf("--protect %q: %w", p, err)
		}
		o.policy.Protect = append(o.policy.Protect, re)
	}
	if len(o.KeepUpgradePath) > 0 {
		up, err := o.upgradePath()
		if err != nil {
			return err
		}
		o.policy.UpgradePath = up
	}
	if o.Registry != "" {
		return nil
	}
	sf, err := storageFlag(o.StorageConfig)
	o.storage = sf
	return err
}

// upgradePath reads --graph and parses --keep-upgrade-path.
func (o *RegistryPruneOptions) upgradePath() (*retention.UpgradePath, error) {
	up := &retention.UpgradePath{AnyPath: o.AllPaths}
	for _, v := range o.KeepUpgradePath {
		sv, err := semver.ParseTolerant(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("--keep-upgrade-path %q: not a version (give the cluster version 'oc get clusterversion' shows, e.g. 4.13.0): %w", v, err)
		}
		up.From = append(up.From, sv)
	}
	if len(o.Graphs) == 0 {
		// Built from the mirror once it is scanned (mirrorGraph).
		return up, nil
	}
	if o.Channel != "" {
		return nil, fmt.Errorf("--channel %s applies to the graph built from the mirror; a --graph file is already the graph of one channel: give one or the other", o.Channel)
	}
	var gs []*graph.Graph
	for _, file := range o.Graphs {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--graph: %w", err)
		}
		g, err := graph.Parse(data, file)
		if err != nil {
			return nil, fmt.Errorf("%w (--graph wants the JSON of the update service: {\"nodes\":[...],\"edges\":[...]})", err)
		}
		if len(g.Nodes) == 0 {
			return nil, fmt.Errorf("--graph %s: the graph has no releases: is it the graph of the clusters' channel and architecture?", file)
		}
		gs = append(gs, g)
	}
	// Several channels' graphs (an upgrade across minors spans two) make
	// one graph, whose head is the highest release of any of them.
	g := gs[0]
	if len(gs) > 1 {
		g = graph.Merge(gs...)
	}
	var names []string
	for _, f := range o.Graphs {
		names = append(names, filepath.Base(f))
	}
	up.Graph, up.Source = g, strings.Join(names, "+")
	return up, nil
}

// mirrorGraph builds the upgrade-path graph from the scanned registry when
// no --graph was given.
func (o *RegistryPruneOptions) mirrorGraph(ctx context.Context, snap *regscan.Snapshot, acc retention.Access, within string) error {
	up := o.policy.UpgradePath
	if up == nil || up.Graph != nil {
		return nil
	}
	mg, err := retention.BuildMirrorGraph(ctx, snap, acc, within, o.Channel)
	if err != nil {
		return fmt.Errorf("--keep-upgrade-path without --graph: %w", err)
	}
	up.Graph, up.Source, up.Warnings = mg.Graph, mg.Source, mg.Warnings
	if mg.GraphImage == "" {
		up.Warnings = append(up.Warnings, "no graph-data image ("+graph.GraphImageRepo+":latest) in the registry: the update graph has no blocked edges and no channel, every update the release metadata lists counts")
	}
	return nil
}

// Validate needs at least one policy and a storage nobody serves.
func (o *RegistryPruneOptions) Validate() error {
	if o.KeepLast < 0 || o.KeepVersions < 0 || o.KeepPulledWithin < 0 {
		return errors.New("--keep-last, --keep-versions and --keep-pulled-within cannot be negative")
	}
	if o.KeepLast == 0 && o.KeepVersions == 0 && o.policy.UpgradePath == nil {
		return errors.New("no policy: give --keep-last N, --keep-versions N and/or --keep-upgrade-path VERSION [--graph FILE] (--keep-pulled-within only keeps more)")
	}
	if o.AllPaths && o.policy.UpgradePath == nil {
		return errors.New("--all-paths applies to --keep-upgrade-path: give it too")
	}
	if o.Channel != "" && o.policy.UpgradePath == nil {
		return errors.New("--channel applies to --keep-upgrade-path: give it too")
	}
	if o.Output != "" && o.Output != "json" {
		return fmt.Errorf("--output %q: only json is supported", o.Output)
	}
	if o.Registry != "" {
		if o.StorageConfig != "" || o.rootSet {
			return errors.New("--registry prunes a remote registry, --root and --storage-config the embedded registry's storage: give one")
		}
		if o.KeepPulledWithin > 0 {
			return errors.New("--keep-pulled-within reads the pull log of the embedded registry, which a --registry does not have: prune it with --root, or drop --keep-pulled-within")
		}
		return nil
	}
	if o.StorageConfig == "" {
		if _, err := os.Stat(o.Root); err != nil {
			return fmt.Errorf("--root %s: %w", o.Root, err)
		}
		if !o.Force && !o.DryRun {
			return notServed(o.Root)
		}
	}
	return nil
}

// pruneOutput is the JSON form of a run.
type pruneOutput struct {
	DryRun   bool                `json:"dryRun"`
	Decision *retention.Decision `json:"decision"`
	Applied  *retention.Result   `json:"applied,omitempty"`
	GC       *registry.GCResult  `json:"gc,omitempty"`
	// Registry and GarbageCollection are set for a --registry prune:
	// nothing is freed until that registry collects its garbage.
	Registry          string `json:"registry,omitempty"`
	GarbageCollection string `json:"garbageCollection,omitempty"`
}

// remoteGCNote says who must free the space after a --registry prune.
const remoteGCNote = "airlock cannot garbage-collect a registry it does not run: the deleted manifests' blobs stay on its storage until " +
	"the registry's own garbage collection runs (docker registry: 'registry garbage-collect /etc/docker/registry/config.yml' " +
	"while it is stopped or read-only, never with --delete-untagged: release components and operator images are pushed by digest, untagged; " +
	"Quay and Harbor: their scheduled garbage collection)"

// Run scans the storage through an in-process registry, decides, applies
// and collects garbage; with --registry, it scans and deletes through that
// registry's API and leaves the collection to it.
func (o *RegistryPruneOptions) Run(ctx context.Context) error {
	if o.Registry != "" {
		return o.runRemote(ctx)
	}
	srv, err := registry.New(ctx, registry.Options{Root: o.Root, Storage: o.storage.Storage, Logger: slog.Default()})
	if err != nil {
		return err
	}
	closeSrv := sync.OnceFunc(func() { srv.Close() })
	defer closeSrv()
	rt := srv.InProcessTransport()
	const host = "airlock.internal"
	rec := audit.New("registry prune", o.args)
	snap, err := (&regscan.Scanner{Transport: rt, Registry: host}).Scan(ctx)
	if err != nil {
		return fmt.Errorf("scanning the registry: %w", err)
	}
	if len(snap.Errors) > 0 {
		return fmt.Errorf("the registry could not be read completely, nothing pruned: %s", strings.Join(snap.Errors, "; "))
	}
	var pulls retention.Pulls
	if o.KeepPulledWithin > 0 {
		pl, err := srv.Pulls(ctx)
		if err != nil {
			return fmt.Errorf("reading the pull log: %w", err)
		}
		pulls = pl
	}
	if err := o.mirrorGraph(ctx, snap, retention.Access{Registry: host, Remote: []remote.Option{remote.WithTransport(rt)}}, ""); err != nil {
		return err
	}
	d, err := retention.Decide(snap, o.policy, pulls, time.Now())
	if err != nil {
		return err
	}
	out := pruneOutput{DryRun: o.DryRun, Decision: d}
	if !o.DryRun {
		eng, err := engine.New(engine.Options{Transport: rt, Insecure: true})
		if err != nil {
			return err
		}
		opts := []remote.Option{remote.WithTransport(rt)}
		res, aerr := retention.Apply(ctx, snap, d, retention.Access{Registry: host, Remote: opts, Images: eng})
		out.Applied = &res
		hr, _ := name.NewRepository(host+"/"+audit.DefaultRepo, name.Insecure)
		if err := audit.Push(ctx, hr, pruneRecord(rec, d, res, aerr), opts...); err != nil {
			slog.Warn("recording the prune in the registry's history", "err", err)
		}
		closeSrv() // garbage collection must not run beside the registry app
		if aerr != nil {
			return aerr
		}
		gc, err := registry.GC(ctx, o.Root, o.storage.Storage, registry.GCOptions{Logger: slog.Default()})
		if err != nil {
			return fmt.Errorf("deleted %d manifests, but garbage collection failed (run 'airlock registry gc'): %w", res.Deleted, err)
		}
		out.GC = &gc
	}
	return o.print(out)
}

// runRemote prunes --registry through its API: the same scan and decision
// as for the embedded registry, deletes by digest, no garbage collection.
func (o *RegistryPruneOptions) runRemote(ctx context.Context) error {
	host, prefix, _ := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(o.Registry, "docker://"), "/"), "/")
	if _, err := name.NewRegistry(host, o.Reg.NameOptions()...); err != nil || host == "" {
		return fmt.Errorf("--registry %q: want HOST[:PORT][/prefix], e.g. registry.example.com:5000/ocp4", o.Registry)
	}
	kc, err := o.Reg.Keychain()
	if err != nil {
		return err
	}
	rt, err := o.Reg.Transport()
	if err != nil {
		return err
	}
	auth := []remote.Option{remote.WithAuthFromKeychain(kc)}
	rec := audit.New("registry prune", o.args)
	// The whole registry is scanned even with a prefix: a blob the pruned
	// repositories share with another one must not count as freed.
	sc := &regscan.Scanner{Transport: rt, Registry: host, Remote: auth, NameOptions: o.Reg.NameOptions()}
	if sc.NameOptions == nil {
		sc.NameOptions = []name.Option{} // TLS unless --insecure (loopback excepted, as everywhere)
	}
	snap, err := sc.Scan(ctx)
	if err != nil {
		return fmt.Errorf("scanning %s: %w%s", o.Registry, err, remoteHint(err))
	}
	if len(snap.Errors) > 0 {
		return fmt.Errorf("%s could not be read completely, nothing pruned: %s", o.Registry, strings.Join(snap.Errors, "; "))
	}
	if err := o.mirrorGraph(ctx, snap, retention.Access{Registry: host, Remote: append([]remote.Option{remote.WithTransport(rt)}, auth...), NameOptions: sc.NameOptions}, prefix); err != nil {
		return err
	}
	policy := o.policy
	policy.Within = prefix
	d, err := retention.Decide(snap, policy, nil, time.Now())
	if err != nil {
		return err
	}
	out := pruneOutput{DryRun: o.DryRun, Decision: d, Registry: o.Registry, GarbageCollection: remoteGCNote}
	if !o.DryRun {
		eng, err := engine.New(engine.Options{Keychain: kc, Transport: rt, Insecure: o.Reg.Insecure})
		if err != nil {
			return err
		}
		opts := append([]remote.Option{remote.WithTransport(rt)}, auth...)
		res, aerr := retention.Apply(ctx, snap, d, retention.Access{Registry: host, Remote: opts, Images: eng, NameOptions: sc.NameOptions})
		out.Applied = &res
		// Recorded in the registry's history, as mirror runs into it are.
		if hr, err := name.NewRepository(host+"/"+audit.DefaultRepo, sc.NameOptions...); err == nil {
			err = audit.Push(ctx, hr, pruneRecord(rec, d, res, aerr), opts...)
			if err != nil {
				fmt.Fprintf(o.streams.ErrOut, "warning: recording the prune in %s's history: %v\n", host, err)
			}
		}
		if aerr != nil {
			// What was deleted is still reported, so the operator knows.
			if perr := o.print(out); perr != nil {
				return perr
			}
			return aerr
		}
	}
	return o.print(out)
}

// pruneRecord is the history record of an applied prune.
// rec was started with the run, so its duration covers the scan too.
func pruneRecord(rec audit.Record, d *retention.Decision, res retention.Result, err error) audit.Record {
	for _, t := range d.Delete {
		rec.Deleted = append(rec.Deleted, t.Repo+"@"+t.Digest)
	}
	for _, f := range res.Failures {
		rec.Failures = append(rec.Failures, audit.Failure{Error: f})
	}
	rec.Finish(err)
	return rec
}

// remoteHint says what to do about the usual reasons a remote scan fails.
func remoteHint(err error) string {
	var te *transport.Error
	var ue x509.UnknownAuthorityError
	switch {
	case errors.As(err, &ue) || strings.Contains(err.Error(), "x509:"):
		return " (trust the registry's CA with --ca-file, or --insecure for a registry you trust)"
	case errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden):
		return " (give credentials that may list and delete: --authfile, or 'airlock login' first)"
	case errors.As(err, &te) && (te.StatusCode == http.StatusNotFound || te.StatusCode == http.StatusMethodNotAllowed):
		return " (the registry must answer the catalog API, GET /v2/_catalog, to be pruned)"
	}
	return ""
}

// print writes the outcome as JSON or text.
func (o *RegistryPruneOptions) print(out pruneOutput) error {
	d := out.Decision
	if o.Output == "json" {
		enc := json.NewEncoder(o.streams.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	w := o.streams.Out
	verb := "delete"
	if o.DryRun {
		verb = "would delete"
	}
	for _, warn := range d.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
	for _, r := range d.Releases {
		v := "drop"
		switch {
		case r.Keep:
			v = "keep"
		case o.DryRun:
			v = "would drop"
		}
		fmt.Fprintf(w, "%s release %s (%s): %s\n", v, r.Ref, r.Version, r.Reason)
	}
	for _, c := range d.Catalogs {
		n := 0
		for _, bs := range c.Dropped {
			n += len(bs)
		}
		fmt.Fprintf(w, "catalog %s: %s %d bundles, keep %d (rebuilt under its tag)\n", c.Ref, map[bool]string{true: "would drop", false: "drops"}[o.DryRun], n, c.Kept)
	}
	for _, t := range d.Delete {
		tags := ""
		if len(t.Tags) > 0 {
			tags = " (tags " + strings.Join(t.Tags, ", ") + ")"
		}
		fmt.Fprintf(w, "%s %s@%s%s: %s\n", verb, t.Repo, t.Digest, tags, t.Reason)
	}
	if out.Registry != "" {
		what, n := "would delete", len(d.Delete)
		if out.Applied != nil {
			// Signatures and replaced catalog manifests went too.
			what, n = "deleted", out.Applied.Deleted
		}
		fmt.Fprintf(w, "%s: %s %d manifests, %d tags kept; nothing is freed yet: %d blobs, %s after dedup once its garbage collection runs\n",
			out.Registry, what, n, d.KeptTags, d.FreedBlobs, report.Bytes(d.FreedBytes))
		fmt.Fprintln(w, remoteGCNote)
		return nil
	}
	fmt.Fprintf(w, "%d manifests, %d tags kept; frees %d blobs, %s after dedup\n", len(d.Delete), d.KeptTags, d.FreedBlobs, report.Bytes(d.FreedBytes))
	if out.GC != nil {
		fmt.Fprintf(w, "garbage collection removed %d blobs (%s)\n", out.GC.Blobs, report.Bytes(out.GC.BlobBytes))
	}
	return nil
}
