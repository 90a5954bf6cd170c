package synth

import (
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Pushable is an image or an index.
type Pushable interface {
	Digest() (v1.Hash, error)
}

// Push writes an image or index to a registry reference ("host/repo:tag" or
// "host/repo@sha256:..." or bare "host/repo", pushed by digest) over plain
// HTTP or HTTPS as the options say, and returns its digest.
func Push(x Pushable, reference string, opts ...remote.Option) (string, error) {
	r, err := name.ParseReference(reference, name.Insecure)
	if err != nil {
		if repo, rerr := name.NewRepository(reference, name.Insecure); rerr == nil {
			d, derr := x.Digest()
			if derr != nil {
				return "", derr
			}
			r = repo.Digest(d.String())
		} else {
			return "", fmt.Errorf("synth push %q: %w", reference, err)
		}
	}
	switch v := x.(type) {
	case v1.ImageIndex:
		err = remote.WriteIndex(r, v, opts...)
	case v1.Image:
		err = remote.Write(r, v, opts...)
	default:
		return "", fmt.Errorf("synth push %q: %T is neither image nor index", reference, x)
	}
	if err != nil {
		return "", fmt.Errorf("synth push %q: %w", reference, err)
	}
	d, err := x.Digest()
	return d.String(), err
}
