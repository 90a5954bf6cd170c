package release

import (
	"context"
	"fmt"
	"sort"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"github.com/airlock-mirror/airlock/internal/ref"
)

// Source reads images on some transport. The engine implements it for
// docker://, file:// and oci://; RemoteSource is a registry-only one.
type Source interface {
	// Resolve returns the descriptor (digest, media type, size) r names.
	Resolve(ctx context.Context, r ref.Ref) (v1.Descriptor, error)
	Image(ctx context.Context, r ref.Ref) (v1.Image, error)
	Index(ctx context.Context, r ref.Ref) (v1.ImageIndex, error)
}

// ComponentInfo describes one component image.
type ComponentInfo struct {
	Name      string   `json:"name"`
	Image     string   `json:"image"`
	MediaType string   `json:"mediaType,omitempty"`
	Platforms []string `json:"platforms,omitempty"` // children of a manifest list
	// Size is the bytes of the component's own config and layer blobs
	// (all platforms), counting blobs shared with other components.
	Size int64 `json:"size"`
}

// Info is what `release info` prints.
type Info struct {
	Image        string   `json:"image"`
	Digest       string   `json:"digest"`
	Version      string   `json:"version"`
	Architecture string   `json:"architecture"`
	Previous     []string `json:"previous,omitempty"`
	// ComponentCount is the number of image-references tags.
	ComponentCount int `json:"componentCount"`
	// TotalSize is the bytes to mirror: every unique blob of the release
	// image and all components, each counted once.
	TotalSize  int64           `json:"totalSize"`
	Components []ComponentInfo `json:"components"`
	Payload    *Payload        `json:"-"`
}

// Open resolves r and reads the payload. For a manifest list (a multi-arch
// payload) it reads the linux/amd64 child, or the first one, since every
// child carries the same release-manifests; Architecture is then "multi".
func Open(ctx context.Context, src Source, r ref.Ref) (p *Payload, desc v1.Descriptor, err error) {
	err = retry(ctx, "reading release "+r.String(), func() error {
		p, desc, err = open(ctx, src, r)
		return err
	})
	return p, desc, err
}

func open(ctx context.Context, src Source, r ref.Ref) (*Payload, v1.Descriptor, error) {
	desc, err := src.Resolve(ctx, r)
	if err != nil {
		return nil, desc, fmt.Errorf("resolving release image %s: %w", r, err)
	}
	pinned := r.WithDigest(desc.Digest.String())
	if desc.MediaType.IsIndex() {
		idx, err := src.Index(ctx, pinned)
		if err != nil {
			return nil, desc, fmt.Errorf("reading release manifest list %s: %w", r, err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, desc, fmt.Errorf("reading release manifest list %s: %w", r, err)
		}
		if len(im.Manifests) == 0 {
			return nil, desc, fmt.Errorf("release manifest list %s is empty", r)
		}
		child := im.Manifests[0]
		for _, m := range im.Manifests {
			if m.Platform != nil && m.Platform.OS == "linux" && m.Platform.Architecture == "amd64" {
				child = m
				break
			}
		}
		img, err := idx.Image(child.Digest)
		if err != nil {
			return nil, desc, fmt.Errorf("reading %s child %s: %w", r, child.Digest, err)
		}
		p, err := Read(img, r.String())
		if err != nil {
			return nil, desc, err
		}
		p.Architecture = "multi"
		return p, desc, nil
	}
	img, err := src.Image(ctx, pinned)
	if err != nil {
		return nil, desc, fmt.Errorf("reading release image %s: %w", r, err)
	}
	p, err := Read(img, r.String())
	return p, desc, err
}

// InspectOptions tune Inspect.
type InspectOptions struct {
	// Parallel is how many component manifests are resolved at once (default 8).
	Parallel int
	// FromStore reads the components from this store repository by the
	// tags `release mirror --to-dir` gave them (<version><archExt>-<name>),
	// for a release carried across an air gap.
	FromStore *ref.Ref
}

// Inspect reads the release and resolves every component manifest (at most
// Parallel at once) to size the mirror. A component that cannot be read is
// an error naming it: a size that silently leaves images out would mislead.
func Inspect(ctx context.Context, src Source, r ref.Ref, o InspectOptions) (*Info, error) {
	p, desc, err := Open(ctx, src, r)
	if err != nil {
		return nil, err
	}
	parallel := o.Parallel
	if parallel <= 0 {
		parallel = 8
	}
	prefix := p.Version + ArchExt(p.Architecture, desc.MediaType.IsIndex())
	info := &Info{
		Image: r.String(), Digest: desc.Digest.String(), Version: p.Version, Architecture: p.Architecture,
		Previous: p.Previous, ComponentCount: len(p.Components), Payload: p,
		Components: make([]ComponentInfo, len(p.Components)),
	}
	var mu sync.Mutex
	unique := map[v1.Hash]int64{}
	relBlobs, _, err := blobsOf(ctx, src, r.WithDigest(desc.Digest.String()), desc)
	if err != nil {
		return nil, fmt.Errorf("sizing release image %s: %w", r, err)
	}
	for h, n := range relBlobs {
		unique[h] = n
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for i, c := range p.Components {
		cref := c.Image
		if o.FromStore != nil {
			cref = o.FromStore.Repo().WithTag(prefix + "-" + c.Name)
		}
		g.Go(func() error {
			return retry(gctx, "reading component "+c.Name, func() error {
				return inspectComponent(gctx, src, c, cref, i, info, unique, &mu)
			})
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, n := range unique {
		info.TotalSize += n
	}
	return info, nil
}

// inspectComponent resolves and sizes component i into info.
func inspectComponent(ctx context.Context, src Source, c Component, cref ref.Ref, i int, info *Info, unique map[v1.Hash]int64, mu *sync.Mutex) error {
	d, err := src.Resolve(ctx, cref)
	if err != nil {
		return fmt.Errorf("component %s (%s): %w", c.Name, cref, err)
	}
	if d.Digest.String() != c.Image.Digest {
		return fmt.Errorf("component %s: %s has digest %s, but the payload references %s", c.Name, cref, d.Digest, c.Image.Digest)
	}
	cref = cref.WithDigest(d.Digest.String())
	blobs, plats, err := blobsOf(ctx, src, cref, d)
	if err != nil {
		return fmt.Errorf("component %s (%s): %w", c.Name, cref, err)
	}
	ci := ComponentInfo{Name: c.Name, Image: c.Image.String(), MediaType: string(d.MediaType), Platforms: plats}
	for _, n := range blobs {
		ci.Size += n
	}
	mu.Lock()
	defer mu.Unlock()
	for h, n := range blobs {
		unique[h] = n
	}
	info.Components[i] = ci
	return nil
}

// blobsOf returns the config and layer blobs (digest -> size) of an image
// or of every image of an index, and the platforms of an index.
func blobsOf(ctx context.Context, src Source, r ref.Ref, d v1.Descriptor) (map[v1.Hash]int64, []string, error) {
	out := map[v1.Hash]int64{}
	addImage := func(m *v1.Manifest) {
		out[m.Config.Digest] = m.Config.Size
		for _, l := range m.Layers {
			out[l.Digest] = l.Size
		}
	}
	if !d.MediaType.IsIndex() {
		img, err := src.Image(ctx, r)
		if err != nil {
			return nil, nil, err
		}
		m, err := img.Manifest()
		if err != nil {
			return nil, nil, err
		}
		addImage(m)
		return out, nil, nil
	}
	idx, err := src.Index(ctx, r)
	if err != nil {
		return nil, nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, nil, err
	}
	var plats []string
	for _, c := range im.Manifests {
		if !c.MediaType.IsImage() {
			continue // nested indexes and attestations are rare in payloads
		}
		img, err := idx.Image(c.Digest)
		if err != nil {
			return nil, nil, fmt.Errorf("child %s: %w", c.Digest, err)
		}
		m, err := img.Manifest()
		if err != nil {
			return nil, nil, fmt.Errorf("child %s: %w", c.Digest, err)
		}
		addImage(m)
		if c.Platform != nil {
			plats = append(plats, c.Platform.String())
		}
	}
	sort.Strings(plats)
	return out, plats, nil
}
