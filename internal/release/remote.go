package release

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/airlock-mirror/airlock/internal/ref"
)

// RemoteSource reads docker:// references with go-containerregistry.
type RemoteSource struct {
	Options []remote.Option
	// Insecure allows plain HTTP registries.
	Insecure bool
}

func (s RemoteSource) ref(r ref.Ref) (name.Reference, error) {
	if r.Transport != ref.Docker && r.Transport != "" {
		return nil, fmt.Errorf("%s: only registry (docker://) references can be read here", r)
	}
	var opts []name.Option
	if s.Insecure {
		opts = append(opts, name.Insecure)
	}
	n := r.Name()
	if r.Tag != "" && r.Digest != "" {
		n = r.Repository() + "@" + r.Digest // the digest is what counts
	}
	return name.ParseReference(n, opts...)
}

func (s RemoteSource) opts(ctx context.Context) []remote.Option {
	return append(append([]remote.Option{}, s.Options...), remote.WithContext(ctx))
}

// Resolve implements Source.
func (s RemoteSource) Resolve(ctx context.Context, r ref.Ref) (v1.Descriptor, error) {
	nr, err := s.ref(r)
	if err != nil {
		return v1.Descriptor{}, err
	}
	d, err := remote.Head(nr, s.opts(ctx)...)
	if err != nil {
		// Some registries refuse HEAD on manifests; GET is authoritative.
		gd, gerr := remote.Get(nr, s.opts(ctx)...)
		if gerr != nil {
			return v1.Descriptor{}, gerr
		}
		return gd.Descriptor, nil
	}
	return *d, nil
}

// Image implements Source.
func (s RemoteSource) Image(ctx context.Context, r ref.Ref) (v1.Image, error) {
	nr, err := s.ref(r)
	if err != nil {
		return nil, err
	}
	return remote.Image(nr, s.opts(ctx)...)
}

// Index implements Source.
func (s RemoteSource) Index(ctx context.Context, r ref.Ref) (v1.ImageIndex, error) {
	nr, err := s.ref(r)
	if err != nil {
		return nil, err
	}
	return remote.Index(nr, s.opts(ctx)...)
}
