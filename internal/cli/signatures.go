package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/airlock-mirror/airlock/internal/engine"
	"github.com/airlock-mirror/airlock/internal/imageset"
	"github.com/airlock-mirror/airlock/internal/mapping"
	"github.com/airlock-mirror/airlock/internal/orchestrate"
	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/release/graph"
)

func newSignaturesCommand(streams IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "signatures",
		Short: "Which images are signed, and whether their signatures reached the mirror",
		Example: `  # signed / unsigned per catalog, package and release, and what the mirror lacks
  airlock signatures report -c imageset.yaml docker://mirror.example.com:5000/ocp`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newSignaturesReportCommand(streams))
	return cmd
}

// SignaturesReportOptions are the options of `airlock signatures report`.
type SignaturesReportOptions struct {
	RegistryFlags
	Filenames []string
	Config    string
	Output    string
	GraphURL  string
	Parallel  int
	Dir       string

	plan    plan.Plan
	cfg     *imageset.ImageSetConfiguration
	dest    ref.Ref
	streams IOStreams
}

func newSignaturesReportCommand(streams IOStreams) *cobra.Command {
	o := &SignaturesReportOptions{streams: streams, Parallel: 8, Output: "text"}
	cmd := &cobra.Command{
		Use:   "report (-f mapping.txt | -c imageset.yaml [docker://REG[/prefix]])",
		Short: "Per image: signed or not at the source, signatures present at the destination",
		Long: `Look up, without copying anything, the cosign signatures, attestations, SBOMs
and OCI referrers of every image of a mapping file or an ImageSetConfiguration
at its source (manifests, the tag list and the referrers API only), and count
signed and unsigned images per release, catalog, package, chart and for the
additional images.

With destinations (those of the mapping file, or docker://REG for a config)
each destination is checked for the image and for every attachment the
source has: "missing at the destination" is the mirror an OpenShift 4.21
ClusterImagePolicy would refuse. The command exits non-zero when an image
cannot be read or something is missing at a destination; unsigned images
are reported, not failed (mirror with --signatures strict for that).`,
		Example: `  # after 'airlock image mirror -f mapping.txt': did the signatures come along?
  airlock signatures report -f mapping.txt

  # a whole imageset against the mirror registry, as JSON
  airlock signatures report -c imageset.yaml docker://mirror.example.com:5000/ocp -o json

  # only which images of the imageset are signed upstream
  airlock signatures report -c imageset.yaml`,
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
	fs.StringArrayVarP(&o.Filenames, "filename", "f", nil, "mapping file (SRC DST or SRC=DST per line); repeatable; - reads stdin")
	fs.StringVarP(&o.Config, "config", "c", "", "ImageSetConfiguration file")
	fs.StringVarP(&o.Output, "output", "o", o.Output, "output format: text or json")
	fs.StringVar(&o.GraphURL, "graph-url", "", "update graph endpoint (default $"+graph.URLEnv+" or "+graph.DefaultURL+")")
	fs.IntVar(&o.Parallel, "parallel", o.Parallel, "images looked at at once")
	fs.StringVar(&o.Dir, "dir", "", "local store that file:// sources and destinations of the mapping refer to")
	return cmd
}

// Complete reads the mapping or the config.
func (o *SignaturesReportOptions) Complete(args []string) error {
	if len(o.Filenames) > 0 {
		if len(args) > 0 {
			return errors.New("with -f the destinations are the mapping's: give no destination argument")
		}
		ms, err := readMappings(nil, o.Filenames, o.streams.In)
		if err != nil {
			return err
		}
		o.plan = mapping.ToPlan(ms)
		return nil
	}
	if o.Config == "" {
		return errors.New("give -f mapping.txt or -c imageset.yaml")
	}
	if len(args) == 1 {
		r, err := ref.Parse(args[0])
		if err != nil || r.Transport != ref.Docker || r.HasTagOrDigest() || !strings.HasPrefix(args[0], "docker://") {
			return fmt.Errorf("destination %q: want docker://REG[/prefix]", args[0])
		}
		o.dest = r
	}
	cfg, err := loadConfig(o.streams.ErrOut, o.Config, false)
	if err != nil {
		return err
	}
	o.cfg = cfg
	return nil
}

// Validate checks the flags.
func (o *SignaturesReportOptions) Validate() error {
	if o.Output != "text" && o.Output != "json" {
		return fmt.Errorf("--output %q: want text or json", o.Output)
	}
	if len(o.Filenames) > 0 && o.Config != "" {
		return errors.New("-f and -c are exclusive")
	}
	if o.Parallel < 1 {
		return fmt.Errorf("--parallel %d: want 1 or more", o.Parallel)
	}
	return nil
}

// Run looks up the signatures and prints the report.
func (o *SignaturesReportOptions) Run(ctx context.Context) error {
	opts, err := o.EngineOptions(o.Dir)
	if err != nil {
		return err
	}
	// A dry run reads manifests and finds attachments, copying nothing;
	// --signatures remove would look for none.
	opts.DryRun, opts.Signatures, opts.Policy = true, engine.SignaturesBestEffort, nil
	opts.Parallel = o.Parallel
	// The dry run's own "mirror finished" line would only confuse: the
	// report is the output.
	opts.Logger = slog.New(slog.NewTextHandler(o.streams.ErrOut, &slog.HandlerOptions{Level: slog.LevelWarn}))
	eng, err := engine.New(opts)
	if err != nil {
		return fmt.Errorf("configuring the copy engine: %w", err)
	}
	p, checkDests := o.plan, len(o.Filenames) > 0
	if o.cfg != nil {
		work, err := os.MkdirTemp("", "airlock-signatures-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(work)
		root := o.dest
		if root.Transport == "" {
			root = ref.Ref{Transport: ref.File}
		}
		warn := func(s string) { fmt.Fprintf(o.streams.ErrOut, "warning: %s\n", s) }
		p, err = orchestrate.CollectPlan(ctx, &orchestrate.Input{Config: o.cfg, ConfigFile: o.Config, Images: eng, Root: root,
			Graph: &graph.Client{URL: o.GraphURL}, Warn: warn, WorkDir: work})
		if err != nil {
			return err
		}
		checkDests = o.dest.Transport == ref.Docker
	}
	rep, err := orchestrate.SignatureReport(ctx, eng, p, checkDests, o.Parallel)
	if err != nil {
		return err
	}
	if o.Output == "json" {
		enc := json.NewEncoder(o.streams.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printSigReport(o.streams, rep)
	}
	return rep.Problems()
}

func printSigReport(streams IOStreams, rep *orchestrate.SigReport) {
	out := streams.Out
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	head := "IMAGES\tSIGNED\tUNSIGNED\tERRORS"
	if rep.Dests {
		head += "\tMISSING AT DEST"
	}
	fmt.Fprintln(tw, head+"\tGROUP")
	row := func(g orchestrate.SigGroup) {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d", g.Images, g.Signed, g.Unsigned, g.Errors)
		if rep.Dests {
			fmt.Fprintf(tw, "\t%d", g.MissingAtDest)
		}
		fmt.Fprintf(tw, "\t%s\n", g.Name)
	}
	for _, g := range rep.Groups {
		row(g)
	}
	row(rep.Total)
	tw.Flush()
	fmt.Fprintln(out)
	for _, si := range rep.Images {
		state := "signed"
		switch {
		case si.Error != "":
			state = "ERROR " + si.Error
		case !si.Signed:
			state = "unsigned"
		}
		fmt.Fprintf(out, "%-8s %s", strings.Fields(state)[0], si.Source)
		if si.Digest != "" {
			fmt.Fprintf(out, " (%s, %d attachments)", si.Digest, si.Attachments)
		}
		fmt.Fprintln(out)
		if si.Error != "" {
			fmt.Fprintf(out, "         %s\n", si.Error)
		}
		for _, d := range si.Dests {
			switch {
			case !d.ImagePresent:
				fmt.Fprintf(out, "         MISSING at %s: the image itself\n", d.Ref)
			case len(d.Missing) > 0:
				fmt.Fprintf(out, "         MISSING at %s: %s\n", d.Ref, strings.Join(d.Missing, ", "))
			}
		}
	}
}
