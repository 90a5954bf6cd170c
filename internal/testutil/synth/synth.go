// Package synth makes deterministic synthetic container images for tests
// and benchmarks: the same seed always gives the same bytes and digests, so
// tests can assert exact digests after a copy and benchmarks are repeatable.
//
// Layers are gzip'd tars holding one file of seeded pseudo-random bytes
// (incompressible, like real binaries). Images can share base layers, and
// indexes hold one image per platform, as multi-arch images do.
package synth

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"math/rand"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// LayerBytes returns the gzip'd tar of a deterministic layer whose single
// file holds size pseudo-random bytes drawn from seed.
func LayerBytes(seed int64, size int) []byte {
	data := make([]byte, size)
	rand.New(rand.NewSource(seed)).Read(data)
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	tw := tar.NewWriter(zw)
	hdr := &tar.Header{Name: fmt.Sprintf("synth/%d.bin", seed), Mode: 0o644, Size: int64(size), Format: tar.FormatPAX}
	// Writes to a bytes.Buffer cannot fail.
	_ = tw.WriteHeader(hdr)
	_, _ = tw.Write(data)
	_ = tw.Close()
	_ = zw.Close()
	return buf.Bytes()
}

// Layer returns a deterministic Docker-media-type layer (see LayerBytes).
func Layer(seed int64, size int) v1.Layer {
	return static.NewLayer(LayerBytes(seed, size), types.DockerLayer)
}

// OCILayer is Layer with the OCI layer media type.
func OCILayer(seed int64, size int) v1.Layer {
	return static.NewLayer(LayerBytes(seed, size), types.OCILayer)
}

type options struct {
	layers    int
	layerSize int
	base      []v1.Layer
	platform  string
	oci       bool
	labels    map[string]string
}

// Option tunes Image and Index.
type Option func(*options)

// WithLayers sets how many own (non-base) layers an image has (default 2).
func WithLayers(n int) Option { return func(o *options) { o.layers = n } }

// WithLayerSize sets the payload bytes of each own layer (default 4 KiB).
func WithLayerSize(n int) Option { return func(o *options) { o.layerSize = n } }

// WithBase puts these layers below the image's own layers, so images built
// with the same base share blobs, as images from one base image do.
func WithBase(layers ...v1.Layer) Option { return func(o *options) { o.base = layers } }

// WithPlatform sets the image's platform, "os/arch[/variant]" (default linux/amd64).
func WithPlatform(p string) Option { return func(o *options) { o.platform = p } }

// WithOCI uses OCI media types instead of Docker schema 2.
func WithOCI() Option { return func(o *options) { o.oci = true } }

// WithLabels sets config labels.
func WithLabels(l map[string]string) Option { return func(o *options) { o.labels = l } }

func build(opts []Option) options {
	o := options{layers: 2, layerSize: 4096, platform: "linux/amd64"}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// ParsePlatform parses "os/arch[/variant]".
func ParsePlatform(s string) (v1.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return v1.Platform{}, fmt.Errorf("platform %q: want os/arch[/variant]", s)
	}
	p := v1.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// Image returns a deterministic single-platform image. Its own layers are
// seeded from seed, so two images with different seeds share only base layers.
func Image(seed int64, opts ...Option) (v1.Image, error) {
	o := build(opts)
	plat, err := ParsePlatform(o.platform)
	if err != nil {
		return nil, err
	}
	img := empty.Image
	layerType := types.DockerLayer
	if o.oci {
		img = mutate.MediaType(img, types.OCIManifestSchema1)
		img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
		layerType = types.OCILayer
	}
	var adds []mutate.Addendum
	for _, l := range o.base {
		adds = append(adds, mutate.Addendum{Layer: l, MediaType: layerType})
	}
	for i := 0; i < o.layers; i++ {
		l := static.NewLayer(LayerBytes(seed*1000+int64(i), o.layerSize), layerType)
		adds = append(adds, mutate.Addendum{Layer: l, MediaType: layerType})
	}
	img, err = mutate.Append(img, adds...)
	if err != nil {
		return nil, fmt.Errorf("synth image %d: %w", seed, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = plat.OS, plat.Architecture, plat.Variant
	cf.Config.Labels = o.labels
	cf.Config.Env = []string{fmt.Sprintf("SYNTH_SEED=%d", seed)}
	return mutate.ConfigFile(img, cf)
}

// Index returns a deterministic multi-arch index with one image per
// platform; image i is Image(seed*100+i) with that platform.
func Index(seed int64, platforms []string, opts ...Option) (v1.ImageIndex, error) {
	o := build(opts)
	var idx v1.ImageIndex = empty.Index
	if o.oci {
		idx = mutate.IndexMediaType(idx, types.OCIImageIndex)
	} else {
		idx = mutate.IndexMediaType(idx, types.DockerManifestList)
	}
	for i, p := range platforms {
		plat, err := ParsePlatform(p)
		if err != nil {
			return nil, err
		}
		img, err := Image(seed*100+int64(i), append(append([]Option{}, opts...), WithPlatform(p))...)
		if err != nil {
			return nil, err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &plat},
		})
	}
	return plain(idx)
}

// NestedIndex returns an OCI index whose single child is Index(seed, platforms):
// the shape of some vendors' catalogs and attestation-wrapped images.
func NestedIndex(seed int64, platforms []string, opts ...Option) (v1.ImageIndex, error) {
	inner, err := Index(seed, platforms, append(append([]Option{}, opts...), WithOCI())...)
	if err != nil {
		return nil, err
	}
	outer := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	return plain(mutate.AppendManifests(outer, mutate.IndexAddendum{Add: inner}))
}
