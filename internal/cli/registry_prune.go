package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/cobra"

	"github.com/airlock-mirror/airlock/internal/audit"
	"github.com/airlock-mirror/airlock/internal/engine"
	"github.com/airlock-mirror/airlock/internal/registry"
	"github.com/airlock-mirror/airlock/internal/regscan"
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

	policy  retention.Policy
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
really comes back.

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

Never deleted: a manifest a kept tag, index, catalog or release needs; blobs
a kept manifest uses; signatures and referrers of kept manifests (those of
deleted manifests go with them). --dry-run shows what would go and the space
freed after dedup; nothing is changed. Stop 'airlock registry serve' on this
storage first (prune refuses while it runs, see --force): garbage collection
must not race a push.`,
		Example: `  # What would the last 3 tags per repository and 2 versions per channel free?
  airlock registry prune --root /srv/mirror --keep-last 3 --keep-versions 2 --dry-run

  # Do it, keeping anything pulled in the last 30 days and the release repository
  airlock registry prune --root /srv/mirror --keep-last 3 --keep-pulled-within 720h \
      --protect '^ocp4/openshift4$'

  # Machine-readable decision
  airlock registry prune --root /srv/mirror --keep-versions 1 --dry-run -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.args = commandLine(cmd, args)
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
	sf, err := storageFlag(o.StorageConfig)
	o.storage = sf
	return err
}

// Validate needs at least one policy and a storage nobody serves.
func (o *RegistryPruneOptions) Validate() error {
	if o.KeepLast < 0 || o.KeepVersions < 0 || o.KeepPulledWithin < 0 {
		return errors.New("--keep-last, --keep-versions and --keep-pulled-within cannot be negative")
	}
	if o.KeepLast == 0 && o.KeepVersions == 0 {
		return errors.New("no policy: give --keep-last N and/or --keep-versions N (--keep-pulled-within only keeps more)")
	}
	if o.Output != "" && o.Output != "json" {
		return fmt.Errorf("--output %q: only json is supported", o.Output)
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
}

// Run scans the storage through an in-process registry, decides, applies
// and collects garbage.
func (o *RegistryPruneOptions) Run(ctx context.Context) error {
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
		for _, t := range d.Delete {
			rec.Deleted = append(rec.Deleted, t.Repo+"@"+t.Digest)
		}
		for _, f := range res.Failures {
			rec.Failures = append(rec.Failures, audit.Failure{Error: f})
		}
		rec.Finish(aerr)
		hr, _ := name.NewRepository(host+"/"+audit.DefaultRepo, name.Insecure)
		if err := audit.Push(ctx, hr, rec, opts...); err != nil {
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
	fmt.Fprintf(w, "%d manifests, %d tags kept; frees %d blobs, %s after dedup\n", len(d.Delete), d.KeptTags, d.FreedBlobs, report.Bytes(d.FreedBytes))
	if out.GC != nil {
		fmt.Fprintf(w, "garbage collection removed %d blobs (%s)\n", out.GC.Blobs, report.Bytes(out.GC.BlobBytes))
	}
	return nil
}
