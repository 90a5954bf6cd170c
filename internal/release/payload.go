// Package release reads OpenShift release payload images and plans their
// mirroring the way `oc adm release mirror` names things.
//
// A release payload is an ordinary image whose layers carry a
// release-manifests/ directory. Two files in it matter for mirroring:
// image-references (an ImageStream listing every component image, each
// pinned by digest) and release-metadata (cincinnati-metadata-v0: version
// and the versions it upgrades from).
package release

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/airlock-mirror/airlock/internal/ref"
)

// Paths of the two payload files inside the release image.
const (
	ImageReferencesPath = "release-manifests/image-references"
	MetadataPath        = "release-manifests/release-metadata"
)

// ImageStream is the subset of image.openshift.io/v1 ImageStream that
// image-references uses.
type ImageStream struct {
	Kind       string `json:"kind"`
	APIVersion string `json:"apiVersion"`
	Metadata   struct {
		Name        string            `json:"name"`
		Annotations map[string]string `json:"annotations,omitempty"`
	} `json:"metadata"`
	Spec struct {
		Tags []ImageStreamTag `json:"tags"`
	} `json:"spec"`
}

// ImageStreamTag is one component of the payload.
type ImageStreamTag struct {
	Name        string            `json:"name"`
	Annotations map[string]string `json:"annotations,omitempty"`
	From        struct {
		Kind string `json:"kind"`
		Name string `json:"name"`
	} `json:"from"`
}

// Metadata is release-metadata (kind cincinnati-metadata-v0).
type Metadata struct {
	Kind     string            `json:"kind"`
	Version  string            `json:"version"`
	Previous []string          `json:"previous,omitempty"`
	Next     []string          `json:"next,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Component is one image of the payload: the image-references tag name and
// the image it points to, always pinned by digest.
type Component struct {
	Name  string  `json:"name"`
	Image ref.Ref `json:"-"`
	// Ref is Image printed, kept for JSON/YAML output.
	Ref string `json:"image"`
}

// Payload is what airlock needs to know about a release image.
type Payload struct {
	Version      string      `json:"version"`
	Architecture string      `json:"architecture"` // GOARCH name: amd64, arm64, ..., or "multi"
	Previous     []string    `json:"previous,omitempty"`
	Components   []Component `json:"components"`
	Metadata     Metadata    `json:"-"`
}

// ParseImageReferences parses image-references. source names the file in
// error messages. Every tag must point at a DockerImage by digest: a payload
// with a tag-only component cannot be mirrored reproducibly, so it is an
// error naming the tag rather than something to resolve silently.
func ParseImageReferences(data []byte, source string) (*ImageStream, []Component, error) {
	var is ImageStream
	if err := json.Unmarshal(data, &is); err != nil {
		return nil, nil, fmt.Errorf("%s: not a valid ImageStream JSON: %w", source, err)
	}
	if is.Kind != "ImageStream" {
		return nil, nil, fmt.Errorf("%s: kind is %q, want ImageStream", source, is.Kind)
	}
	if len(is.Spec.Tags) == 0 {
		return nil, nil, fmt.Errorf("%s: the ImageStream lists no component tags", source)
	}
	seen := make(map[string]bool, len(is.Spec.Tags))
	comps := make([]Component, 0, len(is.Spec.Tags))
	for i, t := range is.Spec.Tags {
		if t.Name == "" {
			return nil, nil, fmt.Errorf("%s: tag %d has no name", source, i+1)
		}
		if seen[t.Name] {
			return nil, nil, fmt.Errorf("%s: tag %q is listed twice", source, t.Name)
		}
		seen[t.Name] = true
		if t.From.Kind != "DockerImage" {
			return nil, nil, fmt.Errorf("%s: tag %q: from.kind is %q, want DockerImage", source, t.Name, t.From.Kind)
		}
		r, err := ref.Parse(t.From.Name)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: tag %q: %w", source, t.Name, err)
		}
		if r.Transport != ref.Docker {
			return nil, nil, fmt.Errorf("%s: tag %q: image %q is not a registry reference", source, t.Name, t.From.Name)
		}
		if r.Digest == "" {
			return nil, nil, fmt.Errorf("%s: tag %q: image %q is not pinned by digest; a release payload must reference every component by digest (rebuild the payload, or use a published release image)", source, t.Name, t.From.Name)
		}
		comps = append(comps, Component{Name: t.Name, Image: r, Ref: r.String()})
	}
	return &is, comps, nil
}

// ParseMetadata parses release-metadata.
func ParseMetadata(data []byte, source string) (Metadata, error) {
	var m Metadata
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("%s: not valid JSON: %w", source, err)
	}
	if m.Kind != "cincinnati-metadata-v0" {
		return m, fmt.Errorf("%s: kind is %q, want cincinnati-metadata-v0", source, m.Kind)
	}
	if m.Version == "" {
		return m, fmt.Errorf("%s: no version", source)
	}
	return m, nil
}

// ErrNotRelease says the image carries no release-manifests/image-references.
var ErrNotRelease = errors.New("not an OpenShift release image: no " + ImageReferencesPath + " in any layer")

// ReadFiles returns the contents of image-references and release-metadata
// from img. It streams each layer's tar from the topmost layer down and
// stops as soon as both files are found: the payload layer is small but a
// release image also has large base layers that need not be read. Walking
// from the top honours layer overriding; whiteouts of the files (or an
// opaque release-manifests/ directory) hide what lower layers hold.
func ReadFiles(img v1.Image) (imageRefs, metadata []byte, err error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, nil, fmt.Errorf("listing layers: %w", err)
	}
	want := map[string]*[]byte{ImageReferencesPath: &imageRefs, MetadataPath: &metadata}
	hidden := map[string]bool{}
	for i := len(layers) - 1; i >= 0 && len(want) > 0; i-- {
		// A layer is re-read when the connection drops mid-way; files
		// already found stay found, so a retry only looks for the rest.
		l := layers[i]
		if err := retry(context.Background(), fmt.Sprintf("reading layer %d", i+1), func() error { return scanLayer(l, want, hidden) }); err != nil {
			d, _ := layers[i].Digest()
			return nil, nil, fmt.Errorf("reading layer %d (%s): %w", i+1, d, err)
		}
	}
	if imageRefs == nil {
		return nil, nil, ErrNotRelease
	}
	return imageRefs, metadata, nil
}

func scanLayer(l v1.Layer, want map[string]*[]byte, hidden map[string]bool) error {
	rc, err := l.Uncompressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	// Some v1.Layer implementations (static layers, some store readers)
	// hand back the compressed bytes from Uncompressed; sniff for gzip so
	// the reader works on any of them.
	br := bufio.NewReader(rc)
	var r io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return err
		}
		defer zr.Close()
		r = zr
	}
	tr := tar.NewReader(r)
	opaque := false
	for len(want) > 0 {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "/"))
		dir, base := path.Split(name)
		dir = strings.TrimSuffix(dir, "/")
		if base == ".wh..wh..opq" && dir == "release-manifests" {
			opaque = true
			continue
		}
		if strings.HasPrefix(base, ".wh.") {
			hidden[path.Join(dir, strings.TrimPrefix(base, ".wh."))] = true
			continue
		}
		dst, ok := want[name]
		if !ok || hidden[name] || h.Typeflag != tar.TypeReg {
			continue
		}
		// The files are small (image-references is ~120 KiB for 180
		// components); the cap guards against a hostile layer.
		data, err := io.ReadAll(io.LimitReader(tr, 64<<20))
		if err != nil {
			return fmt.Errorf("reading %s: %w", name, err)
		}
		*dst = data
		delete(want, name)
	}
	if opaque {
		// Lower layers cannot contribute release-manifests/ files.
		for k := range want {
			hidden[k] = true
		}
		clear(want)
	}
	return nil
}

// Read reads the payload description from a single-platform release image.
// name is the image reference, used in error messages.
func Read(img v1.Image, name string) (*Payload, error) {
	// The config is read once, first, and not retried here: go-containerregistry
	// keeps a half-read config on a remote image after a dropped
	// connection, so only a fresh image (Open's retry) can recover.
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("%s: reading image config: %w", name, err)
	}
	refsData, metaData, err := ReadFiles(img)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	_, comps, err := ParseImageReferences(refsData, name+": "+ImageReferencesPath)
	if err != nil {
		return nil, err
	}
	p := &Payload{Components: comps}
	if metaData == nil {
		return nil, fmt.Errorf("%s: no %s in the image; cannot tell the release version", name, MetadataPath)
	}
	m, err := ParseMetadata(metaData, name+": "+MetadataPath)
	if err != nil {
		return nil, err
	}
	p.Metadata = m
	p.Version = m.Version
	p.Previous = m.Previous
	p.Architecture = cf.Architecture
	// Multi-arch payloads say so in their metadata; the image itself is
	// then one child of a manifest list.
	if a := m.Metadata["release.openshift.io/architecture"]; a != "" {
		p.Architecture = a
	}
	return p, nil
}

// ArchExt is the suffix oc appends to the version in mirrored tags:
// -x86_64 for amd64, -aarch64 for arm64, -multi for a kept manifest list,
// -<arch> otherwise.
func ArchExt(arch string, keepManifestList bool) string {
	if keepManifestList || arch == "multi" {
		return "-multi"
	}
	switch arch {
	case "amd64":
		return "-x86_64"
	case "arm64":
		return "-aarch64"
	case "":
		return ""
	}
	return "-" + arch
}
