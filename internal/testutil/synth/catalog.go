package synth

import (
	"fmt"
	"net/http"
	"sort"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/operator-framework/operator-registry/alpha/declcfg"

	"github.com/airlock-mirror/airlock/internal/ref"
)

// PushCatalogImages pushes one synthetic image for every image the
// catalog's bundles name, to host under the same repository path, and
// rewrites the catalog to point at them (tag-only references stay tag-only).
// Every fourth image is a 3-platform index, so multi-arch digests are
// exercised. skip, when set, names upstream references not to push (to
// build a mirror that lacks them); they keep their upstream name. It
// returns upstream → pushed reference, and the references it could not
// parse (a real catalog may hold them; they are left as they are).
func PushCatalogImages(host string, cfg *declcfg.DeclarativeConfig, layerSize int, tr http.RoundTripper, skip map[string]bool) (map[string]string, []string, error) {
	var refs []string
	seen := map[string]bool{}
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			refs = append(refs, s)
		}
	}
	for _, b := range cfg.Bundles {
		add(b.Image)
		for _, ri := range b.RelatedImages {
			add(ri.Image)
		}
	}
	sort.Strings(refs)
	repl := map[string]string{}
	var bad []string
	for i, s := range refs {
		r, err := ref.Parse(s)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%q: %v", s, err))
			continue
		}
		var x Pushable
		if i%4 == 0 {
			x, err = Index(int64(i+1), []string{"linux/amd64", "linux/arm64", "linux/s390x"}, WithLayerSize(layerSize))
		} else {
			x, err = Image(int64(i+1), WithLayerSize(layerSize))
		}
		if err != nil {
			return nil, nil, err
		}
		target := host + "/" + r.Path
		if r.Tag != "" {
			target += ":" + r.Tag
		}
		var d string
		if skip[s] {
			// Not pushed, but named as if it had been: the catalog then
			// points into the mirror at an image that is not there.
			h, err := x.Digest()
			if err != nil {
				return nil, nil, err
			}
			d = h.String()
		} else if d, err = Push(x, target, remote.WithTransport(tr)); err != nil {
			return nil, nil, err
		}
		nr := host + "/" + r.Path + "@" + d
		if r.Tag != "" && r.Digest == "" {
			nr = host + "/" + r.Path + ":" + r.Tag
		}
		repl[s] = nr
	}
	for i := range cfg.Bundles {
		b := &cfg.Bundles[i]
		if n, ok := repl[b.Image]; ok {
			b.Image = n
		}
		for j := range b.RelatedImages {
			if n, ok := repl[b.RelatedImages[j].Image]; ok {
				b.RelatedImages[j].Image = n
			}
		}
	}
	return repl, bad, nil
}
