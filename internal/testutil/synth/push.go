package synth

import (
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/airlock-mirror/airlock/internal/ref"
)

// Pushable is an image or an index.
type Pushable interface {
	Digest() (v1.Hash, error)
}

// Push writes an image or index to a registry reference ("host/repo:tag" or
// "host/repo@sha256:..." or bare "host/repo", pushed by digest) over plain
// HTTP or HTTPS as the options say, and returns its digest.
func Push(x Pushable, reference string, opts ...remote.Option) (string, error) {
	parsed, err := ref.Parse(reference)
	if err != nil {
		return "", fmt.Errorf("synth push: %w", err)
	}
	if !parsed.HasTagOrDigest() {
		// go-containerregistry would read a bare repository as :latest.
		d, err := x.Digest()
		if err != nil {
			return "", err
		}
		parsed = parsed.ByDigest(d.String())
	}
	r, err := name.ParseReference(parsed.Name(), name.Insecure)
	if err != nil {
		return "", fmt.Errorf("synth push %q: %w", reference, err)
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
