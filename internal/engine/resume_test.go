package engine

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

// cancelAfter cancels a run once n blob uploads have completed.
type cancelAfter struct {
	*counter
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.counter.RoundTrip(req)
	c.mu.Lock()
	done := len(c.uploads)
	c.mu.Unlock()
	if done >= c.n {
		c.cancel()
	}
	return resp, err
}

// TestInterruptedRunResumesWithoutReuploading stops a run in the middle
// (as Ctrl-C does), then runs again with a new engine: the second run
// completes everything and uploads no blob the first one already stored.
func TestInterruptedRunResumesWithoutReuploading(t *testing.T) {
	src := regtest.Start(t)
	dst := regtest.Start(t)
	entries, err := synth.Workload(13, 12, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	digests, err := synth.PushWorkload(entries, src.Host)
	if err != nil {
		t.Fatal(err)
	}
	var p plan.Plan
	for _, en := range entries {
		s := fmt.Sprintf("%s/%s:%s", src.Host, en.Repo, en.Tag)
		p.Add(plan.Item{Source: mustRef(t, s), Dests: []ref.Ref{mustRef(t, fmt.Sprintf("%s/m/%s:%s", dst.Host, en.Repo, en.Tag))}})
	}

	ctx, cancel := context.WithCancel(context.Background())
	first := &cancelAfter{counter: newCounter(defaultTransport()), n: 8, cancel: cancel}
	rep, err := newTestEngine(t, first, func(o *Options) { o.Parallel = 2; o.ParallelBlobs = 2 }).Run(ctx, p)
	if err == nil {
		t.Fatal("the interrupted run reported success")
	}
	if rep.Stats.ImagesFailed == 0 {
		t.Fatalf("interruption did not stop anything: %+v", rep.Stats)
	}
	// (repository, blob) pairs the first run stored. A fresh engine knows
	// nothing of other repositories, so a blob stored in repository A and
	// also needed in B may be uploaded to B again; what must never happen
	// is a second upload of what a repository already holds.
	uploadedFirst := map[string]bool{}
	for d, repos := range first.uploads {
		for _, r := range repos {
			uploadedFirst[r+"@"+d] = true
		}
	}

	second := newCounter(defaultTransport())
	rep, err = newTestEngine(t, second, nil).Run(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	for d, repos := range second.uploads {
		for _, r := range repos {
			if uploadedFirst[r+"@"+d] {
				t.Errorf("blob %s uploaded to %s again by the re-run", d, r)
			}
		}
	}
	if len(second.uploads) == 0 {
		t.Error("the re-run uploaded nothing: the interruption came too late to prove anything")
	}
	for _, en := range entries {
		d := fmt.Sprintf("%s/m/%s:%s", dst.Host, en.Repo, en.Tag)
		if got := headDigest(t, d); got != digests[fmt.Sprintf("%s/%s:%s", src.Host, en.Repo, en.Tag)] {
			t.Errorf("%s = %s after the re-run", d, got)
		}
	}
	validateRemote(t, fmt.Sprintf("%s/m/%s:%s", dst.Host, entries[0].Repo, entries[0].Tag))
}
