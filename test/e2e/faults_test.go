package e2e

import (
	"strings"
	"testing"

	"github.com/airlock-mirror/airlock/internal/testutil/clitest"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
)

// TestMirrorThroughFaults mirrors a multi-arch workload while the proxies in
// front of both registries cut blob downloads mid-body, answer 500/503 and
// 429 with Retry-After. The mirror must succeed, every fault must really
// have been injected, and every image must be at the destination with the
// source digest and intact content.
func TestMirrorThroughFaults(t *testing.T) {
	src := regtest.Start(t)
	dst := regtest.Start(t)
	entries := workload(t, src.Host, 31, 9, 128*1024)

	srcProxy, err := NewProxy(src.Host,
		&Rule{Name: "reset-mid-blob", Match: IsBlobGet, Every: 2, Times: 4, Action: ResetMidBody},
		&Rule{Name: "blob-500", Match: IsBlobGet, Every: 3, Times: 2, Action: Status, Code: 500},
		&Rule{Name: "manifest-503", Match: IsManifest, Every: 4, Times: 2, Action: Status, Code: 503},
		&Rule{Name: "src-429", Match: IsBlobGet, Every: 5, Times: 2, Action: TooManyRequests, RetryAfter: 1},
	)
	if err != nil {
		t.Fatal(err)
	}
	defer srcProxy.Close()
	dstProxy, err := NewProxy(dst.Host,
		&Rule{Name: "upload-503", Match: IsUploadData, Every: 3, Times: 2, Action: Status, Code: 503},
		&Rule{Name: "manifest-put-500", Match: IsManifestPut, Every: 2, Times: 1, Action: Status, Code: 500},
		&Rule{Name: "dst-429", Match: IsManifestHead, Every: 4, Times: 1, Action: TooManyRequests, RetryAfter: 1},
	)
	if err != nil {
		t.Fatal(err)
	}
	defer dstProxy.Close()

	mapping := writeMapping(t, entries, srcProxy.Host, dstProxy.Host+"/mirror")
	out, errOut, err := clitest.Run(t, "image", "mirror", "-f", mapping, "--report", t.TempDir()+"/errors.txt")
	if err != nil {
		t.Fatalf("mirror through faults failed: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	for name, c := range map[string]Counts{"source": srcProxy.Counts(), "destination": dstProxy.Counts()} {
		for rule, n := range c.Faults {
			if n == 0 {
				t.Errorf("%s proxy: fault %s was never injected; the test proves nothing about it", name, rule)
			}
		}
	}
	t.Logf("faults injected: source %v, destination %v", srcProxy.Counts().Faults, dstProxy.Counts().Faults)
	checkMirrored(t, entries, dst.Host, "mirror")

	// airlock verify agrees, through the (now quiet) proxies.
	vout, verrOut, err := clitest.Run(t, "verify", "-f", mapping)
	if err != nil || !strings.Contains(vout, "0 failed") {
		t.Fatalf("verify after a fault-ridden mirror: %v\n%s%s", err, vout, verrOut)
	}
}
