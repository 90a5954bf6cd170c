package orchestrate

import (
	"context"
	"fmt"
	"sort"

	"golang.org/x/sync/errgroup"

	"github.com/airlock-mirror/airlock/internal/engine"
	"github.com/airlock-mirror/airlock/internal/plan"
)

// SigImage is one image of a signature report.
type SigImage struct {
	Source string      `json:"source"`
	Digest string      `json:"digest,omitempty"`
	Kind   plan.Kind   `json:"kind,omitempty"`
	Origin plan.Origin `json:"origin,omitzero"`
	Groups []string    `json:"groups"`
	Signed bool        `json:"signed"`
	// Attachments are the signatures, attestations, SBOMs and referrers
	// the source holds for the image (its manifests, children included).
	Attachments int `json:"attachments"`
	// Dests: per destination, whether the image and its attachments are
	// there (only when destinations were checked).
	Dests []SigDest `json:"destinations,omitempty"`
	Error string    `json:"error,omitempty"`
}

// SigDest is what one destination holds of an image and its attachments.
type SigDest struct {
	Ref          string   `json:"ref"`
	ImagePresent bool     `json:"imagePresent"`
	Missing      []string `json:"missingAttachments,omitempty"`
}

// SigGroup counts a release, catalog, package, chart or the additional
// images.
type SigGroup struct {
	Name     string `json:"name"`
	Images   int    `json:"images"`
	Signed   int    `json:"signed"`
	Unsigned int    `json:"unsigned"`
	// MissingAtDest: images whose attachments (or the image itself) are
	// not at a destination.
	MissingAtDest int `json:"missingAtDestination"`
	Errors        int `json:"errors"`
}

// SigReport is the answer of `airlock signatures report`.
type SigReport struct {
	Images []SigImage `json:"images"`
	Groups []SigGroup `json:"groups"`
	Total  SigGroup   `json:"total"`
	Dests  bool       `json:"destinationsChecked"`
}

// SignatureReport looks, without copying, for the signatures of every
// image of p at its source (a dry run of eng: manifests, tag list and
// referrers only) and, when checkDests, whether each destination holds the
// image and every attachment.
func SignatureReport(ctx context.Context, eng *engine.Engine, p plan.Plan, checkDests bool, parallel int) (*SigReport, error) {
	rep, err := eng.Run(ctx, p)
	if rep == nil {
		return nil, err
	}
	out := &SigReport{Images: make([]SigImage, len(rep.Items)), Dests: checkDests}
	g, gctx := errgroup.WithContext(ctx)
	if parallel <= 0 {
		parallel = 8
	}
	g.SetLimit(parallel)
	for i, it := range rep.Items {
		si := &out.Images[i]
		*si = SigImage{Source: it.Source.String(), Digest: it.Digest, Kind: it.Kind, Origin: it.Origin, Signed: it.Signed,
			Attachments: len(it.Attachments), Error: it.Error,
			Groups: groupsOf(Planned{Kind: it.Kind, Origin: it.Origin})}
		if !checkDests || it.Error != "" || it.Digest == "" {
			continue
		}
		g.Go(func() error {
			for _, d := range it.Dests {
				there, missing, err := eng.MissingAt(gctx, d.Ref, it.Digest, it.Attachments)
				if err != nil {
					si.Error = err.Error()
					return gctx.Err()
				}
				sd := SigDest{Ref: d.Ref.String(), ImagePresent: there}
				for _, m := range missing {
					name := m.Tag
					if m.Kind == engine.AttachReferrer {
						name = m.ArtifactType + " " + m.Digest
					}
					sd.Missing = append(sd.Missing, m.Kind+" "+name)
				}
				si.Dests = append(si.Dests, sd)
			}
			return gctx.Err()
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	groups := map[string]*SigGroup{}
	for _, si := range out.Images {
		missing := false
		for _, d := range si.Dests {
			missing = missing || !d.ImagePresent || len(d.Missing) > 0
		}
		count := func(g *SigGroup) {
			g.Images++
			switch {
			case si.Error != "":
				g.Errors++
			case si.Signed:
				g.Signed++
			default:
				g.Unsigned++
			}
			if missing {
				g.MissingAtDest++
			}
		}
		count(&out.Total)
		for _, name := range si.Groups {
			if groups[name] == nil {
				groups[name] = &SigGroup{Name: name}
			}
			count(groups[name])
		}
	}
	for _, g := range groups {
		out.Groups = append(out.Groups, *g)
	}
	sort.Slice(out.Groups, func(i, j int) bool { return out.Groups[i].Name < out.Groups[j].Name })
	out.Total.Name = "total"
	return out, nil
}

// Problems counts what makes `signatures report` exit non-zero: images
// that could not be read and attachments missing at a destination.
func (r *SigReport) Problems() error {
	if r.Total.Errors == 0 && r.Total.MissingAtDest == 0 {
		return nil
	}
	return fmt.Errorf("%d image(s) unreadable, %d image(s) missing signatures or the image itself at the destination", r.Total.Errors, r.Total.MissingAtDest)
}

// CollectPlan runs the collectors of a config and returns the images a
// mirror would copy (filtered catalogs, which a run rebuilds and nobody
// signed, are left out).
func CollectPlan(ctx context.Context, in *Input) (plan.Plan, error) {
	col, err := CollectAll(ctx, in)
	if err != nil {
		return plan.Plan{}, err
	}
	return col.Plan, nil
}
