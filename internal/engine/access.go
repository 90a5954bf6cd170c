package engine

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/airlock-mirror/airlock/internal/ref"
)

// Read and write access for callers that build or inspect images (catalog
// rebuilds, release payload reading): the same transports and credentials
// as Run, through go-containerregistry's v1.Image / v1.ImageIndex types.

// Resolve returns the descriptor (digest, media type, size) of the image r
// names, on any transport. For registries it is a HEAD request (a GET only
// when the registry does not return the digest). A missing image wraps
// ErrNotFound.
func (e *Engine) Resolve(ctx context.Context, r ref.Ref) (Descriptor, error) {
	if !r.HasTagOrDigest() {
		r = r.WithTag("latest")
	}
	ep, err := e.endpointFor(ctx, r)
	if err != nil {
		return Descriptor{}, err
	}
	reference := r.Digest
	if reference == "" {
		reference = r.Tag
	}
	info, found, err := ep.headManifest(ctx, reference)
	if err != nil {
		return Descriptor{}, fmt.Errorf("resolving %s: %w", r, err)
	}
	if !found {
		return Descriptor{}, fmt.Errorf("resolving %s: manifest unknown: %w", r, ErrNotFound)
	}
	if info.Digest == "" || info.MediaType == "" || info.Size <= 0 {
		data, mt, err := ep.getManifest(ctx, reference)
		if err != nil {
			return Descriptor{}, fmt.Errorf("resolving %s: %w", r, err)
		}
		if s := sniffMediaType(data); s != "" {
			mt = s
		}
		info = manifestInfo{Digest: digestOf(data), MediaType: mt, Size: int64(len(data))}
	}
	if r.Digest != "" && info.Digest != r.Digest {
		return Descriptor{}, fmt.Errorf("resolving %s: registry answered digest %s", r, info.Digest)
	}
	return Descriptor{Digest: hashOf(info.Digest), MediaType: types.MediaType(info.MediaType), Size: info.Size}, nil
}

// Image opens the single-platform image r names, on any transport. Blobs
// are read lazily. For a manifest list, use Index.
func (e *Engine) Image(ctx context.Context, r ref.Ref) (v1.Image, error) {
	switch r.Transport {
	case ref.File, ref.OCI:
		idx, h, err := e.layoutEntry(ctx, r)
		if err != nil {
			return nil, err
		}
		img, err := idx.Image(h)
		if err != nil {
			return nil, fmt.Errorf("opening image %s: %w", r, err)
		}
		return img, nil
	}
	nr, opts, err := e.remote(ctx, r)
	if err != nil {
		return nil, err
	}
	img, err := remote.Image(nr, opts...)
	if err != nil {
		return nil, fmt.Errorf("opening image %s: %w", r, wrapRemote(err))
	}
	return img, nil
}

// Index opens the manifest list / OCI index r names, on any transport.
func (e *Engine) Index(ctx context.Context, r ref.Ref) (v1.ImageIndex, error) {
	switch r.Transport {
	case ref.File, ref.OCI:
		idx, h, err := e.layoutEntry(ctx, r)
		if err != nil {
			return nil, err
		}
		ii, err := idx.ImageIndex(h)
		if err != nil {
			return nil, fmt.Errorf("opening index %s: %w", r, err)
		}
		return ii, nil
	}
	nr, opts, err := e.remote(ctx, r)
	if err != nil {
		return nil, err
	}
	ii, err := remote.Index(nr, opts...)
	if err != nil {
		return nil, fmt.Errorf("opening index %s: %w", r, wrapRemote(err))
	}
	return ii, nil
}

// WriteImage writes img to r (any transport): blobs, then the manifest,
// then the tag (or, without a tag, by digest only).
func (e *Engine) WriteImage(ctx context.Context, r ref.Ref, img v1.Image) error {
	err := e.write(ctx, r,
		func(se *storeEndpoint) (Descriptor, []byte, error) { return writeImageToStore(se, img) },
		func(nr name.Reference, opts []remote.Option) error { return remote.Write(nr, img, opts...) })
	if err != nil {
		return fmt.Errorf("writing image %s: %w", r, err)
	}
	return nil
}

// WriteIndex writes idx and every image or index under it to r (any
// transport), children first, the tag last.
func (e *Engine) WriteIndex(ctx context.Context, r ref.Ref, idx v1.ImageIndex) error {
	err := e.write(ctx, r,
		func(se *storeEndpoint) (Descriptor, []byte, error) { return writeIndexToStore(se, idx) },
		func(nr name.Reference, opts []remote.Option) error { return remote.WriteIndex(nr, idx, opts...) })
	if err != nil {
		return fmt.Errorf("writing index %s: %w", r, err)
	}
	return nil
}

// write sends content to a store or layout (toStore, then the name) or to
// a registry (toRemote, through go-containerregistry).
func (e *Engine) write(ctx context.Context, r ref.Ref, toStore func(*storeEndpoint) (Descriptor, []byte, error),
	toRemote func(name.Reference, []remote.Option) error) error {
	if r.Transport == ref.File || r.Transport == ref.OCI {
		ep, err := e.endpointFor(ctx, r)
		if err != nil {
			return err
		}
		se := ep.(*storeEndpoint)
		desc, data, err := toStore(se)
		if err != nil {
			return err
		}
		return se.name(ctx, r.Tag, desc, data, "")
	}
	nr, opts, err := e.remote(ctx, r)
	if err != nil {
		return err
	}
	return wrapRemote(toRemote(nr, opts))
}

func writeImageToStore(se *storeEndpoint, img v1.Image) (Descriptor, []byte, error) {
	layers, err := img.Layers()
	if err != nil {
		return Descriptor{}, nil, err
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return Descriptor{}, nil, err
		}
		if _, ok := se.s.HasBlob(d.String()); ok {
			continue
		}
		size, err := l.Size()
		if err != nil {
			return Descriptor{}, nil, err
		}
		rc, err := l.Compressed()
		if err != nil {
			return Descriptor{}, nil, fmt.Errorf("layer %s: %w", d, err)
		}
		_, err = se.s.WriteBlob(d.String(), size, rc)
		rc.Close()
		if err != nil {
			return Descriptor{}, nil, err
		}
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return Descriptor{}, nil, err
	}
	if _, err := se.s.PutBytes(cfg); err != nil {
		return Descriptor{}, nil, err
	}
	return putRaw(se, img)
}

type rawManifester interface {
	RawManifest() ([]byte, error)
	MediaType() (types.MediaType, error)
}

func putRaw(se *storeEndpoint, m rawManifester) (Descriptor, []byte, error) {
	data, err := m.RawManifest()
	if err != nil {
		return Descriptor{}, nil, err
	}
	mt, err := m.MediaType()
	if err != nil {
		return Descriptor{}, nil, err
	}
	d, err := se.s.PutBytes(data)
	if err != nil {
		return Descriptor{}, nil, err
	}
	return Descriptor{Digest: hashOf(d), MediaType: mt, Size: int64(len(data))}, data, nil
}

func writeIndexToStore(se *storeEndpoint, idx v1.ImageIndex) (Descriptor, []byte, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return Descriptor{}, nil, err
	}
	for _, c := range im.Manifests {
		switch {
		case c.MediaType.IsIndex():
			ci, err := idx.ImageIndex(c.Digest)
			if err != nil {
				return Descriptor{}, nil, err
			}
			if _, _, err := writeIndexToStore(se, ci); err != nil {
				return Descriptor{}, nil, err
			}
		case c.MediaType.IsImage():
			ci, err := idx.Image(c.Digest)
			if err != nil {
				return Descriptor{}, nil, err
			}
			if _, _, err := writeImageToStore(se, ci); err != nil {
				return Descriptor{}, nil, err
			}
		default:
			return Descriptor{}, nil, fmt.Errorf("index child %s: unsupported media type %q", c.Digest, c.MediaType)
		}
	}
	return putRaw(se, idx)
}

// layoutEntry finds r's top-level entry in a store or plain layout and
// returns the layout's root index (for Image/ImageIndex by hash).
func (e *Engine) layoutEntry(ctx context.Context, r ref.Ref) (v1.ImageIndex, v1.Hash, error) {
	ep, err := e.endpointFor(ctx, r)
	if err != nil {
		return nil, v1.Hash{}, err
	}
	se := ep.(*storeEndpoint)
	reference := r.Digest
	if reference == "" {
		reference = r.Tag
	}
	if reference == "" {
		reference = "latest"
	}
	d, err := se.lookup(reference)
	if err != nil {
		return nil, v1.Hash{}, fmt.Errorf("opening %s: %w", r, err)
	}
	p, err := layout.FromPath(se.s.Dir())
	if err != nil {
		return nil, v1.Hash{}, fmt.Errorf("opening layout %s: %w", se.s.Dir(), err)
	}
	root, err := p.ImageIndex()
	if err != nil {
		return nil, v1.Hash{}, fmt.Errorf("opening layout %s: %w", se.s.Dir(), err)
	}
	return root, d.Digest, nil
}

// remote builds go-containerregistry options with the engine's credentials
// and transport.
func (e *Engine) remote(ctx context.Context, r ref.Ref) (name.Reference, []remote.Option, error) {
	if r.Transport != ref.Docker && r.Transport != "" {
		return nil, nil, fmt.Errorf("%s: not a registry reference", r)
	}
	var nopts []name.Option
	if e.opts.Insecure || isLoopback(r.Registry) {
		nopts = append(nopts, name.Insecure)
	}
	s := r.Repository()
	switch {
	case r.Digest != "":
		s += "@" + r.Digest
	case r.Tag != "":
		s += ":" + r.Tag
	default:
		s += ":latest"
	}
	nr, err := name.ParseReference(s, nopts...)
	if err != nil {
		return nil, nil, fmt.Errorf("reference %s: %w", r, err)
	}
	return nr, []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(e.opts.Keychain),
		remote.WithTransport(e.baseTransport())}, nil
}

// wrapRemote makes a go-containerregistry "not found" match ErrNotFound.
func wrapRemote(err error) error {
	var te *transport.Error
	if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}
