package orchestrate

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/airlock-mirror/airlock/internal/testutil/shared"
)

func TestSplitVersionRange(t *testing.T) {
	for in, want := range map[string][2]string{
		"1.2.0-1.4.0":       {"1.2.0", "1.4.0"},
		"1.2.0-":            {"1.2.0", ""},
		"-1.4.0":            {"", "1.4.0"},
		"1.0.0-rc.1-2.0.0":  {"1.0.0-rc.1", "2.0.0"},
		"1.0.0-rc.1-2.0.0-": {"1.0.0-rc.1-2.0.0", ""}, // the only valid split
		"x-y":               {"", ""},                 // invalid
		"1.0.0":             {"1.0.0", "1.0.0"},
	} {
		a, b, err := splitVersionRange(in)
		if want == [2]string{"", ""} {
			if err == nil {
				t.Errorf("%q accepted as %q-%q", in, a, b)
			}
			continue
		}
		if err != nil || a != want[0] || b != want[1] {
			t.Errorf("%q = %q, %q, %v; want %v", in, a, b, err, want)
		}
	}
}

func TestLocalCatalogName(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "community-operators-v4.18")
	os.Mkdir(dir, 0o755)
	if got := LocalCatalogName(dir); got != "community-operators-v4.18" {
		t.Errorf("directory name %q", got)
	}
	if got := LocalCatalogName(shared.OCTestCatalog(t)); got != "index" {
		t.Errorf("file name %q", got)
	}
}
