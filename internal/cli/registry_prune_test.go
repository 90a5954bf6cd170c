package cli

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func stable413Graph(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "testdata", "release", "cincinnati", "graph-amd64-stable-4.13.json")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("shared test data missing: %v", err)
	}
	return p
}

// Each mistake is refused before anything is read, naming the flag or
// file and what to do.
func TestRegistryPruneUpgradePathFlagErrors(t *testing.T) {
	root := t.TempDir()
	bad := filepath.Join(root, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"nodes":[{"version":"4.13.0","payload":"x"}],"edges":[[0,3]]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	g := stable413Graph(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--keep-upgrade-path", "4.13.0", "--graph", g, "--channel", "stable-4.13"}, "--channel stable-4.13 applies to the graph built from the mirror; a --graph file is already"},
		{[]string{"--keep-last", "2", "--channel", "stable-4.13"}, "--channel applies to --keep-upgrade-path"},
		{[]string{"--keep-upgrade-path", "4.13.0", "--graph", filepath.Join(root, "nope.json")}, "--graph: open " + filepath.Join(root, "nope.json")},
		{[]string{"--keep-upgrade-path", "4.13.0", "--graph", bad}, bad + ": edge 0 (0->3) points outside the 1 nodes"},
		{[]string{"--keep-upgrade-path", "four", "--graph", g}, `--keep-upgrade-path "four": not a version`},
		{[]string{"--keep-last", "2", "--all-paths"}, "--all-paths applies to --keep-upgrade-path"},
		{[]string{"--registry", "127.0.0.1:1", "--keep-last", "1", "--keep-pulled-within", "1h"}, "--keep-pulled-within reads the pull log of the embedded registry"},
		{[]string{"--registry", "127.0.0.1:1", "--keep-last", "1", "--storage-config", "x.yaml"}, "give one"},
		{[]string{"--registry", "127.0.0.1:1", "--keep-last", "1", "--root", root}, "give one"},
	} {
		args := []string{"registry", "prune", "--dry-run"}
		if !strings.Contains(strings.Join(tc.args, " "), "--registry") {
			args = append(args, "--root", root)
		}
		_, _, err := runCatalogCLI(t, append(args, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.args, err, tc.want)
		}
	}
}
