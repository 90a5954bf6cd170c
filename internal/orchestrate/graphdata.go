package orchestrate

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/release/graph"
)

// The graph-data image, as oc-mirror v2 builds it for mirror.platform.graph:
// the Cincinnati graph data (channels, blocked edges) unpacked under
// /var/lib/cincinnati-graph-data on a UBI base whose command copies it into
// the volume the OpenShift Update Service reads.
const (
	GraphImageRepo   = "openshift/graph-image"
	GraphImageTag    = "latest"
	DefaultGraphBase = "registry.access.redhat.com/ubi9/ubi:latest"
	graphDataDir     = "var/lib/cincinnati-graph-data"
	// maxGraphData bounds the unpacked graph data (it is a few MiB).
	maxGraphData = 512 << 20
)

// GraphData configures the graph-data image of mirror.platform.graph.
type GraphData struct {
	// URL of the graph-data tarball (tar.gz); "" derives it from the
	// update graph endpoint (…/graph → …/graph-data).
	URL string
	// Base is the image the graph data goes on (DefaultGraphBase).
	Base string
	// HTTP fetches the tarball (nil: a client with a 2-minute timeout).
	HTTP *http.Client
}

// GraphDataURL is the graph-data tarball URL beside an update graph
// endpoint: https://api.openshift.com/api/upgrades_info/v1/graph →
// https://api.openshift.com/api/upgrades_info/graph-data.
func GraphDataURL(graphURL string) string {
	if graphURL == "" {
		graphURL = (&graph.Client{}).Endpoint()
	}
	u := strings.TrimSuffix(graphURL, "/")
	u = strings.TrimSuffix(u, "/graph")
	u = strings.TrimSuffix(u, "/v1")
	return u + "/graph-data"
}

type graphCollector struct{}

func (graphCollector) Section() string { return "platform.graph" }

func (graphCollector) Collect(ctx context.Context, in *Input) (*Collection, error) {
	if !in.Config.Mirror.Platform.Graph {
		return nil, nil
	}
	if in.WorkDir == "" {
		return nil, errors.New("the graph-data image is built in a working directory (file://DIR or --workspace file://DIR)")
	}
	gd := in.GraphData
	if gd.URL == "" {
		gd.URL = GraphDataURL("")
	}
	if gd.Base == "" {
		gd.Base = DefaultGraphBase
	}
	layer, err := fetchGraphLayer(ctx, gd)
	if err != nil {
		return nil, err
	}
	baseRef, err := ref.Parse(gd.Base)
	if err != nil {
		return nil, fmt.Errorf("graph base image %q: %w", gd.Base, err)
	}
	base, err := in.Images.Image(ctx, baseRef)
	if err != nil {
		return nil, fmt.Errorf("graph base image %s (mirror it or name another with --graph-base-image): %w", gd.Base, err)
	}
	img, err := graphImage(base, layer)
	if err != nil {
		return nil, err
	}
	layout := ref.Ref{Transport: ref.OCI, Path: filepath.Join(in.WorkDir, "graph-image"), Tag: GraphImageTag}
	if err := in.Images.WriteImage(ctx, layout, img); err != nil {
		return nil, fmt.Errorf("building the graph-data image: %w", err)
	}
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	dest := in.Root.Repo()
	dest.Path = path.Join(dest.Path, GraphImageRepo)
	dest.Tag = GraphImageTag
	return &Collection{Items: []plan.Item{{Source: layout, Dests: []ref.Ref{dest}, Kind: plan.KindGraph, Digest: d.String(),
		Origin: plan.Origin{File: in.ConfigFile + ": mirror.platform.graph"}}}}, nil
}

func graphImage(base v1.Image, layer v1.Layer) (v1.Image, error) {
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return nil, fmt.Errorf("building the graph-data image: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Config.Cmd = []string{"/bin/bash", "-c", "exec cp -rp /" + graphDataDir + "/* /var/lib/cincinnati/graph-data"}
	cf.Config.Entrypoint = nil
	// A fixed creation time keeps the digest a function of the data.
	cf.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
	return mutate.ConfigFile(img, cf)
}

// fetchGraphLayer downloads the graph-data tarball and repacks it under
// var/lib/cincinnati-graph-data/. Only directories and regular files with
// relative paths inside it are taken: the tarball comes from the network.
func fetchGraphLayer(ctx context.Context, gd GraphData) (v1.Layer, error) {
	c := gd.HTTP
	if c == nil {
		c = &http.Client{Timeout: 2 * time.Minute}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, gd.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("graph data %s: %w", gd.URL, err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("graph data (--graph-data-url): %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("graph data %s: %s", gd.URL, resp.Status)
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("graph data %s: not gzip: %w", gd.URL, err)
	}
	tr := tar.NewReader(zr)
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	var total int64
	files := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("graph data %s: %w", gd.URL, err)
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if name == "." {
			continue
		}
		if path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return nil, fmt.Errorf("graph data %s: entry %q leaves the archive", gd.URL, h.Name)
		}
		hdr := &tar.Header{Name: graphDataDir + "/" + name, Mode: h.Mode & 0o755, ModTime: time.Unix(0, 0).UTC(), Format: tar.FormatPAX}
		switch h.Typeflag {
		case tar.TypeDir:
			hdr.Typeflag, hdr.Name = tar.TypeDir, hdr.Name+"/"
			if err := tw.WriteHeader(hdr); err != nil {
				return nil, err
			}
		case tar.TypeReg:
			if total += h.Size; total > maxGraphData {
				return nil, fmt.Errorf("graph data %s: more than %d MiB unpacked", gd.URL, maxGraphData>>20)
			}
			hdr.Typeflag, hdr.Size = tar.TypeReg, h.Size
			if err := tw.WriteHeader(hdr); err != nil {
				return nil, err
			}
			if _, err := io.CopyN(tw, tr, h.Size); err != nil {
				return nil, fmt.Errorf("graph data %s: %s: %w", gd.URL, h.Name, err)
			}
			files++
		default:
			// Links and devices have no place in graph data.
			return nil, fmt.Errorf("graph data %s: entry %q is not a file or directory", gd.URL, h.Name)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if files == 0 {
		return nil, fmt.Errorf("graph data %s: the archive holds no file", gd.URL)
	}
	data := out.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
}
