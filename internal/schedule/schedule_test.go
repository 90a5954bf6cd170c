package schedule

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestCronNext(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse("2006-01-02 15:04", s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct{ expr, from, want string }{
		{"*/15 * * * *", "2026-12-06 03:07", "2026-12-06 03:15"},
		{"0 */6 * * *", "2026-12-06 03:07", "2026-12-06 06:00"},
		{"30 2 * * 0", "2026-12-06 03:07", "2026-12-13 02:30"}, // 2026-12-06 is a Sunday, 02:30 passed
		{"0 0 1 1 *", "2026-12-06 03:07", "2027-01-01 00:00"},
		{"0 12 15 * 1-5", "2026-12-06 03:07", "2026-12-07 12:00"}, // dom OR dow
		{"5,10 1-2 * * 7", "2026-12-06 01:07", "2026-12-06 01:10"},
	} {
		c, err := ParseCron(tc.expr)
		if err != nil {
			t.Fatalf("%s: %v", tc.expr, err)
		}
		if got := c.Next(at(tc.from)); !got.Equal(at(tc.want)) {
			t.Errorf("%s from %s: %s, want %s", tc.expr, tc.from, got.Format("2006-01-02 15:04 Mon"), tc.want)
		}
	}
	for expr, msg := range map[string]string{
		"* * * *":     "want 5 fields",
		"60 * * * *":  "minute field \"60\"",
		"*/0 * * * *": "bad step",
		"* 5-2 * * *": "hour field",
		"x * * * *":   "bad value \"x\"",
		"* * 0 * *":   "day of month field",
	} {
		if _, err := ParseCron(expr); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: %v, want %q", expr, err, msg)
		}
	}
}

func TestLoopRetriesAndGoesOn(t *testing.T) {
	var calls atomic.Int32
	// Run 1 fails twice then works; run 2 fails every attempt (upstream
	// down); run 3 works: the loop never stops on a failure.
	job := func(ctx context.Context, run, attempt int) error {
		calls.Add(1)
		switch {
		case run == 1 && attempt < 3, run == 2:
			return errors.New("upstream unreachable")
		}
		return nil
	}
	sum, err := Loop(context.Background(), Options{Every: time.Millisecond, MaxRuns: 3, Attempts: 3, Backoff: time.Millisecond}, job)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Runs != 3 || sum.Failed != 1 || sum.Attempts != 3+3+1 || int(calls.Load()) != 7 {
		t.Errorf("summary %+v, calls %d", sum, calls.Load())
	}
	if _, err := Loop(context.Background(), Options{Once: true, Attempts: 1}, func(context.Context, int, int) error { return errors.New("boom") }); err == nil {
		t.Error("--once returns the failure")
	}
	if _, err := Loop(context.Background(), Options{Once: true, Every: time.Second}, job); err == nil {
		t.Error("two schedules accepted")
	}
}

func TestStopLetsTheRunFinish(t *testing.T) {
	stop, cancel := context.WithCancel(context.Background())
	var finished, cancelled atomic.Bool
	job := func(ctx context.Context, run, attempt int) error {
		cancel() // SIGTERM arrives during the run
		select {
		case <-ctx.Done():
			cancelled.Store(true)
		case <-time.After(50 * time.Millisecond):
			finished.Store(true)
		}
		return nil
	}
	sum, err := Loop(stop, Options{Every: time.Hour, Grace: 10 * time.Second}, job)
	if err != nil || sum.Runs != 1 || !finished.Load() || cancelled.Load() {
		t.Errorf("sum %+v err %v finished %v cancelled %v", sum, err, finished.Load(), cancelled.Load())
	}
	// Past the grace period the run's context is cancelled.
	stop, cancel = context.WithCancel(context.Background())
	cancelled.Store(false)
	job = func(ctx context.Context, run, attempt int) error {
		cancel()
		select {
		case <-ctx.Done():
			cancelled.Store(true)
		case <-time.After(10 * time.Second):
		}
		return ctx.Err()
	}
	if _, err := Loop(stop, Options{Every: time.Hour, Grace: 10 * time.Millisecond}, job); err != nil || !cancelled.Load() {
		t.Errorf("grace: err %v cancelled %v", err, cancelled.Load())
	}
}
