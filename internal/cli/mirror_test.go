package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestMirrorFlagsReachTheEngine: --parallel-images, --parallel-layers and
// --retry-times, named as oc-mirror names them, are the engine's image
// parallelism, per-image blob parallelism and retries (and --dry-run its
// dry run); the defaults are oc-mirror's (4, 5, 5).
func TestMirrorFlagsReachTheEngine(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "isc.yaml")
	if err := os.WriteFile(cfg, []byte("apiVersion: mirror.openshift.io/v2alpha1\nkind: ImageSetConfiguration\nmirror: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args                   []string
		images, blobs, retries int
		dryRun                 bool
	}{
		{nil, 4, 5, 5, false},
		{[]string{"--parallel-images", "3", "--parallel-layers", "7", "--retry-times", "0", "--dry-run"}, 3, 7, 0, true},
	} {
		var out, errOut bytes.Buffer
		mo := newMirrorOptions(IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
		cmd := &cobra.Command{Use: "mirror"}
		mo.AddFlags(cmd)
		if err := cmd.ParseFlags(append([]string{"-c", cfg}, tc.args...)); err != nil {
			t.Fatal(err)
		}
		if err := mo.Complete([]string{"file://" + filepath.Join(dir, "store")}); err != nil {
			t.Fatal(err)
		}
		opts, err := mo.engineOptions()
		if err != nil {
			t.Fatal(err)
		}
		if opts.Parallel != tc.images || opts.ParallelBlobs != tc.blobs || opts.RetryTimes != tc.retries || opts.DryRun != tc.dryRun {
			t.Errorf("%v: engine parallel %d, blobs %d, retries %d, dry run %v; want %d, %d, %d, %v",
				tc.args, opts.Parallel, opts.ParallelBlobs, opts.RetryTimes, opts.DryRun, tc.images, tc.blobs, tc.retries, tc.dryRun)
		}
	}
}
