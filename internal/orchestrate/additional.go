package orchestrate

import (
	"context"
	"fmt"

	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
)

// additionalCollector collects mirror.additionalImages: each image under
// its own path and tag, or targetRepo/targetTag. A tag+digest image is read
// by digest and pushed with its tag.
type additionalCollector struct{}

func (additionalCollector) Section() string { return "additionalImages" }

func (additionalCollector) Collect(ctx context.Context, in *Input) (*Collection, error) {
	col := &Collection{}
	for i, ai := range in.Config.Mirror.AdditionalImages {
		field := fmt.Sprintf("additionalImages[%d]", i)
		if len(ai.Platforms) > 0 {
			// Per-image platform filtering is not in the engine yet (its
			// filter is one per run); say so rather than ignore it.
			in.warn("mirror.%s.platforms is not applied yet: every platform of %s is mirrored", field, ai.Name)
		}
		src, err := ref.Parse(ai.Name)
		if err != nil {
			return nil, fmt.Errorf("%s.name: %w", field, err)
		}
		named := src
		if named.Transport == ref.Docker && !named.HasTagOrDigest() {
			named.Tag = "latest"
		}
		dest := DestFor(named, in.Root)
		if ai.TargetRepo != "" {
			dest.Path = Rebase(ref.Ref{Path: ai.TargetRepo}, in.Root).Path
		}
		if ai.TargetTag != "" {
			dest.Tag = ai.TargetTag
		}
		read := named
		if named.Digest != "" && named.Transport == ref.Docker {
			read = named.ByDigest(named.Digest)
		}
		col.Items = append(col.Items, plan.Item{Source: read, Dests: []ref.Ref{dest}, Kind: plan.KindImage,
			Origin: plan.Origin{File: in.ConfigFile + ": mirror." + field}, Digest: named.Digest})
	}
	return col, nil
}
