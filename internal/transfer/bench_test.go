package transfer

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkCreateVerify packs a 128 MiB store (32 layers of 4 MiB) into
// 64 MiB segments and verifies them, next to `tar cf` of the same blobs
// plus `sha256sum` of the tar, the baseline the format must keep up with
// (goal: ours takes at most 1/0.8 of the baseline's time). It reports
// both times and ours/baseline as "ratio".
func BenchmarkCreateVerify(b *testing.B) {
	if _, err := exec.LookPath("tar"); err != nil {
		b.Skip("tar not installed")
	}
	src, st := newStore(b)
	for i := 0; i < 8; i++ {
		addImage(b, st, "bench/img:"+string(rune('a'+i)), 4<<20, 4<<20, 4<<20, 4<<20)
	}
	var ours, base time.Duration
	b.SetBytes(32 << 20 * 4)
	for b.Loop() {
		out := b.TempDir()
		t0 := time.Now()
		if _, err := Create(CreateOptions{Store: src, Out: out, SegmentSize: 64 << 20, Full: true}); err != nil {
			b.Fatal(err)
		}
		r, err := Verify([]string{out})
		if err != nil || !r.OK() {
			b.Fatalf("verify: %v %v", err, r)
		}
		ours += time.Since(t0)

		tarFile := filepath.Join(b.TempDir(), "plain.tar")
		t0 = time.Now()
		if o, err := exec.Command("tar", "cf", tarFile, "-C", src, "blobs", "index.json", "oci-layout").CombinedOutput(); err != nil {
			b.Fatalf("tar: %v %s", err, o)
		}
		// tar does not fsync; neither would a fair baseline without sync
		if o, err := exec.Command("sync", tarFile).CombinedOutput(); err != nil {
			b.Fatalf("sync: %v %s", err, o)
		}
		if o, err := exec.Command("sha256sum", tarFile).CombinedOutput(); err != nil {
			b.Fatalf("sha256sum: %v %s", err, o)
		}
		base += time.Since(t0)
		os.Remove(tarFile)
	}
	n := float64(b.N)
	b.ReportMetric(ours.Seconds()/n, "s-airlock/op")
	b.ReportMetric(base.Seconds()/n, "s-tar+sha256sum/op")
	b.ReportMetric(ours.Seconds()/base.Seconds(), "ratio")
}
