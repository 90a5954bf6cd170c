package webui_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/airlock-mirror/airlock/internal/regscan"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
	"github.com/airlock-mirror/airlock/internal/webui"
)

// get fetches a /ui path with the registry's credentials (when it has any).
func get(t *testing.T, m *mirror, path string, withAuth bool) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, m.reg.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if withAuth && m.reg.Username != "" {
		req.SetBasicAuth(m.reg.Username, m.reg.Password)
	}
	resp, err := m.reg.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func getJSON(t *testing.T, m *mirror, path string, v any) {
	t.Helper()
	code, b := get(t, m, path, true)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v\n%s", path, err, b)
	}
}

func TestViewOfAMirror(t *testing.T) {
	m := newMirror(t)
	var ov struct {
		Images, Incomplete, Signed int
		Manifests, Blobs           int
		TotalBytes, UniqueBytes    int64
		Errors                     []string
		Catalogs                   []struct {
			Repository, Tag, Format                                      string
			Bundles, BundlesPresent, RelatedImages, RelatedImagesPresent int
		}
		Releases []struct {
			Repository, Version string
			Components          []any
			ComponentsPresent   int
			Signed              bool
		}
		AdditionalImages []struct{ Name string }
		LastSync         string
	}
	getJSON(t, m, "/ui/api/overview", &ov)
	if len(ov.Errors) > 0 {
		t.Errorf("scan errors: %v", ov.Errors)
	}
	bundles, related, missingN := m.bundleCounts()
	if len(ov.Catalogs) != 1 {
		t.Fatalf("catalogs: %+v", ov.Catalogs)
	}
	c := ov.Catalogs[0]
	if c.Repository+":"+c.Tag != catalogRef || c.Format != "fbc" || c.Bundles != bundles || c.BundlesPresent != bundles ||
		c.RelatedImages != related || c.RelatedImagesPresent != related-missingN || missingN == 0 {
		t.Errorf("catalog %+v, want %d bundles all present, %d related with %d missing", c, bundles, related, missingN)
	}
	if len(ov.Releases) != 1 || ov.Releases[0].Version != "4.12.0" || len(ov.Releases[0].Components) != m.components ||
		ov.Releases[0].ComponentsPresent != m.components || ov.Releases[0].Signed {
		t.Errorf("releases %+v", ov.Releases)
	}
	if ov.Incomplete != 1 || ov.Signed != 1 {
		t.Errorf("incomplete %d signed %d, want 1 and 1", ov.Incomplete, ov.Signed)
	}
	if ov.LastSync == "" {
		t.Error("last sync not taken from the run record")
	}
	if ov.UniqueBytes <= 0 || ov.UniqueBytes >= ov.TotalBytes {
		t.Errorf("sizes: total %d unique %d: shared layers must make unique smaller", ov.TotalBytes, ov.UniqueBytes)
	}

	// The package page names exactly the missing related image.
	var pkg struct {
		Package struct {
			Complete bool
			Bundles  []struct {
				Present       string
				RelatedImages []struct{ Image, Present string }
			}
			Channels []struct {
				Name, Head string
				Versions   []string
			}
		}
	}
	getJSON(t, m, "/ui/api/package?catalog="+url.QueryEscape(catalogRef)+"&name="+m.missingPackage, &pkg)
	var missing []string
	for _, b := range pkg.Package.Bundles {
		for _, ri := range b.RelatedImages {
			if ri.Present != "present" && (len(missing) == 0 || missing[len(missing)-1] != ri.Image) {
				missing = append(missing, ri.Image)
			}
		}
	}
	if pkg.Package.Complete || len(missing) != 1 || missing[0] != m.missingRelated {
		t.Errorf("package %s: complete=%v missing %v, want exactly %s", m.missingPackage, pkg.Package.Complete, missing, m.missingRelated)
	}
	if len(pkg.Package.Channels) == 0 || pkg.Package.Channels[0].Head == "" || len(pkg.Package.Channels[0].Versions) == 0 {
		t.Errorf("channels %+v", pkg.Package.Channels)
	}

	// Repositories: the signed image lists its signature and SBOM, the
	// partial list says which child is missing.
	var repo struct {
		Tags []struct {
			Name     string
			Manifest struct {
				Digest    string
				Complete  bool
				Signed    bool
				Missing   []string
				Referrers []struct{ Kind string }
			}
		}
	}
	getJSON(t, m, "/ui/api/repo?name="+signedRepo, &repo)
	if len(repo.Tags) != 1 || repo.Tags[0].Manifest.Digest != m.signedDigest || !repo.Tags[0].Manifest.Signed {
		t.Fatalf("signed repo: %+v (signature tags must not count as images)", repo.Tags)
	}
	kinds := map[string]bool{}
	for _, r := range repo.Tags[0].Manifest.Referrers {
		kinds[r.Kind] = true
	}
	if !kinds["signature"] || !kinds["sbom"] {
		t.Errorf("referrers %+v, want a signature and an sbom", repo.Tags[0].Manifest.Referrers)
	}
	getJSON(t, m, "/ui/api/repo?name="+partialRepo, &repo)
	if len(repo.Tags) != 1 || repo.Tags[0].Manifest.Complete || len(repo.Tags[0].Manifest.Missing) != 1 ||
		!strings.HasPrefix(repo.Tags[0].Manifest.Missing[0], "linux/arm64 ") {
		t.Errorf("partial list: %+v", repo.Tags)
	}

	// Search finds packages and release components.
	var hits struct{ Hits []struct{ Kind, Name string } }
	getJSON(t, m, "/ui/api/search?q=kepler", &hits)
	if len(hits.Hits) == 0 || hits.Hits[0].Kind == "" {
		t.Errorf("search kepler: %+v", hits)
	}
	found := false
	for _, h := range hits.Hits {
		found = found || (h.Kind == "package" && h.Name == "kepler-operator")
	}
	if !found {
		t.Errorf("search kepler lacks the package: %+v", hits.Hits)
	}

	// History: the record, with its secret masked.
	var hist []struct {
		Command string
		Args    []string
		Result  string
	}
	getJSON(t, m, "/ui/api/history", &hist)
	if len(hist) != 1 || hist[0].Command != "mirror" || hist[0].Result != "partial" {
		t.Fatalf("history %+v", hist)
	}
	if j := strings.Join(hist[0].Args, " "); strings.Contains(j, "s3cret") || !strings.Contains(j, "--password ***") {
		t.Errorf("args not masked: %s", j)
	}

	// Unknown things are 404 with a message, writes are refused.
	if code, b := get(t, m, "/ui/api/catalog?ref=nope:1", true); code != http.StatusNotFound || !strings.Contains(string(b), "no catalog nope:1") {
		t.Errorf("unknown catalog: %d %s", code, b)
	}
}

func TestViewRequiresTheRegistryUsers(t *testing.T) {
	m := newMirror(t, regtestTLSAuth()...)
	for _, p := range []string{"/ui/", "/ui/api/overview", "/ui/static/style.css"} {
		if code, _ := get(t, m, p, false); code != http.StatusUnauthorized {
			t.Errorf("anonymous GET %s: %d, want 401", p, code)
		}
		if code, b := get(t, m, p, true); code != http.StatusOK {
			t.Errorf("GET %s as %s: %d %s", p, m.reg.Username, code, b)
		}
	}
	code, b := get(t, m, "/ui/", true)
	if code != http.StatusOK || !strings.Contains(string(b), "community-operator-index") {
		t.Errorf("overview page: %d\n%s", code, b)
	}
}

func TestRescanOnlyAfterWrites(t *testing.T) {
	m := newMirror(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var requests atomic.Int64
	counted := countingTransport{next: m.reg.Server.InProcessTransport(), n: &requests}
	ui, err := webui.New(webui.Options{Scanner: &regscan.Scanner{Transport: counted}, Refresh: 10 * time.Millisecond, Generation: m.reg.Server.Writes})
	if err != nil {
		t.Fatal(err)
	}
	go ui.Run(ctx)
	// Once the first scan is done the registry is idle: no request at all.
	waitFor(t, func() bool {
		w := httptest.NewRecorder()
		ui.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/ui/api/overview", nil))
		return w.Code == http.StatusOK
	})
	idle := requests.Load()
	time.Sleep(200 * time.Millisecond)
	if got := requests.Load(); got != idle {
		t.Fatalf("an idle registry was rescanned: %d requests after the first scan", got-idle)
	}
	// A push makes the next tick rescan.
	img, _ := synth.Image(123, synth.WithLayerSize(64))
	if _, err := synth.Push(img, m.reg.Ref("app/new:1"), remote.WithTransport(m.reg.Transport)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return requests.Load() > idle })
}

type countingTransport struct {
	next http.RoundTripper
	n    *atomic.Int64
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
