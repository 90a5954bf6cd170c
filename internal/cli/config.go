package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/airlock-mirror/airlock/internal/imageset"
	"github.com/airlock-mirror/airlock/internal/orchestrate"
	"github.com/airlock-mirror/airlock/internal/release/graph"
)

func newConfigCommand(streams IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check ImageSetConfiguration files before a mirror run",
	}
	cmd.AddCommand(newConfigValidateCommand(streams))
	return cmd
}

// ConfigValidateOptions are the options of `airlock config validate`.
type ConfigValidateOptions struct {
	RegistryFlags
	Config   string
	Offline  bool
	Strict   bool
	Output   string
	GraphURL string

	streams IOStreams
}

// configReport is `config validate -o json`.
type configReport struct {
	File     string             `json:"file"`
	Valid    bool               `json:"valid"`
	Errors   []imageset.Problem `json:"errors"`
	Warnings []imageset.Problem `json:"warnings"`
}

func newConfigValidateCommand(streams IOStreams) *cobra.Command {
	o := &ConfigValidateOptions{streams: streams}
	cmd := &cobra.Command{
		Use:   "validate -c IMAGESET.yaml [--offline] [--strict]",
		Short: "Check an ImageSetConfiguration: exit 0 only for a config `mirror` accepts",
		Long: `Check an ImageSetConfiguration (mirror.openshift.io/v2alpha1) the way
'airlock mirror' reads it, and report every problem at once, each with the
file, line and field path:

  - YAML syntax, duplicate keys, values of the wrong type (an unquoted 4.18
    is a number, not a version);
  - duplicate catalogs, packages and channels; bad semantic versions;
    minVersion above maxVersion; a range on a package and on its channels;
    platforms with architectures; blockedImages that are not Go regexps;
  - each targetCatalogSourceTemplate: readable, a grpc
    operators.coreos.com/v1alpha1 CatalogSource (also with --offline);
  - unknown fields and oc-mirror v1 leftovers (storageConfig, bundles):
    warnings, as mirror ignores them; errors with --strict;
  - unless --offline: every catalog is opened (registry, oci:// or the
    local store) and each package, channel and defaultChannel looked up,
    and each release channel resolved in the update graph. oc-mirror only
    finds an unknown package in the disk-to-mirror half, after the copy.

Exit status: 0 valid, 1 invalid (or, with --strict, warnings).`,
		Example: `  # before a long mirror-to-disk run
  airlock config validate -c imageset.yaml

  # on a machine without the catalogs: the file alone, unknown fields fatal
  airlock config validate -c imageset.yaml --offline --strict

  # machine-readable
  airlock config validate -c imageset.yaml -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	o.RegistryFlags.AddFlags(cmd.Flags())
	fs := cmd.Flags()
	fs.StringVarP(&o.Config, "config", "c", "", "ImageSetConfiguration file (required)")
	fs.BoolVar(&o.Offline, "offline", false, "check the file only; do not open catalogs or query the update graph")
	fs.BoolVar(&o.Strict, "strict", false, "unknown fields and oc-mirror v1 leftovers are errors, not warnings")
	fs.StringVarP(&o.Output, "output", "o", "text", "output format: text or json")
	fs.StringVar(&o.GraphURL, "graph-url", "", "update graph endpoint (default $"+graph.URLEnv+" or "+graph.DefaultURL+")")
	return cmd
}

// Validate checks the flags.
func (o *ConfigValidateOptions) Validate() error {
	if o.Config == "" {
		return errors.New("-c/--config is required: the ImageSetConfiguration file")
	}
	if o.Output != "text" && o.Output != "json" {
		return fmt.Errorf("--output %q: want text or json", o.Output)
	}
	return nil
}

// errInvalid ends a run whose problems were printed above it.
var errInvalid = errors.New("invalid configuration")

// Run checks the file and, unless offline, its sources.
func (o *ConfigValidateOptions) Run(ctx context.Context) error {
	rep := configReport{File: o.Config, Errors: []imageset.Problem{}, Warnings: []imageset.Problem{}}
	cfg, warns, err := imageset.LoadWarn(o.Config, o.Strict)
	rep.Warnings = append(rep.Warnings, warns...)
	var ps imageset.Problems
	if err == nil {
		// Local files: checked offline too.
		rep.Errors = append(rep.Errors, orchestrate.CheckCatalogSourceTemplates(cfg)...)
	}
	switch {
	case errors.As(err, &ps):
		rep.Errors = append(rep.Errors, ps...)
	case err != nil:
		return err
	case !o.Offline:
		eng, err := o.NewEngine("")
		if err != nil {
			return err
		}
		rep.Errors = append(rep.Errors, orchestrate.CheckSources(ctx, cfg, eng, &graph.Client{URL: o.GraphURL})...)
	}
	rep.Valid = len(rep.Errors) == 0
	if o.Output == "json" {
		enc := json.NewEncoder(o.streams.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		for _, w := range rep.Warnings {
			fmt.Fprintf(o.streams.ErrOut, "warning: %s\n", w.Error())
		}
		for _, e := range rep.Errors {
			fmt.Fprintf(o.streams.ErrOut, "error: %s\n", e.Error())
		}
		if rep.Valid {
			what := "file and sources checked"
			if o.Offline {
				what = "file checked; catalogs and channels not (--offline)"
			}
			fmt.Fprintf(o.streams.Out, "%s: valid (%s; %d warnings)\n", o.Config, what, len(rep.Warnings))
		}
	}
	if !rep.Valid {
		return fmt.Errorf("%s: %w: %d errors", o.Config, errInvalid, len(rep.Errors))
	}
	return nil
}
