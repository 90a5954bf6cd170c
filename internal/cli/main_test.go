package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestMain gives the package its own blob-location cache (the default of
// --blob-cache) in a temporary directory, removed afterwards: tests never
// touch the user's cache. (clitest.Main does the same for the other
// packages; importing it here would be a cycle.)
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "airlock-test-cache-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "cli:", err)
		os.Exit(1)
	}
	os.Setenv(BlobCacheEnv, filepath.Join(dir, "blob-locations.json"))
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
