package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"
)

// node is one manifest of an image being copied: an image manifest with its
// blobs, or an index with its children.
type node struct {
	desc     v1.Descriptor
	data     []byte
	children []*node
	blobs    []v1.Descriptor // config and layers of an image manifest
}

func (n *node) isIndex() bool { return n.desc.MediaType.IsIndex() }

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func hashOf(d string) v1.Hash {
	h, _ := v1.NewHash(d)
	return h
}

// fetchTree reads the manifest reference (a tag or digest) from src and,
// for an index, all its children, verifying each against its digest and
// size. want is the expected descriptor (zero when unknown).
func (e *Engine) fetchTree(ctx context.Context, src endpoint, reference string, want v1.Descriptor) (*node, error) {
	data, mt, err := src.getManifest(ctx, reference)
	if err != nil {
		return nil, fmt.Errorf("reading manifest %s of %s: %w", reference, src, err)
	}
	dig := digestOf(data)
	if want.Digest.Hex != "" && dig != want.Digest.String() {
		return nil, fmt.Errorf("manifest %s of %s: content hashes to %s (registry served wrong content)", want.Digest, src, dig)
	}
	if want.Size > 0 && int64(len(data)) != want.Size {
		return nil, fmt.Errorf("manifest %s of %s: %d bytes, descriptor says %d", dig, src, len(data), want.Size)
	}
	if sniffed := sniffMediaType(data); sniffed != "" {
		mt = sniffed // the document's own field beats a Content-Type with parameters
	}
	mt, _, _ = strings.Cut(mt, ";")
	n := &node{data: data, desc: v1.Descriptor{MediaType: types.MediaType(strings.TrimSpace(mt)), Digest: hashOf(dig),
		Size: int64(len(data)), Platform: want.Platform}}
	switch {
	case n.desc.MediaType.IsIndex():
		im, err := v1.ParseIndexManifest(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("parsing index %s of %s: %w", dig, src, err)
		}
		n.children = make([]*node, len(im.Manifests))
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(4)
		for i, cd := range im.Manifests {
			g.Go(func() error {
				c, err := e.fetchTree(gctx, src, cd.Digest.String(), cd)
				if err != nil {
					return err
				}
				c.desc.Annotations = cd.Annotations
				if cd.MediaType != "" {
					c.desc.MediaType = cd.MediaType
				}
				n.children[i] = c
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return nil, err
		}
	case n.desc.MediaType.IsImage():
		m, err := v1.ParseManifest(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("parsing manifest %s of %s: %w", dig, src, err)
		}
		n.blobs = append(n.blobs, m.Config)
		for _, l := range m.Layers {
			// Foreign / non-distributable layers live elsewhere (URLs) and
			// registries refuse them; every copier skips them.
			if len(l.URLs) > 0 && !l.MediaType.IsDistributable() {
				continue
			}
			n.blobs = append(n.blobs, l)
		}
	case n.desc.MediaType == types.DockerManifestSchema1 || n.desc.MediaType == types.DockerManifestSchema1Signed:
		return nil, fmt.Errorf("manifest %s of %s is Docker schema 1, which airlock does not copy; rebuild or re-push the image with a current client", dig, src)
	default:
		return nil, fmt.Errorf("manifest %s of %s: unsupported media type %q", dig, src, mt)
	}
	return n, nil
}

// size is the bytes of every manifest and unique blob under n.
func (n *node) size() int64 {
	var total int64
	seen := map[string]bool{}
	var walk func(*node)
	walk = func(x *node) {
		if d := x.desc.Digest.String(); !seen[d] {
			seen[d] = true
			total += int64(len(x.data))
		}
		for _, c := range x.children {
			walk(c)
		}
	}
	walk(n)
	for _, b := range n.uniqueBlobs() {
		total += b.Size
	}
	return total
}

// uniqueBlobs lists every blob under n once.
func (n *node) uniqueBlobs() []v1.Descriptor {
	seen := map[string]bool{}
	var out []v1.Descriptor
	var walk func(*node)
	walk = func(x *node) {
		for _, b := range x.blobs {
			if !seen[b.Digest.String()] {
				seen[b.Digest.String()] = true
				out = append(out, b)
			}
		}
		for _, c := range x.children {
			walk(c)
		}
	}
	walk(n)
	return out
}

// platformFilter implements --filter-by-os.
type platformFilter struct {
	expr string
	re   *regexp.Regexp
}

func newPlatformFilter(expr string) (*platformFilter, error) {
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("--filter-by-os %q is not a valid regular expression: %w", expr, err)
	}
	return &platformFilter{expr: expr, re: re}, nil
}

func platformString(p *v1.Platform) string {
	if p == nil {
		return ""
	}
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// apply narrows an index the way oc image mirror does: the regex is matched
// (unanchored, as oc) against "os/arch[/variant]"; one match yields that
// single manifest, several a new smaller list, keep the original list with
// only the matching children (sparse).
func (f *platformFilter) apply(top *node, keep bool) (*node, error) {
	if f == nil || !top.isIndex() {
		return top, nil
	}
	var matched []*node
	var all []string
	for _, c := range top.children {
		ps := platformString(c.desc.Platform)
		all = append(all, ps)
		if ps != "" && f.re.MatchString(ps) {
			matched = append(matched, c)
		}
	}
	if len(matched) == 0 {
		return nil, fmt.Errorf("no manifest of list %s matches --filter-by-os %q (platforms: %s)",
			top.desc.Digest, f.expr, strings.Join(all, ", "))
	}
	if keep {
		sparse := *top
		sparse.children = matched
		return &sparse, nil
	}
	if len(matched) == 1 {
		one := *matched[0]
		one.desc.Platform = nil
		return &one, nil
	}
	if len(matched) == len(top.children) {
		return top, nil
	}
	// A new list: the original document with only the matching entries, so
	// every other field (annotations, unknown fields) survives.
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(top.data, &doc); err != nil {
		return nil, fmt.Errorf("rewriting list %s: %w", top.desc.Digest, err)
	}
	var entries []json.RawMessage
	if err := json.Unmarshal(doc["manifests"], &entries); err != nil {
		return nil, fmt.Errorf("rewriting list %s: %w", top.desc.Digest, err)
	}
	keepDigest := map[string]bool{}
	for _, m := range matched {
		keepDigest[m.desc.Digest.String()] = true
	}
	var kept []json.RawMessage
	for _, raw := range entries {
		var d struct {
			Digest   string       `json:"digest"`
			Platform *v1.Platform `json:"platform"`
		}
		if err := json.Unmarshal(raw, &d); err != nil {
			return nil, fmt.Errorf("rewriting list %s: %w", top.desc.Digest, err)
		}
		if keepDigest[d.Digest] && f.re.MatchString(platformString(d.Platform)) {
			kept = append(kept, raw)
		}
	}
	b, err := json.Marshal(kept)
	if err != nil {
		return nil, err
	}
	doc["manifests"] = b
	data, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	n := &node{data: data, children: matched, desc: v1.Descriptor{MediaType: top.desc.MediaType,
		Digest: hashOf(digestOf(data)), Size: int64(len(data))}}
	return n, nil
}
