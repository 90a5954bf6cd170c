package synth

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Entry is one image of a workload: Image or Index is set.
type Entry struct {
	Repo  string // repository path, e.g. "ns1/app3"
	Tag   string
	Image v1.Image
	Index v1.ImageIndex
}

// Pushable returns the entry's image or index.
func (e Entry) Pushable() Pushable {
	if e.Index != nil {
		return e.Index
	}
	return e.Image
}

// Digest returns the entry's manifest digest.
func (e Entry) Digest() (string, error) {
	d, err := e.Pushable().Digest()
	return d.String(), err
}

var allPlatforms = []string{"linux/amd64", "linux/arm64", "linux/ppc64le", "linux/s390x"}

// Workload returns n deterministic images spread over repositories in two
// namespaces, shaped like an operator catalog's images: every third entry
// is a multi-arch index of 2-4 platforms, images share one of three base
// layer families, and every fourth repository uses OCI media types.
func Workload(seed int64, n int, layerSize int) ([]Entry, error) {
	if layerSize <= 0 {
		layerSize = 4096
	}
	bases := make([][]v1.Layer, 3)
	ociBases := make([][]v1.Layer, 3)
	for f := range bases {
		bases[f] = []v1.Layer{Layer(seed*7919+int64(f), layerSize*2)}
		ociBases[f] = []v1.Layer{OCILayer(seed*7919+int64(f), layerSize*2)}
	}
	repos := n/2 + 1
	out := make([]Entry, 0, n)
	for i := 0; i < n; i++ {
		r := i % repos
		e := Entry{
			Repo: fmt.Sprintf("ns%d/app%d", r%2, r),
			Tag:  fmt.Sprintf("v%d", i),
		}
		opts := []Option{WithLayers(2), WithLayerSize(layerSize), WithBase(bases[i%3]...)}
		if r%4 == 3 {
			opts = []Option{WithLayers(2), WithLayerSize(layerSize), WithBase(ociBases[i%3]...), WithOCI()}
		}
		s := seed*100000 + int64(i)
		var err error
		if i%3 == 0 {
			e.Index, err = Index(s, allPlatforms[:2+i%3], opts...)
		} else {
			e.Image, err = Image(s, opts...)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// PushWorkload pushes every entry to host (e.g. "127.0.0.1:5000") under
// its repository and tag and returns "host/repo:tag" → digest.
func PushWorkload(entries []Entry, host string, opts ...remote.Option) (map[string]string, error) {
	out := make(map[string]string, len(entries))
	for _, e := range entries {
		ref := fmt.Sprintf("%s/%s:%s", host, e.Repo, e.Tag)
		d, err := Push(e.Pushable(), ref, opts...)
		if err != nil {
			return nil, err
		}
		out[ref] = d
	}
	return out, nil
}
