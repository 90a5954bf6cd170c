package orchestrate

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/airlock-mirror/airlock/internal/catalog"
	"github.com/airlock-mirror/airlock/internal/ref"
)

// PlatformOpener opens catalog images through imgs; for a manifest list it
// reads the variant matching filter (os/arch[/variant] or a regular
// expression over it): the catalog content is the same on every platform.
func PlatformOpener(imgs Images, filter string) catalog.ImageOpener {
	return catalog.ImageOpenerFunc(func(ctx context.Context, s string) (v1.Image, error) {
		r, err := ref.Parse(s)
		if err != nil {
			return nil, err
		}
		desc, err := imgs.Resolve(ctx, r)
		if err != nil {
			return nil, err
		}
		if !desc.MediaType.IsIndex() {
			return imgs.Image(ctx, r)
		}
		idx, err := imgs.Index(ctx, r)
		if err != nil {
			return nil, err
		}
		return PickPlatform(idx, filter, s)
	})
}

// PickPlatform returns the image of idx whose platform matches filter.
func PickPlatform(idx v1.ImageIndex, filter, name string) (v1.Image, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	re, err := regexp.Compile("^(?:" + filter + ")$")
	if err != nil {
		return nil, fmt.Errorf("--index-filter-by-os %q: %w", filter, err)
	}
	var have []string
	for _, d := range im.Manifests {
		if d.Platform == nil {
			continue
		}
		p := d.Platform.OS + "/" + d.Platform.Architecture
		if d.Platform.Variant != "" {
			p += "/" + d.Platform.Variant
		}
		have = append(have, p)
		if d.MediaType.IsImage() && (re.MatchString(p) || re.MatchString(d.Platform.OS+"/"+d.Platform.Architecture)) {
			return idx.Image(d.Digest)
		}
	}
	return nil, fmt.Errorf("catalog %s has no %s variant (has: %s); set --index-filter-by-os", name, filter, strings.Join(have, ", "))
}

// WithTransport prints r with its transport prefix, docker:// included, as
// catalog.Load needs to tell an image from a local path.
func WithTransport(r ref.Ref) string {
	if r.Transport == ref.Docker || r.Transport == "" {
		return "docker://" + r.Name()
	}
	return r.String()
}
