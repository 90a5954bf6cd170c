package engine

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
)

// Blob is one content-addressed object of an image: a manifest, a config
// or a layer.
type Blob struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// Inventory is one image as a copy of it would move it, read from manifests
// only: what `airlock plan` counts before any blob moves.
type Inventory struct {
	// SourceDigest is the digest of the source's top-level manifest;
	// Digest what a copy writes (they differ when FilterByOS rewrites a
	// manifest list).
	SourceDigest string `json:"sourceDigest"`
	Digest       string `json:"digest"`
	MediaType    string `json:"mediaType"`
	// Manifests are every manifest written, the top-level one first.
	Manifests []Blob `json:"manifests"`
	// Blobs are the config and layer blobs, each once.
	Blobs []Blob `json:"blobs"`
}

// Size is the bytes of every manifest and blob of the image.
func (inv *Inventory) Size() int64 {
	var n int64
	for _, b := range inv.Manifests {
		n += b.Size
	}
	for _, b := range inv.Blobs {
		n += b.Size
	}
	return n
}

// Inspect reads the manifests of it's source (pinned to its digest when
// known, through the platform filter as a copy would) and lists what a copy
// of it moves. It reads no blob.
func (e *Engine) Inspect(ctx context.Context, it plan.Item) (*Inventory, error) {
	src, err := e.endpointFor(ctx, it.Source)
	if err != nil {
		return nil, err
	}
	reference, pinned := sourceReference(it)
	tree, err := e.fetchTree(ctx, src, reference, v1Descriptor(reference, pinned))
	if err != nil {
		return nil, err
	}
	top, err := e.filter.apply(tree, e.opts.KeepManifestList)
	if err != nil {
		return nil, err
	}
	inv := &Inventory{SourceDigest: tree.desc.Digest.String(), Digest: top.desc.Digest.String(), MediaType: string(top.desc.MediaType)}
	seen := map[string]bool{}
	var walk func(*node)
	walk = func(n *node) {
		if d := n.desc.Digest.String(); !seen[d] {
			seen[d] = true
			inv.Manifests = append(inv.Manifests, Blob{Digest: d, Size: int64(len(n.data))})
		}
		for _, c := range n.children {
			walk(c)
		}
	}
	walk(top)
	for _, b := range top.uniqueBlobs() {
		inv.Blobs = append(inv.Blobs, Blob{Digest: b.Digest.String(), Size: b.Size})
	}
	return inv, nil
}

// Holding is what a destination already has of an image.
type Holding struct {
	// Complete: the top-level manifest is there under the destination's
	// tag (or digest); a run skips the image.
	Complete bool
	// Blobs are the blobs of the image the destination repository holds.
	Blobs map[string]bool
}

// Holds checks what dst already holds of inv: the manifest under dst's tag
// (or by digest) and, unless it is complete, each blob (HEAD requests to a
// registry, stat calls in the local store).
func (e *Engine) Holds(ctx context.Context, dst ref.Ref, tag string, inv *Inventory) (*Holding, error) {
	ep, err := e.endpointFor(ctx, dst)
	if err != nil {
		return nil, err
	}
	h := &Holding{Blobs: map[string]bool{}}
	reference := inv.Digest
	if tag != "" {
		reference = tag
	}
	info, found, err := ep.headManifest(ctx, reference)
	if err != nil {
		return nil, fmt.Errorf("checking %s: %w", dst, err)
	}
	if found && (info.Digest == inv.Digest || (info.Digest == "" && tag == "")) {
		h.Complete = true
		for _, b := range inv.Blobs {
			h.Blobs[b.Digest] = true
		}
		return h, nil
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, b := range inv.Blobs {
		g.Go(func() error {
			ok, err := ep.hasBlob(gctx, b.Digest)
			if err != nil {
				return fmt.Errorf("checking blob %s at %s: %w", b.Digest, dst, err)
			}
			if ok {
				mu.Lock()
				h.Blobs[b.Digest] = true
				mu.Unlock()
			}
			return nil
		})
	}
	return h, g.Wait()
}

// DestTag is the tag a copy of it writes at d ("" for by digest only).
func DestTag(it plan.Item, d ref.Ref) string { return destTag(it, d) }
