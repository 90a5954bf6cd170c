package catalog

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// testdata returns the shared real catalogs directory.
func testdata(t testing.TB, elem ...string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "testdata", "catalogs")
	p := filepath.Join(append([]string{root}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("shared test data missing: %v", err)
	}
	return p
}

func TestLoadCommunityCounts(t *testing.T) {
	c, err := LoadDir(context.Background(), testdata(t, "community-operators-prod-v4.18"))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(c.Config.Packages); got != 35 {
		t.Errorf("packages = %d, want 35", got)
	}
	if got := len(c.Config.Channels); got != 78 {
		t.Errorf("channels = %d, want 78", got)
	}
	if got := len(c.Config.Bundles); got != 727 {
		t.Errorf("bundles = %d, want 727", got)
	}
	imgs, ws := RelatedImages(c)
	if len(imgs) != 2184 {
		t.Errorf("images = %d, want 2184", len(imgs))
	}
	t.Logf("warnings: %v", ws)
}
