package orchestrate

import (
	"context"
	"strings"
	"testing"

	"github.com/airlock-mirror/airlock/internal/imageset"
	"github.com/airlock-mirror/airlock/internal/ref"
)

// TestPlatformsNotAppliedAreSaid: additionalImages[].platforms and helm
// charts' platforms are accepted but not applied yet; the run says so for
// each, naming the field, instead of ignoring them.
func TestPlatformsNotAppliedAreSaid(t *testing.T) {
	cfg := &imageset.ImageSetConfiguration{Mirror: imageset.Mirror{
		AdditionalImages: []imageset.AdditionalImage{{Name: "quay.io/a/b:1"}, {Name: "quay.io/a/c:1", Platforms: []imageset.OSPlatform{{OS: "linux", Architecture: "arm64"}}}},
		Helm:             imageset.Helm{Local: []imageset.HelmChart{{Name: "x", Path: "/nonexistent.tgz", Platforms: []imageset.OSPlatform{{OS: "linux", Architecture: "amd64"}}}}},
	}}
	var warns []string
	in := &Input{Config: cfg, ConfigFile: "isc.yaml", Root: ref.MustParse("docker://mirror.local/m"), Warn: func(s string) { warns = append(warns, s) }}
	col, err := additionalCollector{}.Collect(context.Background(), in)
	if err != nil || len(col.Items) != 2 {
		t.Fatalf("collect: %v, %v", col, err)
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "mirror.additionalImages[1].platforms is not applied yet") {
		t.Errorf("warnings %q", warns)
	}
	warns = nil
	_, _ = helmCollector{}.Collect(context.Background(), in) // the archive does not exist; the warning comes first
	if len(warns) != 1 || !strings.Contains(warns[0], "mirror.helm.local[0].platforms is not applied yet") {
		t.Errorf("helm warnings %q", warns)
	}
}
