package synth

import (
	"bytes"
	"encoding/json"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// plainIndex serves an index whose descriptors carry no artifactType.
// go-containerregistry's mutate fills artifactType into every entry of an
// OCI index; real catalogs and releases do not have it, and skopeo 1.9.3
// drops it when it rewrites an index (changing the digest), so synthetic
// indexes are written the way real ones are.
type plainIndex struct {
	inner v1.ImageIndex
	raw   []byte
	im    *v1.IndexManifest
}

func plain(idx v1.ImageIndex) (v1.ImageIndex, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	im = im.DeepCopy()
	for i := range im.Manifests {
		im.Manifests[i].ArtifactType = ""
	}
	raw, err := json.Marshal(im)
	if err != nil {
		return nil, fmt.Errorf("synth index: %w", err)
	}
	return &plainIndex{inner: idx, raw: raw, im: im}, nil
}

func (p *plainIndex) MediaType() (types.MediaType, error) { return p.inner.MediaType() }
func (p *plainIndex) Size() (int64, error)                { return int64(len(p.raw)), nil }
func (p *plainIndex) RawManifest() ([]byte, error)        { return p.raw, nil }
func (p *plainIndex) IndexManifest() (*v1.IndexManifest, error) {
	return p.im.DeepCopy(), nil
}
func (p *plainIndex) Digest() (v1.Hash, error) {
	h, _, err := v1.SHA256(bytes.NewReader(p.raw))
	return h, err
}
func (p *plainIndex) Image(h v1.Hash) (v1.Image, error)           { return p.inner.Image(h) }
func (p *plainIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) { return p.inner.ImageIndex(h) }
