package schedule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"
)

// Options shape a loop.
type Options struct {
	// Every runs the job at this interval, measured from the start of one
	// run to the start of the next (a run longer than Every is followed
	// at once by the next). Exclusive with Cron.
	Every time.Duration
	// Cron runs the job at the times it matches.
	Cron *Cron
	// Once runs the job once (with its retries) and returns.
	Once bool
	// MaxRuns stops after this many runs (0: no limit).
	MaxRuns int
	// Attempts is how many times a failed run is tried (default 3), with
	// Backoff (default 30 s) doubling between tries, capped at MaxBackoff
	// (default 15 min). A run that fails every attempt is recorded and the
	// loop goes on: an upstream that is down for a while never ends it.
	Attempts   int
	Backoff    time.Duration
	MaxBackoff time.Duration
	// Grace is how long a run in progress may go on after the stop
	// context ends (SIGTERM) before its own context is cancelled.
	Grace  time.Duration
	Logger *slog.Logger
}

// Job is one run; attempt counts from 1.
type Job func(ctx context.Context, run, attempt int) error

// Summary says how a loop went.
type Summary struct {
	Runs      int // runs started
	Failed    int // runs that failed every attempt
	Attempts  int
	LastError error
}

// Validate checks the schedule.
func (o *Options) Validate() error {
	n := 0
	for _, set := range []bool{o.Every > 0, o.Cron != nil, o.Once} {
		if set {
			n++
		}
	}
	if n != 1 {
		return errors.New("give exactly one of --every DURATION, --cron EXPR and --once")
	}
	if o.MaxRuns < 0 {
		return errors.New("--max-runs cannot be negative")
	}
	return nil
}

// Loop runs job on the schedule until stop ends, MaxRuns is reached, or
// Once is done. Ending stop never interrupts a run at once: the run gets
// Grace to finish, no new run starts, and Loop returns nil (a clean stop).
func Loop(stop context.Context, o Options, job Job) (Summary, error) {
	if err := o.Validate(); err != nil {
		return Summary{}, err
	}
	if o.Attempts <= 0 {
		o.Attempts = 3
	}
	if o.Backoff <= 0 {
		o.Backoff = 30 * time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 15 * time.Minute
	}
	if o.Grace <= 0 {
		o.Grace = 2 * time.Minute
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	var sum Summary
	next := time.Now()
	for {
		if stop.Err() != nil {
			return sum, nil
		}
		if wait := time.Until(next); wait > 0 {
			log.Info("sync: waiting for the next run", "at", next.Format(time.RFC3339))
			select {
			case <-stop.Done():
				return sum, nil
			case <-time.After(wait):
			}
		}
		started := time.Now()
		sum.Runs++
		err := runWithRetries(stop, o, log, job, sum.Runs, &sum)
		if err != nil {
			sum.Failed++
			sum.LastError = err
			log.Error("sync: run failed after every attempt; the loop goes on", "run", sum.Runs, "err", err)
		}
		if o.Once || (o.MaxRuns > 0 && sum.Runs >= o.MaxRuns) {
			if o.Once && err != nil {
				return sum, err
			}
			return sum, nil
		}
		if o.Cron != nil {
			next = o.Cron.Next(time.Now())
			if next.IsZero() {
				return sum, fmt.Errorf("cron %s matches no time in the next 5 years", o.Cron)
			}
		} else {
			next = started.Add(o.Every)
		}
	}
}

func runWithRetries(stop context.Context, o Options, log *slog.Logger, job Job, run int, sum *Summary) error {
	backoff := o.Backoff
	var err error
	for attempt := 1; attempt <= o.Attempts; attempt++ {
		sum.Attempts++
		err = runGraceful(stop, o.Grace, func(ctx context.Context) error { return job(ctx, run, attempt) })
		if err == nil || stop.Err() != nil {
			return err
		}
		if attempt == o.Attempts {
			break
		}
		// Jitter keeps several mirrors syncing from one upstream apart.
		d := backoff/2 + rand.N(backoff/2+1)
		log.Warn("sync: run failed, retrying", "run", run, "attempt", attempt, "in", d.Round(time.Millisecond), "err", err)
		select {
		case <-stop.Done():
			return err
		case <-time.After(d):
		}
		backoff = min(backoff*2, o.MaxBackoff)
	}
	return err
}

// runGraceful runs f with a context that outlives stop by grace.
func runGraceful(stop context.Context, grace time.Duration, f func(context.Context) error) error {
	ctx, cancel := context.WithCancel(context.WithoutCancel(stop))
	defer cancel()
	done := make(chan struct{})
	go func() {
		select {
		case <-stop.Done():
			select {
			case <-time.After(grace):
				cancel()
			case <-done:
			}
		case <-done:
		}
	}()
	defer close(done)
	return f(ctx)
}
