package orchestrate

import (
	"context"
	"errors"
	"path/filepath"

	"github.com/airlock-mirror/airlock/internal/helm"
)

// helmCollector collects mirror.helm: every chart's rendered images under
// their oc-mirror names, and the chart itself as an OCI artifact at
// ROOT/helm-charts/NAME:VERSION (its archive and layout kept in
// working-dir/helm, where oc-mirror keeps charts).
type helmCollector struct{}

func (helmCollector) Section() string { return "helm" }

func (helmCollector) Collect(ctx context.Context, in *Input) (*Collection, error) {
	h := in.Config.Mirror.Helm
	if len(h.Repositories) == 0 && len(h.Local) == 0 {
		return nil, nil
	}
	for i, r := range h.Repositories {
		for j, c := range r.Charts {
			if len(c.Platforms) > 0 {
				in.warn("mirror.helm.repositories[%d].charts[%d].platforms is not applied yet: every platform of the chart's images is mirrored", i, j)
			}
		}
	}
	for i, c := range h.Local {
		if len(c.Platforms) > 0 {
			in.warn("mirror.helm.local[%d].platforms is not applied yet: every platform of the chart's images is mirrored", i)
		}
	}
	if in.WorkDir == "" {
		return nil, errors.New("charts need a working directory (file://DIR or --workspace file://DIR)")
	}
	charts, err := helm.Collect(ctx, h, helm.Options{WorkDir: filepath.Join(in.WorkDir, "helm")})
	if err != nil {
		return nil, err
	}
	items, err := helm.Items(charts, in.Root, in.Name)
	if err != nil {
		return nil, err
	}
	return &Collection{Items: items}, nil
}
