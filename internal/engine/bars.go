package engine

import (
	"context"
	"io"
	"os"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// isTerminal reports whether w is a terminal (bars) rather than a file or
// pipe (periodic log lines, which survive in CI logs).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// startBars draws two bars on a terminal: images done/total, and bytes
// transferred against the bytes of the images that need copying (known
// as each image is resolved), with throughput and ETA. It polls the
// engine's counters, so the copy path pays nothing for it.
func (e *Engine) startBars(ctx context.Context, total int) func() {
	p := mpb.NewWithContext(ctx, mpb.WithOutput(e.opts.Progress), mpb.WithWidth(40),
		mpb.WithRefreshRate(200*time.Millisecond))
	images := p.AddBar(int64(total),
		mpb.PrependDecorators(decor.Name("images ", decor.WC{W: 7}), decor.CountersNoUnit("%d / %d", decor.WCSyncWidth)),
		mpb.AppendDecorators(decor.Percentage(decor.WCSyncSpace)))
	bytes := p.AddBar(0,
		mpb.PrependDecorators(decor.Name("bytes ", decor.WC{W: 7}), decor.Counters(decor.SizeB1000(0), "% .1f / % .1f", decor.WCSyncWidth)),
		mpb.AppendDecorators(decor.AverageSpeed(decor.SizeB1000(0), "% .1f", decor.WCSyncSpace),
			decor.Name(" ETA "), decor.AverageETA(decor.ET_STYLE_GO)))
	read0 := e.stats.inflight.Load()
	done0 := e.stats.itemsDone.Load()
	planned0 := e.stats.plannedBytes.Load()
	stop := make(chan struct{})
	finished := make(chan struct{})
	update := func() {
		read := e.stats.inflight.Load() - read0
		planned := e.stats.plannedBytes.Load() - planned0
		if planned < read {
			planned = read // dedup and resumes make the estimate loose
		}
		bytes.SetTotal(planned, false)
		bytes.SetCurrent(read)
		images.SetCurrent(e.stats.itemsDone.Load() - done0)
	}
	go func() {
		defer close(finished)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				update()
			case <-stop:
				update()
				bytes.SetTotal(-1, true)
				images.SetTotal(-1, true)
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() {
		close(stop)
		<-finished
		p.Wait()
	}
}
