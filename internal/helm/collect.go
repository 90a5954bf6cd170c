// Package helm collects the `mirror.helm` part of an ImageSetConfiguration:
// charts from HTTP chart repositories (index.yaml) and local chart
// archives, the images their templates name once rendered with default
// values (and at the config's imagePaths), and the chart archives
// themselves, stored as OCI artifacts so `helm pull oci://MIRROR/...` works
// from the mirror.
//
// Rendering uses the Helm v4 SDK (helm.sh/helm/v4), so templates, helpers,
// subcharts and values coalescing behave exactly as `helm template`; no
// cluster is contacted (lookup returns nothing).
package helm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/airlock-mirror/airlock/internal/atomicfile"
	"github.com/airlock-mirror/airlock/internal/imageset"
	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
)

// ChartRepoPath is the repository namespace charts are pushed under at the
// destination: chart NAME version V is DEST/helm-charts/NAME:V, pulled with
// `helm pull oci://DEST/helm-charts/NAME --version V`.
const ChartRepoPath = "helm-charts"

// Options configure Collect.
type Options struct {
	// WorkDir receives the downloaded archives (WorkDir/charts/NAME-V.tgz)
	// and one OCI layout per chart (WorkDir/oci/NAME-V), the plan's source
	// for the chart artifact; oc-mirror keeps charts in working-dir/helm.
	WorkDir string
	// Client fetches chart repositories; nil means http.DefaultClient.
	Client *http.Client
}

// Chart is one collected chart.
type Chart struct {
	Name    string
	Version string
	// Repo is the repository name from the config ("" for a local chart);
	// Source the archive's URL or local path.
	Repo   string
	Source string
	// Archive is the archive's path under WorkDir and ArchiveDigest its
	// sha256 ("sha256:<hex>", what `helm pull` writes back byte for byte).
	Archive       string
	ArchiveDigest string
	// Layout is the OCI layout holding the chart artifact, pinned to Digest.
	Layout ref.Ref
	Digest string
	Images []FoundImage
}

// ID names the chart in plan origins and messages: "REPO/NAME:VERSION", or
// "NAME:VERSION" for a local chart.
func (c Chart) ID() string {
	if c.Repo != "" {
		return c.Repo + "/" + c.Name + ":" + c.Version
	}
	return c.Name + ":" + c.Version
}

// Collect fetches every chart cfg lists, renders it and writes its archive
// and OCI layout under opts.WorkDir. The first chart that cannot be read or
// rendered stops it, with an error naming the chart.
func Collect(ctx context.Context, cfg imageset.Helm, opts Options) ([]Chart, error) {
	if opts.WorkDir == "" {
		return nil, fmt.Errorf("helm: no work directory")
	}
	client := opts.Client
	if client == nil {
		client = http.DefaultClient
	}
	var out []Chart
	for _, r := range cfg.Repositories {
		if len(r.Charts) == 0 {
			return nil, fmt.Errorf("mirror.helm.repositories %q: lists no charts", r.Name)
		}
		idx, err := loadIndex(ctx, client, r.URL)
		if err != nil {
			return nil, fmt.Errorf("mirror.helm.repositories %q: %w", r.Name, err)
		}
		for _, c := range r.Charts {
			e, err := idx.pick(r.URL, c.Name, c.Version)
			if err != nil {
				return nil, fmt.Errorf("mirror.helm.repositories %q: %w", r.Name, err)
			}
			archive, u, err := download(ctx, client, r.URL, e)
			if err != nil {
				return nil, fmt.Errorf("mirror.helm.repositories %q: %w", r.Name, err)
			}
			ch, err := collectArchive(archive, r.Name, u, c.ImagePaths, c.Values, opts.WorkDir)
			if err != nil {
				return nil, fmt.Errorf("mirror.helm.repositories %q chart %s %s (%s): %w", r.Name, c.Name, e.Version, u, err)
			}
			if ch.Name != c.Name {
				return nil, fmt.Errorf("mirror.helm.repositories %q: %s holds chart %q, not %q", r.Name, u, ch.Name, c.Name)
			}
			out = append(out, ch)
		}
	}
	for _, c := range cfg.Local {
		if c.Path == "" {
			return nil, fmt.Errorf("mirror.helm.local %q: no path", c.Name)
		}
		archive, err := readLocal(c.Path)
		if err != nil {
			return nil, fmt.Errorf("mirror.helm.local %q: %w", c.Name, err)
		}
		ch, err := collectArchive(archive, "", c.Path, c.ImagePaths, c.Values, opts.WorkDir)
		if err != nil {
			return nil, fmt.Errorf("mirror.helm.local %q (%s): %w", c.Name, c.Path, err)
		}
		if c.Name != "" && ch.Name != c.Name {
			return nil, fmt.Errorf("mirror.helm.local %q: %s holds chart %q; fix name or path", c.Name, c.Path, ch.Name)
		}
		out = append(out, ch)
	}
	return out, nil
}

// readLocal reads a packaged chart. Chart directories are refused with the
// command that packages them: pushing an unpacked directory would need an
// archive airlock made up, whose digest nobody else could reproduce.
func readLocal(p string) ([]byte, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("%s is a directory; package it first (helm package %s) and give the .tgz", p, p)
	}
	if fi.Size() > maxChartBytes {
		return nil, fmt.Errorf("%s: %d bytes, larger than a chart archive can be (%d)", p, fi.Size(), maxChartBytes)
	}
	return os.ReadFile(p)
}

// collectArchive loads and renders one archive, then stores it under workDir.
func collectArchive(archive []byte, repo, source string, imagePaths []string, values map[string]any, workDir string) (Chart, error) {
	c, err := loadChart(archive)
	if err != nil {
		return Chart{}, fmt.Errorf("reading chart archive: %w", err)
	}
	imgs, err := renderImages(c, imagePaths, values)
	if err != nil {
		return Chart{}, err
	}
	base := c.Metadata.Name + "-" + c.Metadata.Version
	if repo != "" {
		base = repo + "-" + base
	}
	archivePath := filepath.Join(workDir, "charts", base+".tgz")
	if err := os.MkdirAll(filepath.Dir(archivePath), 0o755); err != nil {
		return Chart{}, err
	}
	if err := atomicfile.Write(archivePath, archive, 0o644); err != nil {
		return Chart{}, fmt.Errorf("saving chart archive: %w", err)
	}
	layoutDir := filepath.Join(workDir, "oci", base)
	d, err := writeLayout(layoutDir, c.Metadata, archive, source)
	if err != nil {
		return Chart{}, err
	}
	sum := sha256.Sum256(archive)
	return Chart{
		Name: c.Metadata.Name, Version: c.Metadata.Version, Repo: repo, Source: source,
		Archive: archivePath, ArchiveDigest: "sha256:" + hex.EncodeToString(sum[:]),
		Layout: ref.Ref{Transport: ref.OCI, Path: layoutDir, Tag: ociTag(c.Metadata.Version), Digest: d},
		Digest: d, Images: imgs,
	}, nil
}

// Namer gives the destination of a source image (oc-mirror v2 naming is the
// orchestrator's: the source path under the destination, digest-only
// images tagged sha256-<hex>).
type Namer func(src ref.Ref) (ref.Ref, error)

// Items turns collected charts into plan items: one per chart artifact
// (kind helm-chart, to dest/helm-charts/NAME:VERSION) and one per distinct
// image (kind image), each with Origin.Chart naming the chart(s) using it.
func Items(charts []Chart, dest ref.Ref, name Namer) ([]plan.Item, error) {
	var items []plan.Item
	imageAt := map[string]int{} // normalised source -> index in items
	chartAt := map[string]string{}
	for _, c := range charts {
		d := dest
		d.Path = strings.Trim(strings.TrimSuffix(dest.Path, "/")+"/"+ChartRepoPath+"/"+c.Name, "/")
		d.Tag, d.Digest = ociTag(c.Version), ""
		if prev, ok := chartAt[d.String()]; ok && prev != c.Digest {
			return nil, fmt.Errorf("charts %s collide at %s with different content; mirror one of them", c.ID(), d)
		} else if ok {
			continue
		}
		chartAt[d.String()] = c.Digest
		items = append(items, plan.Item{Source: c.Layout, Dests: []ref.Ref{d}, Kind: plan.KindHelmChart,
			Origin: plan.Origin{Chart: c.ID()}, Digest: c.Digest})
		for _, img := range c.Images {
			src, err := ref.Parse(img.Image)
			if err != nil {
				return nil, fmt.Errorf("chart %s: %s names image %q: %w", c.ID(), img.Where, img.Image, err)
			}
			if src.Transport != ref.Docker {
				return nil, fmt.Errorf("chart %s: %s names image %q, which is not a registry image", c.ID(), img.Where, img.Image)
			}
			if !src.HasTagOrDigest() {
				src.Tag = "latest" // what a kubelet pulls
			}
			key := src.String()
			if i, ok := imageAt[key]; ok {
				items[i].Origin.Chart = joinIDs(items[i].Origin.Chart, c.ID())
				continue
			}
			dst, err := name(src)
			if err != nil {
				return nil, fmt.Errorf("chart %s: image %s: %w", c.ID(), img.Image, err)
			}
			imageAt[key] = len(items)
			items = append(items, plan.Item{Source: src, Dests: []ref.Ref{dst}, Kind: plan.KindImage,
				Origin: plan.Origin{Chart: c.ID()}, Digest: src.Digest})
		}
	}
	return items, nil
}

// joinIDs adds id to a comma-separated, sorted list of chart IDs.
func joinIDs(list, id string) string {
	ids := strings.Split(list, ", ")
	for _, x := range ids {
		if x == id {
			return list
		}
	}
	ids = append(ids, id)
	sort.Strings(ids)
	return strings.Join(ids, ", ")
}
