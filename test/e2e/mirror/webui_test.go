package mirror_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/airlock-mirror/airlock/internal/registry"
	"github.com/airlock-mirror/airlock/internal/regscan"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/webui"
)

// TestWebViewOfAMirrorRun: after a real `mirror -c` mirror-to-mirror run
// (two releases, a filtered catalog, additional images), the web view of
// the destination shows both releases complete, the rebuilt catalog with
// every bundle and related image present, and the run in its history.
func TestWebViewOfAMirrorRun(t *testing.T) {
	f := newFixture(t)
	work := t.TempDir()
	cfg := f.config(t, work, "ecr-secret-operator", "kairos-operator")
	var ui *webui.UI
	dst := regtest.Start(t, regtest.WithServerOptions(func(o *registry.Options) {
		o.UI = func(s *registry.Server) http.Handler {
			v, err := webui.New(webui.Options{Scanner: &regscan.Scanner{Transport: s.InProcessTransport()}, Refresh: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			ui = v
			return v
		}
	}))
	run(t, "mirror", "-c", cfg, "--workspace", "file://"+filepath.Join(work, "ws"), "docker://"+dst.Host+"/m", "--graph-url", f.graphURL)
	if err := ui.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	ui.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/ui/api/overview", nil))
	var ov struct {
		Errors   []string
		Catalogs []struct {
			Repository                                                   string
			Bundles, BundlesPresent, RelatedImages, RelatedImagesPresent int
		}
		Releases []struct {
			Version           string
			Components        []any
			ComponentsPresent int
		}
		History  []struct{ Command, Result string }
		LastSync string
	}
	if err := json.Unmarshal(w.Body.Bytes(), &ov); err != nil {
		t.Fatalf("%v\n%s", err, w.Body)
	}
	if len(ov.Errors) > 0 {
		t.Errorf("scan errors: %v", ov.Errors)
	}
	if len(ov.Releases) != 2 {
		t.Fatalf("releases %+v", ov.Releases)
	}
	for _, r := range ov.Releases {
		if len(r.Components) == 0 || r.ComponentsPresent != len(r.Components) {
			t.Errorf("release %s: %d of %d components present", r.Version, r.ComponentsPresent, len(r.Components))
		}
	}
	if len(ov.Catalogs) != 1 || ov.Catalogs[0].Bundles == 0 || ov.Catalogs[0].BundlesPresent != ov.Catalogs[0].Bundles ||
		ov.Catalogs[0].RelatedImagesPresent != ov.Catalogs[0].RelatedImages {
		t.Errorf("catalogs %+v: the rebuilt catalog's bundles and related images must all be present", ov.Catalogs)
	}
	if len(ov.History) != 1 || ov.History[0].Command != "mirror" || ov.History[0].Result != "ok" || ov.LastSync == "" {
		t.Errorf("history %+v, last sync %q", ov.History, ov.LastSync)
	}
}
