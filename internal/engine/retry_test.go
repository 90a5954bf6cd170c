package engine

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/registry"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

// TestTransientErrorsAreRetriedAndRetryAfterHonoured makes the destination
// answer 503 to the first blob uploads and 429 with Retry-After: 1 to the
// first manifest PUT: the copy completes, and waits the second it was asked.
func TestTransientErrorsAreRetriedAndRetryAfterHonoured(t *testing.T) {
	var posts, puts atomic.Int32
	var throttledAt, retriedAt atomic.Int64
	wrap := func(_ *registry.Server, h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/blobs/uploads/"):
				if posts.Add(1) <= 2 {
					http.Error(w, "try again", http.StatusServiceUnavailable)
					return
				}
			case r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/"):
				switch puts.Add(1) {
				case 1:
					throttledAt.Store(time.Now().UnixNano())
					w.Header().Set("Retry-After", "1")
					http.Error(w, "slow down", http.StatusTooManyRequests)
					return
				case 2:
					retriedAt.Store(time.Now().UnixNano())
				}
			}
			h.ServeHTTP(w, r)
		})
	}
	src := regtest.Start(t)
	dst := regtest.Start(t, regtest.WithWrap(wrap))
	img, _ := synth.Image(101)
	d := push(t, img, src.Host+"/a/b:v1")
	saved := retryBase
	retryBase = time.Millisecond
	defer func() { retryBase = saved }()
	e := newTestEngine(t, nil, nil)
	if _, err := e.Run(context.Background(), plan.Plan{Items: []plan.Item{
		{Source: mustRef(t, src.Host+"/a/b:v1"), Dests: []ref.Ref{mustRef(t, dst.Host+"/a/b:v1")}}}}); err != nil {
		t.Fatal(err)
	}
	if got := headDigest(t, dst.Host+"/a/b:v1"); got != d {
		t.Errorf("digest %s, want %s", got, d)
	}
	if posts.Load() < 3 || puts.Load() < 2 {
		t.Errorf("posts=%d puts=%d: the failures were not retried", posts.Load(), puts.Load())
	}
	if wait := time.Duration(retriedAt.Load() - throttledAt.Load()); wait < time.Second {
		t.Errorf("retried the 429 after %v, want >= 1s (Retry-After)", wait)
	}
}

// TestRetriesGiveUp: a permanently failing destination fails the item after
// RetryTimes, with the registry's message.
func TestRetriesGiveUp(t *testing.T) {
	var posts atomic.Int32
	wrap := func(_ *registry.Server, h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost {
				posts.Add(1)
				http.Error(w, "storage on fire", http.StatusInternalServerError)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	src := regtest.Start(t)
	dst := regtest.Start(t, regtest.WithWrap(wrap))
	img, _ := synth.Image(102, synth.WithLayers(1))
	push(t, img, src.Host+"/a/b:v1")
	saved := retryBase
	retryBase = time.Millisecond
	defer func() { retryBase = saved }()
	e := newTestEngine(t, nil, func(o *Options) { o.RetryTimes = 2; o.ParallelBlobs = 1 })
	_, err := e.Run(context.Background(), plan.Plan{Items: []plan.Item{
		{Source: mustRef(t, src.Host+"/a/b:v1"), Dests: []ref.Ref{mustRef(t, dst.Host+"/a/b:v1")}}}})
	if err == nil || !strings.Contains(err.Error(), "storage on fire") {
		t.Fatalf("err = %v, want the registry's message", err)
	}
	// Each blob: 3 tries (send's, or transferBlob's for a small blob's
	// single-request upload), never multiplied. (The second blob may or
	// may not start, or be cut short, before the first failure cancels
	// the image.)
	if n := posts.Load(); n < 3 || n > 6 {
		t.Errorf("%d POSTs for 2 blobs with RetryTimes=2", n)
	}
}

// TestRateLimitPacesRequests: with RateLimit r (burst r), n requests to
// one host take at least (n-r)/r seconds.
func TestRateLimitPacesRequests(t *testing.T) {
	src := regtest.Start(t)
	dst := regtest.Start(t)
	img, _ := synth.Image(141, synth.WithLayers(3))
	push(t, img, src.Host+"/a/b:v1")
	cnt := newCounter(defaultTransport())
	const rate = 4
	// Signatures off: their source GETs would count as "GET other" here.
	e := newTestEngine(t, cnt, func(o *Options) { o.RateLimit = rate; o.Signatures = SignaturesRemove })
	start := time.Now()
	if _, err := e.Run(context.Background(), plan.Plan{Items: []plan.Item{
		{Source: mustRef(t, src.Host+"/a/b:v1"), Dests: []ref.Ref{mustRef(t, dst.Host+"/a/b:v1")}}}}); err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	// Requests to the destination: HEAD/POST/PUT per blob, manifest HEAD/PUT.
	n := 0
	for k, c := range cnt.counts {
		if k != "GET blob" && k != "GET manifest" {
			n += c
		}
	}
	if min := time.Duration(float64(n-rate) / rate * float64(time.Second)); n <= rate || el < min {
		t.Errorf("%d destination requests in %v; at %d/s they need at least %v", n, el, rate, min)
	}
}

func TestFailFastStopsTheRun(t *testing.T) {
	src := regtest.Start(t)
	dst := regtest.Start(t)
	img, _ := synth.Image(151)
	push(t, img, src.Host+"/ok/app:v1")
	p := plan.Plan{Items: []plan.Item{
		{Source: mustRef(t, src.Host+"/missing/app:v1"), Dests: []ref.Ref{mustRef(t, dst.Host+"/m/missing:v1")}},
		{Source: mustRef(t, src.Host+"/ok/app:v1"), Dests: []ref.Ref{mustRef(t, dst.Host+"/m/ok:v1")}},
	}}
	e := newTestEngine(t, nil, func(o *Options) { o.FailFast = true; o.Parallel = 1 })
	rep, err := e.Run(context.Background(), p)
	if err == nil {
		t.Fatal("no error")
	}
	if rep.Items[1].Status != StatusFailed || !errors.Is(rep.Items[1].Err, context.Canceled) {
		t.Errorf("second image after a fail-fast failure: %s (%v), want failed: canceled", rep.Items[1].Status, rep.Items[1].Err)
	}
	if manifestExists(t, dst.Host+"/m/ok:v1") {
		t.Error("second image copied despite FailFast")
	}
}
