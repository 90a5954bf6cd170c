package catalogimage

import (
	"context"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/airlock-mirror/airlock/internal/catalog"
	"github.com/airlock-mirror/airlock/internal/ref"
)

// Build writes to dst a new catalog image: every platform of base (an opm
// image such as quay.io/operator-framework/opm:v1.50.0) plus a layer with c
// as FBC JSON under /configs, the configs label, and
// ENTRYPOINT ["/bin/opm"] CMD ["serve", "/configs"] — the image opm's
// generated Dockerfile describes, minus the pre-built cache (see the
// package comment). It is also how a legacy sqlite catalog is converted to
// FBC on a current opm (--convert-to-fbc --base).
func Build(ctx context.Context, imgs Images, base ref.Ref, c *catalog.Catalog, dst ref.Ref) (*Result, error) {
	if c == nil || c.Config == nil {
		return nil, fmt.Errorf("building catalog image %s: no catalog content given", dst)
	}
	if !dst.HasTagOrDigest() || dst.Digest != "" {
		return nil, fmt.Errorf("building catalog image: destination %s needs a tag", dst)
	}
	lc := newLayerCache(c)
	return transform(ctx, imgs, base, dst, func(img v1.Image) (v1.Image, error) { return buildImage(img, lc) },
		"building catalog image on "+base.String())
}

func buildImage(img v1.Image, lc *layerCache) (v1.Image, error) {
	mt, err := img.MediaType()
	if err != nil {
		return nil, err
	}
	lmt := layerMediaType(mt)
	cl, err := lc.configsLayer(lmt)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading base image config: %w", err)
	}
	adds := []mutate.Addendum{{Layer: cl, MediaType: lmt, History: v1.History{CreatedBy: "airlock catalog build: add catalog at " + ConfigsDir, Comment: "airlock"}}}
	if cf.Config.Labels[LabelConfigs] != "" || cf.Config.Labels[LabelDatabase] != "" {
		// The base is itself a catalog: hide what it carries.
		hide := cleanPaths([]string{ConfigsDir, DefaultCacheDir, cf.Config.Labels[LabelConfigs]})
		wl, err := lc.whiteoutLayer(hide, lmt)
		if err != nil {
			return nil, err
		}
		adds = append([]mutate.Addendum{{Layer: wl, MediaType: lmt, History: v1.History{CreatedBy: "airlock catalog build: remove base catalog", Comment: "airlock"}}}, adds...)
	}
	out, err := mutate.Append(img, adds...)
	if err != nil {
		return nil, fmt.Errorf("appending catalog layer: %w", err)
	}
	ncf, err := out.ConfigFile()
	if err != nil {
		return nil, err
	}
	ncf = ncf.DeepCopy()
	labels := map[string]string{}
	for k, v := range cf.Config.Labels {
		labels[k] = v
	}
	delete(labels, LabelDatabase)
	labels[LabelConfigs] = ConfigsDir
	ncf.Config.Labels = labels
	ncf.Config.Entrypoint = []string{"/bin/opm"}
	ncf.Config.Cmd = []string{"serve", ConfigsDir}
	return mutate.ConfigFile(out, ncf)
}
