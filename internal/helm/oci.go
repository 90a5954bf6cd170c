package helm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"

	"github.com/airlock-mirror/airlock/internal/store"
)

// The media types of a chart stored in a registry (Helm's OCI support,
// `helm push` / `helm pull oci://`).
const (
	ConfigMediaType = "application/vnd.cncf.helm.config.v1+json"
	LayerMediaType  = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
)

// ociTag is the tag helm gives a chart version in a registry: OCI tags
// cannot hold '+', so helm writes '_' (and reads it back as '+').
func ociTag(version string) string { return strings.ReplaceAll(version, "+", "_") }

// chartManifest builds the OCI manifest of a chart the way `helm push`
// does: config = the Chart.yaml metadata as JSON, one layer = the archive,
// annotations title/version/description. No creation time, so the same
// archive always gives the same digest and a second mirror run is a no-op.
func chartManifest(meta *chartv2.Metadata, archive []byte) (manifest, config []byte, err error) {
	config, err = json.Marshal(meta)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding chart metadata: %w", err)
	}
	ann := map[string]string{
		"org.opencontainers.image.title":   meta.Name,
		"org.opencontainers.image.version": meta.Version,
	}
	if meta.Description != "" {
		ann["org.opencontainers.image.description"] = meta.Description
	}
	if meta.Home != "" {
		ann["org.opencontainers.image.url"] = meta.Home
	}
	if len(meta.Sources) > 0 {
		ann["org.opencontainers.image.source"] = meta.Sources[0]
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        descriptorOf(ConfigMediaType, config),
		Layers:        []v1.Descriptor{descriptorOf(LayerMediaType, archive)},
		Annotations:   ann,
	}
	manifest, err = json.Marshal(m)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding chart manifest: %w", err)
	}
	return manifest, config, nil
}

func descriptorOf(mt types.MediaType, b []byte) v1.Descriptor {
	h, n, _ := v1.SHA256(bytes.NewReader(b))
	return v1.Descriptor{MediaType: mt, Size: n, Digest: h}
}

// writeLayout stores the chart as an OCI artifact in the plain OCI layout
// at dir, named by its tag, and returns the manifest digest. Blobs and
// index.json are written crash-safely by internal/store.
func writeLayout(dir string, meta *chartv2.Metadata, archive []byte, source string) (string, error) {
	manifest, config, err := chartManifest(meta, archive)
	if err != nil {
		return "", err
	}
	s, err := store.Open(dir)
	if err != nil {
		return "", err
	}
	for _, b := range [][]byte{config, archive} {
		if _, err := s.PutBytes(b); err != nil {
			return "", fmt.Errorf("storing chart %s %s in %s: %w", meta.Name, meta.Version, dir, err)
		}
	}
	d, err := s.PutBytes(manifest)
	if err != nil {
		return "", fmt.Errorf("storing chart %s %s in %s: %w", meta.Name, meta.Version, dir, err)
	}
	desc := descriptorOf(types.OCIManifestSchema1, manifest)
	if err := s.Record(ociTag(meta.Version), desc, map[string]string{store.AnnotationSource: source}); err != nil {
		return "", err
	}
	return d, nil
}
