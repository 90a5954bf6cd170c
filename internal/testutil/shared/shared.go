// Package shared locates the project's shared test data (../shared/testdata
// next to the module root: real catalogs, release payload files, graphs and
// auth files, see its SOURCES.md) for tests in any package, so each test names
// the file it reads instead of re-deriving the path from its own location.
package shared

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Root is the absolute path of ../shared/testdata relative to the module root.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	// file is <module>/internal/testutil/shared/shared.go.
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "shared", "testdata")
}

// Path returns Root joined with elem and fails the test, naming the path,
// when it does not exist: a missing checkout of the shared data is a setup
// error, never a reason to skip.
func Path(t testing.TB, elem ...string) string {
	t.Helper()
	p := filepath.Join(append([]string{Root()}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("shared test data missing (expected next to the module as ../shared/testdata): %v", err)
	}
	return p
}

// OCTestCatalog is oc's test catalog (etcd, prometheus) as one FBC file.
func OCTestCatalog(t testing.TB) string {
	t.Helper()
	return Path(t, "catalogs", "oc-test-declcfg-and-sqlite", "index.yaml")
}
