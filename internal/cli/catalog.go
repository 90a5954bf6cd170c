package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/tabwriter"

	"github.com/blang/semver/v4"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"

	"github.com/airlock-mirror/airlock/internal/catalog"
	"github.com/airlock-mirror/airlock/internal/catalogmirror"
	"github.com/airlock-mirror/airlock/internal/imageset"
	"github.com/airlock-mirror/airlock/internal/orchestrate"
	"github.com/airlock-mirror/airlock/internal/ref"
)

func newCatalogCommand(streams IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "catalog",
		Short: "Inspect, filter and mirror OLM operator catalogs (file-based or legacy sqlite)",
		Long: `Work with OLM operator catalogs: list what a catalog holds, list every image an
operator selection needs, filter a catalog down to chosen operators (with
their dependencies), and mirror it.

CATALOG is a catalog image (registry reference, or docker://, oci://, file://
under --dir), a file-based catalog directory, a single catalog file, or a
legacy sqlite index database (index.db). Sqlite catalogs are read without
cgo and are never modified.`,
		Example: `  # which operators does the catalog hold?
  airlock catalog packages registry.redhat.io/redhat/redhat-operator-index:v4.18

  # every image the stable channel of one operator needs, as mapping.txt lines
  airlock catalog images ./index.db --package etcd --channel stable -o mapping --dest myregistry.com/olm

  # a catalog with just two operators and what they depend on
  airlock catalog filter ./catalog --package etcd:stable --package prometheus -o ./filtered`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	for _, kind := range []string{"packages", "channels", "bundles", "images"} {
		cmd.AddCommand(newCatalogQueryCommand(streams, kind))
	}
	cmd.AddCommand(newCatalogFilterCommand(streams))
	cmd.AddCommand(newCatalogMirrorCommand(streams))
	cmd.AddCommand(newCatalogBuildCommand(streams))
	cmd.AddCommand(newCatalogInstallManifestsCommand(streams))
	return cmd
}

// CatalogSourceFlags say how to read CATALOG.
type CatalogSourceFlags struct {
	RegistryFlags
	// Dir is the local store for file:// references.
	Dir string
	// IndexFilterByOS picks the variant of a multi-arch catalog image to read.
	IndexFilterByOS string
}

func (f *CatalogSourceFlags) addFlags(fs *pflag.FlagSet) {
	f.RegistryFlags.AddFlags(fs)
	f.IndexFilterByOS = "linux/amd64"
	fs.StringVar(&f.Dir, "dir", "", "local store directory for file:// catalog references")
	fs.StringVar(&f.IndexFilterByOS, "index-filter-by-os", f.IndexFilterByOS, "os/arch[/variant] (or regular expression) of the catalog image variant to read")
}

func (f *CatalogSourceFlags) validate() error {
	if _, err := regexp.Compile(f.IndexFilterByOS); err != nil {
		return fmt.Errorf("--index-filter-by-os %q: %w", f.IndexFilterByOS, err)
	}
	return nil
}

// isLocalCatalog says whether a CATALOG or INDEX argument is a catalog on
// disk: an existing path with no transport. Every catalog command reads its
// argument this way; anything else is an image reference.
func isLocalCatalog(arg string) bool {
	if strings.Contains(arg, "://") {
		return false
	}
	_, err := os.Stat(arg)
	return err == nil
}

// load reads CATALOG: a local path when one exists (and has no
// transport), else an image reference read through the engine.
func (f *CatalogSourceFlags) load(ctx context.Context, arg string) (*catalog.Catalog, error) {
	if isLocalCatalog(arg) {
		return catalog.Load(ctx, arg, nil)
	}
	r, err := ref.Parse(arg)
	if err != nil {
		return nil, fmt.Errorf("CATALOG %q is neither a local catalog directory, file or index.db, nor an image reference: %w", arg, err)
	}
	if !r.HasTagOrDigest() {
		return nil, fmt.Errorf("CATALOG %s: give a tag or digest (e.g. %s:v4.18), or an existing local path", arg, arg)
	}
	eng, err := f.NewEngine(f.Dir)
	if err != nil {
		return nil, err
	}
	return catalog.Load(ctx, orchestrate.WithTransport(r), orchestrate.PlatformOpener(eng, f.IndexFilterByOS))
}

// ---- packages | channels | bundles | images ----

// CatalogQueryOptions are the options of the catalog listing commands.
type CatalogQueryOptions struct {
	CatalogSourceFlags
	Kind          string // packages, channels, bundles or images
	Packages      []string
	Channels      []string
	Bundle        string
	Version       string
	Output        string
	Dest          string
	MaxComponents int

	dest    ref.Ref
	streams IOStreams
}

var catalogQueryHelp = map[string]struct{ short, example string }{
	"packages": {"List the packages of a catalog: default channel, channels, head version, bundle count", `  airlock catalog packages registry.redhat.io/redhat/redhat-operator-index:v4.18
  airlock catalog packages ./index.db -o json
  airlock catalog packages ./catalog --package etcd --package prometheus`},
	"channels": {"List the channels of a catalog with their heads", `  airlock catalog channels ./catalog --package etcd
  airlock catalog channels docker://quay.io/ns/index:v1 -o yaml`},
	"bundles": {"List bundles with version, channels and image", `  airlock catalog bundles ./catalog --package etcd --channel stable
  airlock catalog bundles ./index.db --bundle 'clusterlogging.4.3*'
  airlock catalog bundles ./catalog --package project-quay --version '>=3.10.0 <3.11.0'`},
	"images": {"List every image a selection of bundles needs (bundle images and related images)", `  # the images of some bundles (replaces: sqlite3 bundles.db "select * from related_image where operatorbundle_name like 'clusterlogging.4.3%'")
  airlock catalog images ./index.db --bundle 'clusterlogging.4.3*'

  # mapping.txt lines for oc image mirror / airlock image mirror
  airlock catalog images ./catalog --package etcd -o mapping --dest myregistry.com:5000/olm > mapping.txt`},
}

func newCatalogQueryCommand(streams IOStreams, kind string) *cobra.Command {
	o := &CatalogQueryOptions{Kind: kind, streams: streams, MaxComponents: catalogmirror.DefaultMaxComponents}
	h := catalogQueryHelp[kind]
	outputs := "table (default), json or yaml"
	if kind == "images" {
		outputs = "table (default), json, yaml or mapping (SRC=DST lines; needs --dest)"
	}
	cmd := &cobra.Command{
		Use:     kind + " CATALOG",
		Short:   h.short,
		Example: h.example,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context(), args[0])
		},
	}
	fs := cmd.Flags()
	o.CatalogSourceFlags.addFlags(fs)
	fs.StringArrayVar(&o.Packages, "package", nil, "only this package; repeatable")
	fs.StringArrayVar(&o.Channels, "channel", nil, "only this channel; repeatable")
	fs.StringVar(&o.Bundle, "bundle", "", "only bundles whose name matches this glob, e.g. 'etcdoperator.v0.9.*'")
	fs.StringVar(&o.Version, "version", "", "only bundles whose version is in this semver range, e.g. '>=1.2.0 <2.0.0'")
	fs.StringVarP(&o.Output, "output", "o", "", "output format: "+outputs)
	if kind == "images" {
		fs.StringVar(&o.Dest, "dest", "", "with -o mapping: destination registry or prefix (myregistry.com[:port][/prefix])")
		fs.IntVar(&o.MaxComponents, "max-components", o.MaxComponents, "with -o mapping: maximum path components of a destination repository, as oc adm catalog mirror (0 = no limit)")
	}
	return cmd
}

// Complete parses --dest.
func (o *CatalogQueryOptions) Complete() error {
	if o.Dest != "" {
		d, err := catalogmirror.ParseDest(o.Dest)
		if err != nil {
			return fmt.Errorf("--dest: %w", err)
		}
		o.dest = d
	}
	return nil
}

// Validate checks the flags.
func (o *CatalogQueryOptions) Validate() error {
	switch o.Output {
	case "", "table", "json", "yaml":
	case "mapping":
		if o.Kind != "images" {
			return fmt.Errorf("-o mapping is only for `catalog images`")
		}
		if o.Dest == "" {
			return fmt.Errorf("-o mapping needs --dest REGISTRY[/PREFIX]")
		}
	default:
		return fmt.Errorf("-o %q: want table, json or yaml", o.Output)
	}
	if o.Dest != "" && o.Output != "mapping" {
		return fmt.Errorf("--dest is only used with -o mapping")
	}
	if o.MaxComponents < 0 {
		return fmt.Errorf("--max-components %d: must be 0 (no limit) or more", o.MaxComponents)
	}
	if o.Version != "" {
		if _, err := semver.ParseRange(o.Version); err != nil {
			return fmt.Errorf("--version %q: %w (want a semver range such as '>=1.2.0 <2.0.0')", o.Version, err)
		}
	}
	return o.CatalogSourceFlags.validate()
}

// Run loads the catalog and prints the listing.
func (o *CatalogQueryOptions) Run(ctx context.Context, arg string) error {
	c, err := o.load(ctx, arg)
	if err != nil {
		return err
	}
	for _, w := range c.Warnings {
		fmt.Fprintf(o.streams.ErrOut, "warning: %s\n", w)
	}
	sel := catalog.Selector{Packages: o.Packages, Channels: o.Channels, Bundle: o.Bundle, VersionRange: o.Version}
	var v any
	var table func(w io.Writer)
	switch o.Kind {
	case "packages":
		ps, err := c.Packages(sel)
		if err != nil {
			return err
		}
		v = ps
		table = func(w io.Writer) {
			fmt.Fprintln(w, "PACKAGE\tDEFAULT CHANNEL\tHEAD VERSION\tBUNDLES\tCHANNELS")
			for _, p := range ps {
				fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\n", p.Name, p.DefaultChannel, dash(p.HeadVersion), p.Bundles, strings.Join(p.Channels, ","))
			}
		}
	case "channels":
		cs, err := c.Channels(sel)
		if err != nil {
			return err
		}
		v = cs
		table = func(w io.Writer) {
			fmt.Fprintln(w, "PACKAGE\tCHANNEL\tDEFAULT\tHEAD\tHEAD VERSION\tBUNDLES")
			for _, ch := range cs {
				fmt.Fprintf(w, "%s\t%s\t%t\t%s\t%s\t%d\n", ch.Package, ch.Name, ch.Default, dash(ch.Head), dash(ch.HeadVersion), ch.Bundles)
			}
		}
	case "bundles":
		bs, err := c.Bundles(sel)
		if err != nil {
			return err
		}
		v = bs
		table = func(w io.Writer) {
			fmt.Fprintln(w, "PACKAGE\tBUNDLE\tVERSION\tCHANNELS\tIMAGE")
			for _, b := range bs {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", b.Package, b.Name, dash(b.Version), strings.Join(b.Channels, ","), dash(b.Image))
			}
		}
	case "images":
		imgs, ws, err := c.Images(sel)
		if err != nil {
			return err
		}
		for _, w := range ws {
			fmt.Fprintf(o.streams.ErrOut, "warning: %s\n", w)
		}
		if o.Output == "mapping" {
			return o.writeMapping(imgs)
		}
		v = imgs
		table = func(w io.Writer) {
			fmt.Fprintln(w, "IMAGE\tKIND\tPINNED\tBUNDLES")
			for _, i := range imgs {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", i.Ref, i.Kind, i.Pinned, summarizeList(i.Bundles, 3))
			}
		}
	default:
		return fmt.Errorf("unknown listing %q", o.Kind)
	}
	return writeListing(o.streams.Out, o.Output, v, table)
}

// writeMapping prints SRC=DST lines named as oc adm catalog mirror names
// them, so the file can be fed to `airlock image mirror -f` or `oc image mirror -f`.
func (o *CatalogQueryOptions) writeMapping(imgs []catalog.Image) error {
	var b strings.Builder
	for _, i := range imgs {
		dst := catalogmirror.Mount(i.Parsed, o.dest, o.MaxComponents)
		fmt.Fprintf(&b, "%s=%s\n", i.Parsed.Name(), dst.String())
	}
	_, err := io.WriteString(o.streams.Out, b.String())
	return err
}

func writeListing(w io.Writer, format string, v any, table func(io.Writer)) error {
	switch format {
	case "json", "yaml":
		data, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		if format == "yaml" {
			if data, err = yaml.JSONToYAML(data); err != nil {
				return err
			}
		} else {
			data = append(data, '\n')
		}
		_, err = w.Write(data)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func summarizeList(s []string, n int) string {
	if len(s) <= n {
		return strings.Join(s, ",")
	}
	return fmt.Sprintf("%s,... (%d)", strings.Join(s[:n], ","), len(s))
}

// ---- filter ----

// CatalogFilterOptions are the options of `airlock catalog filter`.
type CatalogFilterOptions struct {
	CatalogSourceFlags
	// CatalogRebuildFlags (--to, --convert-to-fbc, --base) push the result
	// as a catalog image; they belong to the catalog-mirror side.
	CatalogRebuildFlags
	Config           string
	Packages         []string
	Full             bool
	SkipDependencies bool
	OutputDir        string
	OutputDB         string
	Format           string
	ReportFormat     string

	op      imageset.Operator
	local   bool // CATALOG is a path on disk
	streams IOStreams
}

func newCatalogFilterCommand(streams IOStreams) *cobra.Command {
	o := &CatalogFilterOptions{streams: streams, Format: "json"}
	cmd := &cobra.Command{
		Use:   "filter CATALOG (--config FILE | --package SPEC... | --full) (-o DIR | --to REF | --output-db FILE)",
		Short: "Write a file-based catalog holding only the selected operators and what they depend on",
		Long: `Filter a catalog with the operators[] semantics of an ImageSetConfiguration
(oc-mirror v2) and write the result as a file-based catalog directory:
one sub-directory per package holding catalog.json (or catalog.yaml), the
layout of the upstream catalogs. The directory is written under a temporary
name and renamed into place when complete.

Selection:
  --package NAME                    all channels of NAME, heads only (all bundles with --full)
  --package NAME:CHANNEL            one channel (repeat for more channels)
  --package NAME:CHANNEL@MIN-MAX    the bundles of CHANNEL from MIN to MAX (either may be
                                    empty: @1.2.0- or @-1.4.0), plus the upgrade path that
                                    keeps a single channel head
  --package NAME@MIN-MAX            the same range on every channel of NAME
  --config FILE                     the operators[] entry of an ImageSetConfiguration for
                                    this catalog (or its only entry)
  no selection                      every package, heads only (the whole catalog with --full)

When --package names channels that exclude the package's default channel, the
first channel named becomes the default. The bundles the kept bundles require
(olm.package.required, olm.gvk.required) are added with their upgrade path and
reported; --skip-dependencies turns that off. The result is validated as OLM
would validate it; a request that cannot give a valid catalog fails and says
which package and channel, and why.

A legacy sqlite catalog (index.db, or an image holding one) can also be written
back as sqlite with --output-db: the database pruned to the selection in its
own schema (packages, channels, heads, default channels and bundles; an old
bundle a kept one replaces keeps its upgrade edge), which the old opm of such an
image can still serve. It is what "opm index prune" did, down to channels and
versions.`,
		Example: `  # two operators and their dependencies
  airlock catalog filter registry.redhat.io/redhat/redhat-operator-index:v4.18 \
      --package odf-operator --package cluster-logging:stable-6.1 -o ./filtered

  # a version range of one channel
  airlock catalog filter ./catalog --package etcd:stable@0.9.0-0.9.4 -o ./filtered

  # what an ImageSetConfiguration selects, without mirroring anything
  airlock catalog filter ./index.db --config imageset-config.yaml -o ./filtered --format yaml

  # push the filtered catalog as an image (the source image rebuilt for every platform)
  airlock catalog filter quay.io/ns/index:v1 --package etcd --to myregistry.com/olm/index:v1-etcd

  # prune a legacy sqlite index database to one channel, keeping it sqlite
  airlock catalog filter ./index.db --package etcd:alpha --output-db ./pruned.db`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(args[0]); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context(), args[0])
		},
	}
	fs := cmd.Flags()
	o.CatalogSourceFlags.addFlags(fs)
	fs.StringVar(&o.Config, "config", "", "ImageSetConfiguration file whose operators[] entry selects what to keep")
	fs.StringArrayVar(&o.Packages, "package", nil, "select NAME[:CHANNEL][@MIN-MAX]; repeatable")
	fs.BoolVar(&o.Full, "full", false, "keep every bundle of the selected channels instead of heads only (with no --package: the whole catalog)")
	fs.BoolVar(&o.SkipDependencies, "skip-dependencies", false, "do not add the packages the kept bundles require")
	fs.StringVarP(&o.OutputDir, "output", "o", "", "directory to write the filtered catalog to (replaced if it exists)")
	fs.StringVar(&o.OutputDB, "output-db", "", "legacy sqlite catalogs: write the index database pruned to the selection to FILE, in its own schema (replaced if it exists)")
	fs.StringVar(&o.Format, "format", o.Format, "file format of the written catalog: json or yaml")
	fs.StringVar(&o.ReportFormat, "report", "", "print the filter report as json or yaml instead of text")
	o.CatalogRebuildFlags.AddFlags(fs)
	return cmd
}

// Complete builds the operators[] entry from --config or --package.
func (o *CatalogFilterOptions) Complete(arg string) error {
	o.local = isLocalCatalog(arg)
	switch {
	case o.Config != "" && len(o.Packages) > 0:
		return fmt.Errorf("--config and --package both select operators; use one")
	case o.Config != "":
		cfg, err := imageset.Load(o.Config)
		if err != nil {
			return err
		}
		op, err := orchestrate.OperatorFor(cfg, o.Config, arg)
		if err != nil {
			return err
		}
		o.op = *op
		if o.Full {
			o.op.Full = true
		}
	default:
		op, err := orchestrate.ParsePackageSpecs(arg, o.Packages)
		if err != nil {
			return err
		}
		op.Full = o.Full
		o.op = *op
	}
	if o.SkipDependencies {
		o.op.SkipDependencies = true
	}
	return nil
}

// Validate checks the flags.
func (o *CatalogFilterOptions) Validate() error {
	if o.OutputDir == "" && o.To == "" && o.OutputDB == "" {
		return fmt.Errorf("give -o DIR (write the filtered catalog to a directory), --to REF (push it as a catalog image) and/or --output-db FILE (a legacy sqlite catalog pruned, as sqlite)")
	}
	if o.Format != "json" && o.Format != "yaml" {
		return fmt.Errorf("--format %q: want json or yaml", o.Format)
	}
	if o.ReportFormat != "" && o.ReportFormat != "json" && o.ReportFormat != "yaml" {
		return fmt.Errorf("--report %q: want json or yaml", o.ReportFormat)
	}
	if err := o.CatalogRebuildFlags.Validate(o.local); err != nil {
		return err
	}
	return o.CatalogSourceFlags.validate()
}

// writeDatabase writes --output-db: the sqlite database of c (a local
// file, or extracted from the catalog image arg) pruned to filtered.
func (o *CatalogFilterOptions) writeDatabase(ctx context.Context, arg string, c, filtered *catalog.Catalog, out io.Writer) error {
	if c.Format != catalog.FormatSQLite {
		return fmt.Errorf("--output-db: %s is a file-based catalog, not a legacy sqlite one; write it with -o DIR", arg)
	}
	var res *catalog.PruneResult
	if o.local {
		a, errA := os.Stat(arg)
		b, errB := os.Stat(o.OutputDB)
		if errA == nil && errB == nil && os.SameFile(a, b) {
			return fmt.Errorf("--output-db %s is CATALOG itself: write the pruned database to another file", o.OutputDB)
		}
		r, err := catalog.PruneSQLite(ctx, c.DatabasePath, o.OutputDB, filtered)
		if err != nil {
			return fmt.Errorf("--output-db %s: %w", o.OutputDB, err)
		}
		res = r
	} else {
		r, err := ref.Parse(arg)
		if err != nil {
			return fmt.Errorf("CATALOG %q: %w", arg, err)
		}
		eng, err := o.NewEngine(o.Dir)
		if err != nil {
			return err
		}
		if res, err = orchestrate.PruneImageDatabase(ctx, eng, r, filtered, o.OutputDB); err != nil {
			return fmt.Errorf("--output-db %s: %w", o.OutputDB, err)
		}
	}
	how := "exactly the selection"
	if !res.Exact {
		how = "whole packages"
	}
	fmt.Fprintf(out, "wrote pruned sqlite database %s: %d package(s), %d bundle(s), %s\n", o.OutputDB, len(res.Catalog.Config.Packages), len(res.Catalog.Config.Bundles), how)
	for _, n := range orchestrate.PruneNotes(res) {
		fmt.Fprintf(out, "note: %s\n", n)
	}
	return nil
}

// Run loads, filters and writes.
func (o *CatalogFilterOptions) Run(ctx context.Context, arg string) error {
	c, err := o.load(ctx, arg)
	if err != nil {
		return err
	}
	if o.Config == "" {
		orchestrate.DefaultFirstChannels(c, &o.op)
	}
	out, rep, err := catalog.Filter(ctx, c, o.op)
	if err != nil {
		return fmt.Errorf("filtering %s: %w", arg, err)
	}
	if o.OutputDir != "" {
		if err := catalog.WriteDir(out, o.OutputDir, o.Format); err != nil {
			return err
		}
	}
	for _, w := range rep.Warnings {
		fmt.Fprintf(o.streams.ErrOut, "warning: %s\n", w)
	}
	msgs := o.streams.Out
	if o.ReportFormat != "" {
		msgs = o.streams.ErrOut // keep stdout parseable
	}
	if o.OutputDB != "" {
		if err := o.writeDatabase(ctx, arg, c, out, msgs); err != nil {
			return err
		}
	}
	if o.To != "" {
		if err := o.CatalogRebuildFlags.Push(ctx, o.CatalogSourceFlags, arg, c, out, msgs); err != nil {
			return fmt.Errorf("pushing the filtered catalog to %s: %w", o.To, err)
		}
	}
	if o.ReportFormat != "" {
		return writeListing(o.streams.Out, o.ReportFormat, rep, nil)
	}
	w := o.streams.Out
	bundles := map[string]bool{}
	for _, p := range rep.Packages {
		dep := ""
		if p.Dependency {
			dep = " (dependency)"
		}
		fmt.Fprintf(w, "%s%s: default channel %s\n", p.Name, dep, p.DefaultChannel)
		for _, ch := range p.Channels {
			fmt.Fprintf(w, "  %s: head %s, %d bundle(s)\n", ch.Name, ch.Head, len(ch.Bundles))
			for _, b := range ch.Bundles {
				bundles[p.Name+"/"+b] = true
			}
		}
	}
	for _, d := range rep.Dependencies {
		fmt.Fprintf(w, "added %s/%s (channel %s): %s requires %s\n", d.Package, d.Bundle, d.Channel, d.RequiredBy, d.Requirement)
	}
	if o.OutputDir != "" {
		abs, _ := filepath.Abs(o.OutputDir)
		fmt.Fprintf(w, "wrote %d package(s), %d bundle(s) to %s\n", len(rep.Packages), len(bundles), abs)
	}
	return nil
}
