package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/airlock-mirror/airlock/internal/engine"
	"github.com/airlock-mirror/airlock/internal/mapping"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/report"
)

// VerifyOptions are the options of `airlock verify`.
type VerifyOptions struct {
	RegistryFlags

	Filenames []string
	Dir       string
	DestOnly  bool
	Shallow   bool
	Parallel  int
	Output    string
	Verbose   bool

	Pairs []mapping.Pair

	streams IOStreams
}

func newVerifyCommand(streams IOStreams) *cobra.Command {
	o := &VerifyOptions{streams: streams, Parallel: 16}
	cmd := &cobra.Command{
		Use:   "verify [SRC DST [DST...] | SRC=DST...] [-f mapping.txt]",
		Short: "Check that every destination of a mapping exists with the source's digest",
		Long: `Check a mirror: every destination of the mapping must resolve, and to the
digest expected for it. The expected digest is the one written in the mapping
(SRC@sha256:...), otherwise the source's current digest, resolved now (or,
with --dest-only, no digest is compared: the destination only has to exist).

Accepts the same mapping as 'airlock image mirror' (arguments and -f files),
so it also checks the mapping.txt written by catalog and release mirrors, by
oc adm catalog mirror, or a mirror-errors.txt. Each destination that is
missing or has another digest is listed with its mapping line; the command
exits non-zero if any is.

For a manifest list, every child manifest must resolve at the destination too
(--shallow skips this): a list whose children are missing resolves by tag
but fails on pull with "manifest unknown".

A mirror made with --filter-by-os (without --keep-manifest-list) has other
digests by design; verify such mirrors with --dest-only. One made with
--keep-manifest-list lacks the filtered-out children by design; add --shallow.`,
		Example: `  # after a mirror: is everything there, byte-identical?
  airlock verify -f mapping.txt -a ~/pull-secret.json

  # on the disconnected side, where the sources cannot be reached: the
  # mapping's digests are enough; tag-only sources need --dest-only
  airlock verify -f manifests-redhat-operator-index/mapping.txt --dest-only

  # one image, machine-readable
  airlock verify quay.io/app/web:1.2=mirror.local:5000/app/web -o json

  # a disk mirror
  airlock verify --dir /mnt/mirror quay.io/app/web:1.2 file://app/web`,
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
	fs := cmd.Flags()
	o.RegistryFlags.AddFlags(fs)
	addOCRegistryAliases(fs, &o.RegistryFlags)
	fs.StringArrayVarP(&o.Filenames, "filename", "f", nil, "mapping file (SRC DST [DST...] or SRC=DST per line); repeatable; - reads stdin")
	fs.StringVar(&o.Dir, "dir", "", "local store directory of file:// references")
	fs.BoolVar(&o.DestOnly, "dest-only", false, "do not contact sources: only check that each destination exists (and its digest when the mapping names one)")
	fs.BoolVar(&o.Shallow, "shallow", false, "check only the top-level manifest; by default every child manifest of a manifest list must resolve at the destination too")
	fs.IntVar(&o.Parallel, "parallel", o.Parallel, "checks run at once")
	fs.StringVarP(&o.Output, "output", "o", "", "output format: text (default) or json")
	fs.BoolVarP(&o.Verbose, "verbose", "v", false, "list passing destinations too")
	return cmd
}

// Complete parses the mapping.
func (o *VerifyOptions) Complete(args []string) error {
	ms, err := readMappings(args, o.Filenames, o.streams.In)
	if err != nil {
		return err
	}
	o.Pairs = mapping.Pairs(ms)
	return nil
}

// Validate checks the flags.
func (o *VerifyOptions) Validate() error {
	switch o.Output {
	case "", "text", "json":
	default:
		return fmt.Errorf("--output %q: want text or json", o.Output)
	}
	if o.Parallel < 1 {
		return fmt.Errorf("--parallel %d: must be 1 or more", o.Parallel)
	}
	return nil
}

// resolver is what verify needs from the engine; tests may substitute a
// real engine configured differently.
type resolver interface {
	Resolve(ctx context.Context, r ref.Ref) (engine.Descriptor, error)
	Index(ctx context.Context, r ref.Ref) (v1.ImageIndex, error)
}

// Run checks every pair and prints the result; it returns an error when
// any destination failed.
func (o *VerifyOptions) Run(ctx context.Context) error {
	eng, err := o.NewEngine(o.Dir)
	if err != nil {
		return err
	}
	checks, err := verifyPairs(ctx, eng, o.Pairs, verifyMode{destOnly: o.DestOnly, shallow: o.Shallow}, o.Parallel)
	if err != nil {
		return err
	}
	j := report.NewVerifyJSON(checks)
	if o.Output == "json" {
		if err := report.WriteJSON(o.streams.Out, j); err != nil {
			return err
		}
	} else {
		report.Verification(o.streams.Out, checks, o.Verbose)
	}
	if !j.OK {
		return fmt.Errorf("%d of %d destination(s) missing or wrong", j.Failed, j.Total)
	}
	return nil
}

// verifyPairs checks each pair, parallel checks, and returns the checks in
// pair order. Each distinct source is resolved once, however many
// destinations it has.
func verifyPairs(ctx context.Context, res resolver, pairs []mapping.Pair, mode verifyMode, parallel int) ([]report.Check, error) {
	checks := make([]report.Check, len(pairs))
	var mu sync.Mutex
	sources := map[string]*sourceDigest{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for i, p := range pairs {
		mu.Lock()
		sd, ok := sources[p.Source.String()]
		if !ok {
			sd = &sourceDigest{}
			sources[p.Source.String()] = sd
		}
		mu.Unlock()
		g.Go(func() error {
			checks[i] = verifyOne(gctx, res, p, sd, mode)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("verify interrupted: %w", err)
	}
	return checks, nil
}

// sourceDigest resolves one source once for all its destinations.
type sourceDigest struct {
	once   sync.Once
	digest string
	err    error
}

// verifyMode says how deep verify looks.
type verifyMode struct {
	destOnly bool // never contact sources
	shallow  bool // skip the children of manifest lists
}

func verifyOne(ctx context.Context, res resolver, p mapping.Pair, sd *sourceDigest, mode verifyMode) report.Check {
	c := report.Check{Source: p.Source.String(), Dest: p.Dest.String(), Pos: p.Pos, Expected: p.Source.Digest}
	if c.Expected == "" && !mode.destOnly {
		sd.once.Do(func() {
			d, err := res.Resolve(ctx, p.Source)
			if err != nil {
				sd.err = err
				return
			}
			sd.digest = d.Digest.String()
		})
		if sd.err != nil {
			c.Status = report.CheckError
			c.Error = fmt.Sprintf("resolving source %s for the expected digest: %v (use --dest-only where sources cannot be reached)", p.Source, sd.err)
			return c
		}
		c.Expected = sd.digest
	}
	d, err := res.Resolve(ctx, p.Dest)
	switch {
	case errors.Is(err, engine.ErrNotFound):
		c.Status = report.CheckMissing
		return c
	case err != nil:
		c.Status = report.CheckError
		c.Error = fmt.Sprintf("resolving %s: %v", p.Dest, err)
		return c
	}
	c.Actual = d.Digest.String()
	if c.Expected != "" && c.Actual != c.Expected {
		c.Status = report.CheckMismatch
		return c
	}
	c.Status = report.CheckOK
	if d.MediaType.IsIndex() && !mode.shallow {
		checkChildren(ctx, res, p.Dest.ByDigest(c.Actual), &c)
	}
	return c
}

// checkChildren resolves every child manifest of the index at dest: a list
// whose tag resolves but whose children are gone fails on pull with
// "manifest unknown" for one platform, the failure mirrors most often hide.
func checkChildren(ctx context.Context, res resolver, dest ref.Ref, c *report.Check) {
	idx, err := res.Index(ctx, dest)
	if err != nil {
		c.Status, c.Error = report.CheckError, fmt.Sprintf("reading manifest list %s: %v", dest, err)
		return
	}
	im, err := idx.IndexManifest()
	if err != nil {
		c.Status, c.Error = report.CheckError, fmt.Sprintf("reading manifest list %s: %v", dest, err)
		return
	}
	var missing []string
	for _, m := range im.Manifests {
		_, err := res.Resolve(ctx, dest.ByDigest(m.Digest.String()))
		switch {
		case errors.Is(err, engine.ErrNotFound):
			what := m.Digest.String()
			if m.Platform != nil {
				what += " (" + m.Platform.String() + ")"
			}
			missing = append(missing, what)
		case err != nil:
			c.Status, c.Error = report.CheckError, fmt.Sprintf("resolving child %s of %s: %v", m.Digest, dest, err)
			return
		}
	}
	if len(missing) > 0 {
		c.Status = report.CheckIncomplete
		c.Error = fmt.Sprintf("%d of %d child manifest(s) missing: %s", len(missing), len(im.Manifests), strings.Join(missing, ", "))
	}
}
