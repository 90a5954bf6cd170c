package helm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/blang/semver/v4"
	"sigs.k8s.io/yaml"
)

// maxIndexBytes and maxChartBytes bound what one HTTP response may hold: an
// index of a large public repository is tens of MiB, a chart archive a few
// MiB; anything far larger is a wrong URL, not a chart.
const (
	maxIndexBytes = 256 << 20
	maxChartBytes = 64 << 20
)

// indexFile is the part of a chart repository's index.yaml airlock reads.
type indexFile struct {
	APIVersion string                  `json:"apiVersion"`
	Entries    map[string][]indexEntry `json:"entries"`
}

type indexEntry struct {
	Name    string   `json:"name"`
	Version string   `json:"version"`
	URLs    []string `json:"urls"`
	// Digest is the hex sha256 of the chart archive (helm repo index writes it).
	Digest string `json:"digest"`
}

// fetch GETs u and returns at most limit bytes of a 200 response.
func fetch(ctx context.Context, client *http.Client, u string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("GET %s: response larger than %d bytes", u, limit)
	}
	return b, nil
}

// loadIndex fetches and parses REPO/index.yaml.
func loadIndex(ctx context.Context, client *http.Client, repoURL string) (*indexFile, error) {
	u, err := url.JoinPath(repoURL, "index.yaml")
	if err != nil {
		return nil, fmt.Errorf("chart repository URL %q: %w", repoURL, err)
	}
	b, err := fetch(ctx, client, u, maxIndexBytes)
	if err != nil {
		return nil, fmt.Errorf("reading chart repository index: %w", err)
	}
	var idx indexFile
	if err := yaml.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", u, err)
	}
	if len(idx.Entries) == 0 {
		return nil, fmt.Errorf("%s lists no charts; is %s a helm chart repository?", u, repoURL)
	}
	return &idx, nil
}

// pick returns the entry of chart name at version, or the highest semver
// version when version is empty (what `helm pull` without --version does).
func (idx *indexFile) pick(repoURL, name, version string) (indexEntry, error) {
	entries := idx.Entries[name]
	if len(entries) == 0 {
		return indexEntry{}, fmt.Errorf("chart %q is not in repository %s", name, repoURL)
	}
	if version != "" {
		for _, e := range entries {
			if e.Version == version || strings.TrimPrefix(e.Version, "v") == strings.TrimPrefix(version, "v") {
				return e, nil
			}
		}
		var have []string
		for _, e := range entries {
			have = append(have, e.Version)
		}
		return indexEntry{}, fmt.Errorf("chart %q version %s is not in repository %s (it has %s)", name, version, repoURL, strings.Join(have, ", "))
	}
	sorted := append([]indexEntry(nil), entries...)
	sort.SliceStable(sorted, func(i, j int) bool {
		a, errA := semver.ParseTolerant(sorted[i].Version)
		b, errB := semver.ParseTolerant(sorted[j].Version)
		if errA != nil || errB != nil {
			return errA == nil // parseable versions first
		}
		return a.GT(b)
	})
	for _, e := range sorted {
		// helm skips pre-releases unless asked for one.
		if v, err := semver.ParseTolerant(e.Version); err == nil && len(v.Pre) == 0 {
			return e, nil
		}
	}
	return sorted[0], nil
}

// download fetches the archive of e (URLs relative to the repository are
// resolved against it) and checks it against the index's digest.
func download(ctx context.Context, client *http.Client, repoURL string, e indexEntry) ([]byte, string, error) {
	if len(e.URLs) == 0 {
		return nil, "", fmt.Errorf("chart %s %s in %s has no download URL", e.Name, e.Version, repoURL)
	}
	base, err := url.Parse(strings.TrimSuffix(repoURL, "/") + "/")
	if err != nil {
		return nil, "", fmt.Errorf("chart repository URL %q: %w", repoURL, err)
	}
	rel, err := url.Parse(e.URLs[0])
	if err != nil {
		return nil, "", fmt.Errorf("chart %s %s: download URL %q: %w", e.Name, e.Version, e.URLs[0], err)
	}
	u := base.ResolveReference(rel).String()
	b, err := fetch(ctx, client, u, maxChartBytes)
	if err != nil {
		return nil, "", fmt.Errorf("downloading chart %s %s: %w", e.Name, e.Version, err)
	}
	if e.Digest != "" {
		sum := sha256.Sum256(b)
		if got := hex.EncodeToString(sum[:]); got != strings.TrimPrefix(e.Digest, "sha256:") {
			return nil, "", fmt.Errorf("chart %s %s from %s: sha256 %s, but the repository index says %s", e.Name, e.Version, u, got, e.Digest)
		}
	}
	return b, u, nil
}
