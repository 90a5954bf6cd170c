package engine

import (
	"context"
	"fmt"
	"testing"

	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

// BenchmarkCopyLargeBlob copies one image with a 64 MiB layer between two
// in-process registries. B/op shows memory does not scale with the blob:
// the blob streams from the source GET into the destination PUT (the
// figure includes both in-process registries' own allocations).
func BenchmarkCopyLargeBlob(b *testing.B) {
	const size = 64 << 20
	src := regtest.Start(b)
	dst := regtest.Start(b)
	img, err := synth.Image(91, synth.WithLayers(1), synth.WithLayerSize(size))
	if err != nil {
		b.Fatal(err)
	}
	push(b, img, src.Host+"/big/app:v1")
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		// A fresh engine and repository each time, so the blob is uploaded.
		e := newTestEngine(b, nil, nil)
		rep, err := e.Run(context.Background(), plan.Plan{Items: []plan.Item{{
			Source: mustRef(b, src.Host+"/big/app:v1"),
			Dests:  []ref.Ref{mustRef(b, fmt.Sprintf("%s/big/copy%d:v1", dst.Host, i))}}}})
		if err != nil {
			b.Fatal(err)
		}
		if rep.Stats.Bytes < size {
			b.Fatalf("copied %d bytes, want >= %d", rep.Stats.Bytes, size)
		}
	}
}
