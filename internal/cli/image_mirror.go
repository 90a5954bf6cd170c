package cli

import (
	"fmt"
	"io"
	"os"
	"regexp"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/airlock-mirror/airlock/internal/engine"
	"github.com/airlock-mirror/airlock/internal/mapping"
	"github.com/airlock-mirror/airlock/internal/orchestrate"
	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
)

// ImageMirrorOptions are the options of `airlock image mirror`, named like
// the flags of `oc image mirror` so existing scripts keep working.
type ImageMirrorOptions struct {
	RegistryFlags

	Filenames        []string
	FilterByOS       string
	KeepManifestList bool
	DryRun           bool
	SkipMissing      bool
	ContinueOnError  bool
	FailFast         bool
	MaxPerRegistry   int
	Parallel         int
	RetryTimes       int
	RateLimit        float64
	Dir              string
	FromDir          string
	Report           string
	Output           string

	Args []string

	// Plan is the parsed mapping (Complete).
	Plan plan.Plan
	// StoreDir is the local store root for file:// references (Validate).
	StoreDir string

	streams IOStreams
	now     func() time.Time
}

func newImageCommand(streams IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Copy images between registries and local disk",
		Example: `  # copy one image to a mirror registry, keeping every platform and the digest
  airlock image mirror quay.io/app/web:1.2 mirror.local:5000/app/web`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newImageMirrorCommand(streams))
	return cmd
}

func newImageMirrorCommand(streams IOStreams) *cobra.Command {
	o := &ImageMirrorOptions{streams: streams, ContinueOnError: true, RetryTimes: 5, Report: "mirror-errors.txt", now: time.Now}
	cmd := &cobra.Command{
		Use:   "mirror [SRC DST [DST...] | SRC=DST...] [-f mapping.txt]",
		Short: "Mirror images from one place to another (compatible with oc image mirror)",
		Long: `Copy images between registries (docker://, the default), airlock's local store
(file://repo:tag under --dir / --from-dir) and OCI layouts (oci://DIR:tag).

Multi-arch images are copied whole, so the destination digest equals the source
digest. Blobs already at the destination are skipped, blobs in another
repository of the same destination registry are mounted, transient network
errors are retried, and a re-run after any interruption copies only what is
missing.

Mappings are given as arguments or in files (-f, repeatable, "-" for stdin) in
the oc format: "SRC DST [DST...]" or "SRC=DST" per line, '#' starts a comment.
A destination without a tag gets the source's tag; for a source named only by
digest it gets the tag "sha256-<hex>" (the digest with ':' replaced by '-').
The whole mapping is checked before anything is copied; every bad line is
reported with file:line.

A failed image does not stop the others. At the end every failed image is
listed with its reason, the command exits non-zero, and the failed images are
written to --report (default mirror-errors.txt) as a mapping file you can
re-run with -f.`,
		Example: `  # copy an image to two destinations; tags are inherited
  airlock image mirror quay.io/app/web:1.2 mirror.local:5000/app/web mirror.local:5000/backup/web

  # copy everything listed in a mapping file (e.g. written by oc adm catalog mirror)
  airlock image mirror -f mapping.txt -a ~/pull-secret.json

  # only the linux/amd64 image of a multi-arch source (this changes the digest)
  airlock image mirror --filter-by-os 'linux/amd64' quay.io/app/web:1.2=mirror.local:5000/app/web

  # mirror only images whose cosign signatures verify with the key (containers-policy.json),
  # failing every unsigned one; signatures, SBOMs and referrers travel with the images
  airlock image mirror --policy policy.json --signatures strict -f mapping.txt

  # registry -> disk on the connected side, disk -> registry on the disconnected side
  airlock image mirror --dir /mnt/mirror quay.io/app/web:1.2 file://app/web
  airlock image mirror --from-dir /mnt/mirror file://app/web:1.2 mirror.local:5000/app/web

  # show what would be copied, with sizes, without copying
  airlock image mirror --dry-run -f mapping.txt

  # retry only the images that failed in the last run
  airlock image mirror -f mirror-errors.txt`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(cmd, args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd)
		},
	}
	fs := cmd.Flags()
	o.RegistryFlags.AddFlags(fs)
	o.RegistryFlags.AddSignatureFlags(fs)
	addOCRegistryAliases(fs, &o.RegistryFlags)
	fs.StringArrayVarP(&o.Filenames, "filename", "f", nil, "mapping file (SRC DST [DST...] or SRC=DST per line); repeatable; - reads stdin")
	fs.StringVar(&o.FilterByOS, "filter-by-os", "", "regular expression over os/arch[/variant]: copy only matching children of a manifest list (changes the digest unless --keep-manifest-list); default: all platforms, digest kept")
	fs.BoolVar(&o.KeepManifestList, "keep-manifest-list", false, "with --filter-by-os, push the original manifest list unchanged and copy only the matching children")
	fs.BoolVar(&o.DryRun, "dry-run", false, "resolve every source and print what would be copied with sizes; copy nothing")
	fs.BoolVar(&o.SkipMissing, "skip-missing", false, "a source that does not exist is reported and skipped instead of failing the run")
	fs.BoolVar(&o.ContinueOnError, "continue-on-error", true, "keep copying the other images when one fails (false = --fail-fast)")
	fs.BoolVar(&o.FailFast, "fail-fast", false, "stop at the first image that fails")
	fs.IntVar(&o.MaxPerRegistry, "max-per-registry", 0, "maximum concurrent requests to one registry (0 = engine default, 16)")
	fs.IntVar(&o.Parallel, "parallel", 0, "images copied at once (0 = engine default, 8)")
	fs.IntVar(&o.RetryTimes, "retry-times", 5, "retries of a transient failure (reset, timeout, 408/429/5xx) with exponential backoff; 0 = no retries")
	fs.Float64Var(&o.RateLimit, "rate-limit", 0, "maximum requests per second to one registry (0 = unlimited)")
	fs.StringVar(&o.Dir, "dir", "", "local store directory that file:// destinations are written to (and read from unless --from-dir)")
	fs.StringVar(&o.FromDir, "from-dir", "", "local store directory that file:// sources are read from (default --dir)")
	fs.StringVar(&o.Report, "report", o.Report, "failure report file, written only when an image failed: a mapping of the failed images, re-runnable with -f")
	fs.StringVarP(&o.Output, "output", "o", "", "output format of the run report: text (default) or json (to stdout; logs stay on stderr)")
	return cmd
}

// addOCRegistryAliases accepts oc's names for the registry flags, so
// `oc image mirror` command lines work unchanged.
func addOCRegistryAliases(fs *pflag.FlagSet, f *RegistryFlags) {
	fs.StringVar(&f.AuthFile, "registry-config", "", "same as --authfile (the name oc uses)")
	fs.StringVar(&f.CAFile, "certificate-authority", "", "same as --ca-file (the name oc uses)")
}

// Complete reads the mapping (arguments and files) into o.Plan.
func (o *ImageMirrorOptions) Complete(cmd *cobra.Command, args []string) error {
	o.Args = args
	if !o.ContinueOnError {
		o.FailFast = true
	}
	if o.now == nil {
		o.now = time.Now
	}
	ms, err := readMappings(args, o.Filenames, o.streams.In)
	if err != nil {
		return err
	}
	o.Plan = mapping.ToPlan(ms)
	return nil
}

// readMappings parses mapping arguments and -f files (- is stdin), every
// error naming its file and line.
func readMappings(args, files []string, stdin io.Reader) ([]mapping.Mapping, error) {
	var p mapping.Parser
	p.Args(args)
	for _, name := range files {
		if err := readMappingFile(&p, name, stdin); err != nil {
			return nil, err
		}
	}
	return p.Result()
}

// readMappingFile feeds one -f file (or stdin for "-") to the parser.
func readMappingFile(p *mapping.Parser, name string, stdin io.Reader) error {
	if name == "-" {
		if stdin == nil {
			stdin = os.Stdin
		}
		return p.Read(mapping.Input{Name: "<stdin>", R: stdin})
	}
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("reading mapping file: %w", err)
	}
	defer f.Close()
	return p.Read(mapping.Input{Name: name, R: f})
}

// Validate checks the flags against each other and the plan.
func (o *ImageMirrorOptions) Validate() error {
	switch o.Output {
	case "", "text", "json":
	default:
		return fmt.Errorf("--output %q: want text or json", o.Output)
	}
	if o.FilterByOS != "" {
		if _, err := regexp.Compile(o.FilterByOS); err != nil {
			return fmt.Errorf("--filter-by-os %q is not a regular expression: %w", o.FilterByOS, err)
		}
	}
	if o.RetryTimes < 0 {
		return fmt.Errorf("--retry-times %d: must be 0 or more", o.RetryTimes)
	}
	if o.RateLimit < 0 {
		return fmt.Errorf("--rate-limit %v: must be 0 (unlimited) or more", o.RateLimit)
	}
	if o.MaxPerRegistry < 0 || o.Parallel < 0 {
		return fmt.Errorf("--max-per-registry and --parallel must be 0 (default) or more")
	}
	if o.Report == "" {
		return fmt.Errorf("--report: empty file name; give a path such as mirror-errors.txt")
	}
	dir, err := storeDir(o.Plan, o.Dir, o.FromDir)
	if err != nil {
		return err
	}
	o.StoreDir = dir
	return o.Plan.Validate()
}

// storeDir picks the one local store directory the engine uses for file://
// references. oc allows --dir and --from-dir to differ; airlock has one
// store per run, so when both sides of the plan are file:// the two must
// agree.
func storeDir(p plan.Plan, dir, fromDir string) (string, error) {
	var fileSrc, fileDst bool
	for _, it := range p.Items {
		if it.Source.Transport == ref.File {
			fileSrc = true
		}
		for _, d := range it.Dests {
			if d.Transport == ref.File {
				fileDst = true
			}
		}
	}
	readDir := fromDir
	if readDir == "" {
		readDir = dir
	}
	switch {
	case fileSrc && fileDst:
		if dir != "" && fromDir != "" && dir != fromDir {
			return "", fmt.Errorf("--dir %s and --from-dir %s differ but the mapping reads and writes file:// images; airlock uses one store per run: copy in two steps or use one directory", dir, fromDir)
		}
		return readDir, nil
	case fileSrc:
		return readDir, nil
	case fileDst:
		return dir, nil
	}
	return "", nil
}

// engineOptions builds the engine configuration from the flags.
func (o *ImageMirrorOptions) engineOptions(log io.Writer) (engine.Options, error) {
	opts, err := o.EngineOptions(o.StoreDir)
	if err != nil {
		return engine.Options{}, err
	}
	retries := o.RetryTimes
	if retries == 0 {
		retries = -1 // the engine reads 0 as "default"; the flag's 0 means none
	}
	opts.FilterByOS = o.FilterByOS
	opts.KeepManifestList = o.KeepManifestList
	opts.Parallel = o.Parallel
	opts.MaxPerRegistry = o.MaxPerRegistry
	opts.RateLimit = o.RateLimit
	opts.RetryTimes = retries
	opts.FailFast = o.FailFast
	opts.SkipMissing = o.SkipMissing
	opts.DryRun = o.DryRun
	opts.Progress = log
	return opts, nil
}

// Run copies the plan through orchestrate.ImageMirror. It returns an
// error (exit 1) when any image failed, after printing the summary and
// writing the failure report.
func (o *ImageMirrorOptions) Run(cmd *cobra.Command) error {
	opts, err := o.engineOptions(o.streams.ErrOut)
	if err != nil {
		return err
	}
	eng, err := engine.New(opts)
	if err != nil {
		return fmt.Errorf("configuring the copy engine: %w", err)
	}
	_, err = orchestrate.ImageMirror(cmd.Context(), orchestrate.ImageMirrorOptions{Plan: o.Plan, Engine: eng, DryRun: o.DryRun,
		FailureReport: o.Report, JSON: o.Output == "json", Out: o.streams.Out, ErrOut: o.streams.ErrOut, Now: o.now})
	return err
}
