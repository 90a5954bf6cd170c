package transfer

import (
	"encoding/json"
	"sort"

	"github.com/airlock-mirror/airlock/internal/store"
)

// manifestRefs is what of a manifest or index names other blobs.
type manifestRefs struct {
	Manifests []struct {
		Digest string `json:"digest"`
	} `json:"manifests"`
	Config *struct {
		Digest string `json:"digest"`
	} `json:"config"`
	Layers []struct {
		Digest string `json:"digest"`
	} `json:"layers"`
}

// storeImages lists every named entry of the store's index with the pool
// blobs it needs (manifests, configs, layers, index children), so a bad
// segment is turned into the images it affects.
func storeImages(st *store.Store) ([]Image, error) {
	im, err := st.Index()
	if err != nil {
		return nil, err
	}
	var out []Image
	for _, d := range im.Manifests {
		name := d.Annotations[store.AnnotationRefName]
		if name == "" {
			name = d.Digest.String()
		}
		seen := map[string]bool{}
		closure(st, d.Digest.String(), seen)
		img := Image{Name: name, Digest: d.Digest.String()}
		for b := range seen {
			img.Blobs = append(img.Blobs, b)
			if sz, ok := st.HasBlob(b); ok {
				img.Size += sz
			}
		}
		sort.Strings(img.Blobs)
		out = append(out, img)
	}
	return out, nil
}

// closure adds dgst and everything it references that the pool holds
// (foreign layers and blobs never stored are not the set's business).
func closure(st *store.Store, dgst string, seen map[string]bool) {
	if seen[dgst] {
		return
	}
	if _, ok := st.HasBlob(dgst); !ok {
		return
	}
	seen[dgst] = true
	b, err := st.ReadBlob(dgst)
	if err != nil || len(b) == 0 || b[0] != '{' {
		return
	}
	var m manifestRefs
	if json.Unmarshal(b, &m) != nil {
		return
	}
	for _, c := range m.Manifests {
		closure(st, c.Digest, seen)
	}
	if m.Config != nil {
		if _, ok := st.HasBlob(m.Config.Digest); ok {
			seen[m.Config.Digest] = true
		}
	}
	for _, l := range m.Layers {
		if _, ok := st.HasBlob(l.Digest); ok {
			seen[l.Digest] = true
		}
	}
}
