package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/airlock-mirror/airlock/internal/schedule"
)

// SyncOptions are the options of `airlock sync`: mirror-to-mirror on a
// schedule.
type SyncOptions struct {
	MirrorOptions
	Every    time.Duration
	Cron     string
	Once     bool
	MaxRuns  int
	Attempts int
	Backoff  time.Duration
	Grace    time.Duration

	sched schedule.Options
	args  []string
	argv  []string
	// afterRun, when set (tests), runs after each run with its number.
	afterRun func(run int)
}

func newSyncCommand(streams IOStreams) *cobra.Command {
	o := &SyncOptions{MirrorOptions: *newMirrorOptions(streams)}
	cmd := &cobra.Command{
		Use:   "sync -c IMAGESET.yaml --workspace file://DIR docker://REG[/prefix] (--every DURATION | --cron EXPR | --once)",
		Short: "Keep a mirror in sync with an ImageSetConfiguration, on a schedule",
		Long: `Run 'airlock mirror' (mirror-to-mirror) again and again. Each run reads the
config again and re-resolves it upstream (new release heads, new bundles in
channels), so it copies only what changed: what the registry already holds
is skipped. Each run is recorded in the workspace's audit log and the
registry's history (what was added, what failed, what the config no longer
selects), which 'airlock history' and the web view show.

A failed run is retried with backoff (--attempts, --backoff), then skipped:
an upstream that is down for a while never ends the loop. SIGTERM (or
Ctrl-C) stops it cleanly: no new run starts and the run in progress may
finish for --grace. --max-runs bounds the loop. See docs/day2.md for a
systemd unit.`,
		Example: `  # every 6 hours
  airlock sync -c imageset.yaml --workspace file:///var/lib/airlock docker://registry.local:5000 --every 6h

  # at 02:30 every night
  airlock sync -c imageset.yaml --workspace file:///var/lib/airlock docker://registry.local:5000 --cron '30 2 * * *'

  # one run with retries (from cron or a CI job)
  airlock sync -c imageset.yaml --workspace file:///var/lib/airlock docker://registry.local:5000 --once`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.args, o.argv = args, commandLine(cmd, args)
			if err := o.Complete(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	o.MirrorOptions.AddFlags(cmd)
	fs := cmd.Flags()
	fs.DurationVar(&o.Every, "every", 0, "run at this interval (e.g. 6h)")
	fs.StringVar(&o.Cron, "cron", "", "run on this five-field cron schedule (minute hour day-of-month month day-of-week, local time)")
	fs.BoolVar(&o.Once, "once", false, "run once (with retries) and exit")
	fs.IntVar(&o.MaxRuns, "max-runs", 0, "stop after N runs (0: no limit)")
	fs.IntVar(&o.Attempts, "attempts", 3, "tries of a failed run before it is skipped")
	fs.DurationVar(&o.Backoff, "backoff", 30*time.Second, "wait before retrying a failed run (doubles, at most 15m)")
	fs.DurationVar(&o.Grace, "grace", 2*time.Minute, "after SIGTERM, how long the run in progress may go on")
	return cmd
}

// Complete checks the schedule and the destination: sync is mirror-to-mirror.
func (o *SyncOptions) Complete() error {
	o.sched = schedule.Options{Every: o.Every, Once: o.Once, MaxRuns: o.MaxRuns, Attempts: o.Attempts, Backoff: o.Backoff, Grace: o.Grace}
	if o.Cron != "" {
		c, err := schedule.ParseCron(o.Cron)
		if err != nil {
			return fmt.Errorf("--cron: %w", err)
		}
		o.sched.Cron = c
	}
	if err := o.sched.Validate(); err != nil {
		return err
	}
	if o.Attempts < 1 {
		return fmt.Errorf("--attempts %d: want 1 or more", o.Attempts)
	}
	if o.Workspace == "" || len(o.From) > 0 {
		return fmt.Errorf("sync mirrors registry to registry: give --workspace file://DIR (and no --from)")
	}
	// The config is read (and checked) now, so a typo fails at once
	// instead of at the first run.
	if err := o.MirrorOptions.Complete(o.args); err != nil {
		return err
	}
	return o.MirrorOptions.Validate()
}

// Run loops; every run re-reads the config.
func (o *SyncOptions) Run(stop context.Context) error {
	sum, err := schedule.Loop(stop, o.sched, func(ctx context.Context, run, attempt int) error {
		fmt.Fprintf(o.streams.ErrOut, "sync: run %d (attempt %d)\n", run, attempt)
		err := o.MirrorOptions.Complete(o.args)
		if err == nil {
			err = o.MirrorOptions.Validate()
		}
		if err != nil {
			o.recordMirror(ctx, "sync", o.argv, nil, err)
			return err
		}
		res, err := o.MirrorOptions.Run(ctx)
		o.recordMirror(ctx, "sync", o.argv, res, err)
		if o.afterRun != nil && (err == nil || attempt == o.Attempts) {
			o.afterRun(run)
		}
		return err
	})
	fmt.Fprintf(o.streams.Out, "sync: %d runs, %d failed\n", sum.Runs, sum.Failed)
	return err
}
