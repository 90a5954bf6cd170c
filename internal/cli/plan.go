package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/airlock-mirror/airlock/internal/engine"
	"github.com/airlock-mirror/airlock/internal/imageset"
	"github.com/airlock-mirror/airlock/internal/orchestrate"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/release/graph"
	"github.com/airlock-mirror/airlock/internal/report"
)

// PlanOptions are the options of `airlock plan`.
type PlanOptions struct {
	RegistryFlags
	Config   string
	Output   string
	Diff     string
	Save     string
	NoSave   bool
	Strict   bool
	GraphURL string
	Parallel int
	// DiskLimit caps the space counted free on a file:// destination, for
	// quotas statfs does not see (NFS, XFS project quotas).
	DiskLimit string

	diskLimit int64
	dest      ref.Ref
	dir       string
	cfg       *imageset.ImageSetConfiguration
	streams   IOStreams
}

func newPlanCommand(streams IOStreams) *cobra.Command {
	o := &PlanOptions{streams: streams, Parallel: 8}
	cmd := &cobra.Command{
		Use:   "plan -c IMAGESET.yaml [file://DIR | docker://REG[/prefix]]",
		Short: "Resolve an ImageSetConfiguration to digests and count what a mirror would move, before moving it",
		Long: `Resolve every release, catalog selection, Helm chart and additional image of
an ImageSetConfiguration to digests, reading manifests only (no blob), and
print per release, catalog, package, chart and for the additional images:
images, unique blobs, bytes before and after blob dedup, what the
destination already holds and so what a run would actually transfer.

With a destination, what it holds is checked (a HEAD per blob in a
registry, a stat in a local store). For file://DIR the free space of DIR's
file system is checked against the bytes to transfer, and the command fails
before anything is written when it is short.

The plan (every image with its digest, manifests and blobs) is saved as
JSON, with the config pinned to the planned digests beside it
(NAME-imageset.yaml: catalogs and additional images as repo:tag@digest),
so a later run mirrors the same bits, or 'plan --diff OLD.json' shows what
changed since: images added, removed, moved to another digest, and the new
bytes an incremental transfer carries. For file://DIR the plan goes to
DIR/working-dir/plan/plan.json unless --save says otherwise.`,
		Example: `  # how big is it, and does it fit on the USB disk?
  airlock plan -c imageset.yaml file:///mnt/usb

  # what would an incremental run push to the mirror registry?
  airlock plan -c imageset.yaml docker://mirror.example.com:5000/ocp

  # a week later: what changed upstream since the first plan
  airlock plan -c imageset.yaml --diff /mnt/usb/working-dir/plan/plan.json --no-save

  # machine-readable
  airlock plan -c imageset.yaml -o json --no-save`,
		Args: cobra.MaximumNArgs(1),
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
	o.RegistryFlags.AddFlags(cmd.Flags())
	fs := cmd.Flags()
	fs.StringVarP(&o.Config, "config", "c", "", "ImageSetConfiguration file (required)")
	fs.StringVarP(&o.Output, "output", "o", "text", "output format: text or json")
	fs.StringVar(&o.Diff, "diff", "", "an earlier plan.json: print what changed since")
	fs.StringVar(&o.Save, "save", "", "write the plan to this JSON file and the pinned config beside it (default for file://DIR: DIR/working-dir/plan/plan.json)")
	fs.BoolVar(&o.NoSave, "no-save", false, "write no file")
	fs.BoolVar(&o.Strict, "strict", false, "unknown fields and oc-mirror v1 leftovers in the config are errors, not warnings")
	fs.StringVar(&o.GraphURL, "graph-url", "", "update graph endpoint (default $"+graph.URLEnv+" or "+graph.DefaultURL+")")
	fs.IntVar(&o.Parallel, "parallel", o.Parallel, "images inspected at once")
	fs.StringVar(&o.DiskLimit, "disk-limit", "", "with file://DIR: count at most this much free (e.g. 500G, 1.5T, bytes), for quotas the file system does not report")
	return cmd
}

// Complete reads the config and the destination.
func (o *PlanOptions) Complete(args []string) error {
	if o.Config == "" {
		return errors.New("-c/--config is required: the ImageSetConfiguration file")
	}
	if len(args) == 1 {
		switch d := args[0]; {
		case strings.HasPrefix(d, "file://"):
			dir, err := fileDir("destination", d)
			if err != nil {
				return err
			}
			o.dir, o.dest = dir, ref.Ref{Transport: ref.File}
		case strings.HasPrefix(d, "docker://"):
			r, err := ref.Parse(d)
			if err != nil {
				return fmt.Errorf("destination: %w", err)
			}
			if r.HasTagOrDigest() {
				return fmt.Errorf("destination %s: give a registry or registry/prefix without tag or digest", d)
			}
			o.dest = r
		default:
			return fmt.Errorf("destination %q: want file://DIR or docker://REG[/prefix]", d)
		}
	}
	if o.Save == "" && !o.NoSave && o.dir != "" {
		o.Save = filepath.Join(orchestrate.WorkingDir(o.dir), "plan", "plan.json")
	}
	cfg, err := loadConfig(o.streams.ErrOut, o.Config, o.Strict)
	if err != nil {
		return err
	}
	o.cfg = cfg
	return nil
}

// Validate checks the flags.
func (o *PlanOptions) Validate() error {
	if o.Output != "text" && o.Output != "json" {
		return fmt.Errorf("--output %q: want text or json", o.Output)
	}
	if o.NoSave && o.Save != "" {
		return errors.New("--save and --no-save are exclusive")
	}
	if o.DiskLimit != "" {
		n, err := parseSize(o.DiskLimit)
		if err != nil {
			return fmt.Errorf("--disk-limit %q: %w", o.DiskLimit, err)
		}
		if o.dir == "" {
			return errors.New("--disk-limit applies to a file://DIR destination")
		}
		o.diskLimit = n
	}
	if o.Parallel < 1 {
		return fmt.Errorf("--parallel %d: want 1 or more", o.Parallel)
	}
	return nil
}

// Run plans, checks space, prints, and saves.
func (o *PlanOptions) Run(ctx context.Context) error {
	var old *orchestrate.ConfigPlan
	if o.Diff != "" {
		var err error
		if old, err = orchestrate.LoadPlan(o.Diff); err != nil {
			return err
		}
	}
	opts, err := o.EngineOptions(o.dir)
	if err != nil {
		return err
	}
	eng, err := engine.New(opts)
	if err != nil {
		return fmt.Errorf("configuring the copy engine: %w", err)
	}
	warn := func(s string) { fmt.Fprintf(o.streams.ErrOut, "warning: %s\n", s) }
	cp, err := orchestrate.PlanConfig(ctx, orchestrate.PlanOptions{
		Config: o.cfg, ConfigFile: o.Config, Dest: o.dest, Dir: o.dir, Engine: eng,
		Graph: &graph.Client{URL: o.GraphURL}, Warn: warn, Parallel: o.Parallel,
		GraphData: orchestrate.GraphData{URL: orchestrate.GraphDataURL(o.GraphURL)},
	})
	if err != nil {
		return err
	}
	var diff *orchestrate.PlanDiff
	if old != nil {
		diff = cp.Diff(old)
	}
	if cp.Space != nil && o.diskLimit > 0 && cp.Space.Available > o.diskLimit {
		cp.Space.Available = o.diskLimit
	}
	short := cp.Space != nil && !cp.Space.Enough()
	if o.Save != "" && !short {
		if err := cp.Save(o.Save, o.cfg); err != nil {
			return fmt.Errorf("saving the plan: %w", err)
		}
	}
	if o.Output == "json" {
		enc := json.NewEncoder(o.streams.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			*orchestrate.ConfigPlan
			Diff *orchestrate.PlanDiff `json:"diff,omitempty"`
		}{cp, diff}); err != nil {
			return err
		}
	} else {
		o.print(cp, diff)
	}
	switch {
	case short:
		return fmt.Errorf("not enough space for file://%s: %s to transfer, %s available on %s; nothing was written (free space or choose another DIR)",
			o.dir, report.Bytes(cp.Space.Needed), report.Bytes(cp.Space.Available), cp.Space.Dir)
	case len(cp.Errors) > 0:
		return fmt.Errorf("%d images could not be read (listed above); a mirror would fail them too", len(cp.Errors))
	}
	return nil
}

func (o *PlanOptions) print(cp *orchestrate.ConfigPlan, diff *orchestrate.PlanDiff) {
	out := o.streams.Out
	dest := cp.Dest
	if dest == "" {
		dest = "(no destination: nothing counted as held)"
	}
	fmt.Fprintf(out, "plan of %s -> %s\n\n", cp.Config, dest)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "IMAGES\tBLOBS\tBEFORE DEDUP\tSIZE\tHELD\tTRANSFER\t\tGROUP")
	row := func(s orchestrate.Summary) {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\t\t%s\n", s.Images, s.Blobs, report.Bytes(s.BytesBeforeDedup),
			report.Bytes(s.Bytes), report.Bytes(s.HeldBytes), report.Bytes(s.TransferBytes), s.Group)
	}
	for _, g := range cp.Groups {
		row(g)
	}
	row(cp.Total)
	tw.Flush()
	rebuilt := 0
	complete := 0
	for _, p := range cp.Images {
		if p.Rebuilt {
			rebuilt++
		}
		if p.Complete {
			complete++
		}
	}
	fmt.Fprintln(out)
	if cp.Dest != "" {
		fmt.Fprintf(out, "at the destination: %d of %d images complete, %d of %d blobs held; a run transfers %d blobs, %s\n",
			complete, len(cp.Images), cp.Total.HeldBlobs, cp.Total.Blobs, cp.Total.TransferBlobs, report.Bytes(cp.Total.TransferBytes))
	}
	if rebuilt > 0 {
		fmt.Fprintf(out, "%d filtered catalogs are rebuilt at mirror time: counted with the source catalog's size\n", rebuilt)
	}
	for _, b := range cp.Blocked {
		fmt.Fprintf(out, "blocked: %s (%s) matches blockedImages %q: not mirrored\n", b.Image, b.Kind, b.Pattern)
	}
	for _, e := range cp.Errors {
		fmt.Fprintf(o.streams.ErrOut, "error: %s\n", e)
	}
	if cp.Space != nil {
		verdict := "enough"
		if !cp.Space.Enough() {
			verdict = "NOT ENOUGH"
		}
		fmt.Fprintf(out, "free space on %s: %s available, %s needed: %s\n", cp.Space.Dir, report.Bytes(cp.Space.Available), report.Bytes(cp.Space.Needed), verdict)
	}
	if diff != nil {
		fmt.Fprintf(out, "\nsince %s: %d added, %d removed, %d changed; %d new blobs, %s\n", o.Diff,
			len(diff.Added), len(diff.Removed), len(diff.Changed), diff.NewBlobs, report.Bytes(diff.NewBytes))
		for _, p := range diff.Added {
			fmt.Fprintf(out, "  + %s\n", p.Source.WithDigest(p.Digest))
		}
		for _, p := range diff.Removed {
			fmt.Fprintf(out, "  - %s\n", p.Source.WithDigest(p.Digest))
		}
		for _, c := range diff.Changed {
			fmt.Fprintf(out, "  ~ %s: %s -> %s\n", c.Source, c.Old, c.New)
		}
	}
	if cp.PinnedFile != "" {
		fmt.Fprintf(out, "wrote %s\nwrote %s\n", o.Save, cp.PinnedFile)
	}
}

// parseSize reads 123, 10K, 500M, 1.5G, 2T (powers of 1024; a trailing B
// or iB is allowed).
func parseSize(s string) (int64, error) {
	t := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(s)), "B"), "I")
	mult := 1.0
	if t != "" {
		switch t[len(t)-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult > 1 {
			t = t[:len(t)-1]
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("want a size such as 500G, 1.5T or a number of bytes")
	}
	return int64(v * mult), nil
}
