package catalog

import (
	"fmt"
	"sort"

	"github.com/operator-framework/operator-registry/alpha/declcfg"

	"github.com/airlock-mirror/airlock/internal/ref"
)

// ImageKind says what role an image plays for the bundles that need it.
type ImageKind string

const (
	// KindBundle is a bundle image (the bundle's `image` field).
	KindBundle ImageKind = "bundle"
	// KindRelated is an image listed in a bundle's relatedImages.
	KindRelated ImageKind = "related"
)

// Pinning says how firmly a reference names one image.
type Pinning string

const (
	PinnedDigest Pinning = "digest" // @sha256:..., with or without a tag
	PinnedTag    Pinning = "tag"    // :tag only; may move
	PinnedNone   Pinning = "none"   // neither; means :latest
)

// Image is one image reference a set of bundles needs.
type Image struct {
	// Ref is the reference exactly as the catalog writes it; mirror and
	// mapping outputs use it as the source so that what the cluster asks
	// for is what gets mirrored.
	Ref string `json:"ref"`
	// Parsed is Ref parsed (docker.io normalised).
	Parsed ref.Ref `json:"-"`
	// Kind is bundle when any bundle uses it as its bundle image.
	Kind   ImageKind `json:"kind"`
	Pinned Pinning   `json:"pinned"`
	// Names are the relatedImages names it appears under.
	Names    []string `json:"names,omitempty"`
	Bundles  []string `json:"bundles"`
	Packages []string `json:"packages"`
}

// RelatedImages lists every image the catalog's bundles need — each
// bundle image and every related image — deduplicated by reference, with
// the bundles and packages each one serves, sorted by reference. Empty or
// invalid references are left out and returned as warnings naming the
// bundle and the field, so one bad entry never hides the rest.
func RelatedImages(c *Catalog) ([]Image, []Warning) {
	return imagesOf(c.Config.Bundles, nil)
}

// Images is RelatedImages restricted to the bundles matching sel.
func (c *Catalog) Images(sel Selector) ([]Image, []Warning, error) {
	ix := newIndex(c.Config)
	cs, err := compileSelector(ix, sel)
	if err != nil {
		return nil, nil, err
	}
	bundles, _ := ix.selectedBundles(cs)
	keep := make(map[*declcfg.Bundle]bool, len(bundles))
	for _, b := range bundles {
		keep[b] = true
	}
	imgs, ws := imagesOf(c.Config.Bundles, keep)
	return imgs, ws, nil
}

func imagesOf(bundles []declcfg.Bundle, keep map[*declcfg.Bundle]bool) ([]Image, []Warning) {
	byRef := map[string]*Image{}
	var ws []Warning
	add := func(b *declcfg.Bundle, s string, kind ImageKind, name, field string) {
		r, err := parseImageRef(s)
		if err != nil {
			ws = append(ws, Warning{Package: b.Package, Bundle: b.Name, Field: field, Message: err.Error() + "; image skipped"})
			return
		}
		img := byRef[s]
		if img == nil {
			img = &Image{Ref: s, Parsed: r, Kind: kind, Pinned: pinning(r)}
			byRef[s] = img
		}
		if kind == KindBundle {
			img.Kind = KindBundle
		}
		img.Names = appendUnique(img.Names, name)
		img.Bundles = appendUnique(img.Bundles, b.Name)
		img.Packages = appendUnique(img.Packages, b.Package)
	}
	for i := range bundles {
		b := &bundles[i]
		if keep != nil && !keep[b] {
			continue
		}
		if b.Image != "" {
			add(b, b.Image, KindBundle, "", "image")
		}
		for j, ri := range b.RelatedImages {
			field := fmt.Sprintf("relatedImages[%d].image", j)
			if ri.Name != "" {
				field = fmt.Sprintf("relatedImages[%d] (%s).image", j, ri.Name)
			}
			// The bundle image usually repeats itself in relatedImages;
			// it stays one entry of kind bundle.
			add(b, ri.Image, KindRelated, ri.Name, field)
		}
	}
	out := make([]Image, 0, len(byRef))
	for _, img := range byRef {
		sort.Strings(img.Names)
		sort.Strings(img.Bundles)
		sort.Strings(img.Packages)
		out = append(out, *img)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ref < out[j].Ref })
	return out, ws
}

func pinning(r ref.Ref) Pinning {
	switch {
	case r.Digest != "":
		return PinnedDigest
	case r.Tag != "":
		return PinnedTag
	}
	return PinnedNone
}

func appendUnique(s []string, v string) []string {
	if v == "" {
		return s
	}
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}
