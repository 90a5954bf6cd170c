package orchestrate

import (
	"context"
	"fmt"

	"github.com/airlock-mirror/airlock/internal/imageset"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/release"
	"github.com/airlock-mirror/airlock/internal/release/graph"
)

// ReleaseInfo is one release payload of the run.
type ReleaseInfo struct {
	Version      string  `json:"version"`
	Architecture string  `json:"architecture"`
	Source       ref.Ref `json:"source"`
	Digest       string  `json:"digest"`
	Dest         ref.Ref `json:"destination"`
}

// platformCollector collects mirror.platform: the releases the channels
// select in the update graph (and platform.release), each payload with
// every component image, named as oc-mirror v2 does
// (openshift/release-images:<version>-<arch>,
// openshift/release:<version>-<arch>-<component>).
type platformCollector struct{}

func (platformCollector) Section() string { return "platform" }

// graphArch is the update graph's name of an architecture.
var graphArch = map[string]string{"amd64": "amd64", "x86_64": "amd64", "arm64": "arm64", "aarch64": "arm64",
	"ppc64le": "ppc64le", "s390x": "s390x", "multi": "multi"}

func architectures(p imageset.Platform) ([]string, error) {
	var in []string
	in = append(in, p.Architectures...)
	for _, pl := range p.Platforms {
		in = append(in, pl.Architecture)
	}
	if len(in) == 0 {
		return []string{"amd64"}, nil
	}
	var out []string
	seen := map[string]bool{}
	for i, a := range in {
		g, ok := graphArch[a]
		if !ok {
			return nil, fmt.Errorf("architectures[%d] %q: want amd64, arm64, ppc64le, s390x or multi", i, a)
		}
		if !seen[g] {
			seen[g] = true
			out = append(out, g)
		}
	}
	return out, nil
}

func (platformCollector) Collect(ctx context.Context, in *Input) (*Collection, error) {
	p := in.Config.Mirror.Platform
	if len(p.Channels) == 0 && p.Release == "" {
		return nil, nil
	}
	col := &Collection{}
	type want struct {
		payload ref.Ref
		version string // from the graph; "" = the payload's own
		arch    string
		channel string
	}
	var wants []want
	if len(p.Channels) > 0 {
		arches, err := architectures(p)
		if err != nil {
			return nil, err
		}
		fetch := in.Graph
		if fetch == nil {
			fetch = &graph.Client{}
		}
		var chans []graph.Channel
		for _, c := range p.Channels {
			chans = append(chans, graph.Channel{Name: c.Name, MinVersion: c.MinVersion, MaxVersion: c.MaxVersion, ShortestPath: c.ShortestPath, Full: c.Full})
		}
		for _, arch := range arches {
			res, err := graph.Resolve(ctx, fetch, arch, chans)
			if err != nil {
				return nil, fmt.Errorf("resolving channels for %s: %w", arch, err)
			}
			for _, w := range res.Warnings {
				in.warn("%s", w)
			}
			for _, r := range res.Releases {
				pr, err := ref.Parse(r.Payload)
				if err != nil {
					return nil, fmt.Errorf("release %s: payload %q from the update graph: %w", r.Version, r.Payload, err)
				}
				wants = append(wants, want{payload: pr, version: r.Version, arch: arch})
			}
		}
	}
	if p.Release != "" {
		pr, err := ref.Parse(p.Release)
		if err != nil {
			return nil, fmt.Errorf("release %q: %w", p.Release, err)
		}
		if !pr.HasTagOrDigest() {
			return nil, fmt.Errorf("release %s: give a tag or digest", p.Release)
		}
		wants = append(wants, want{payload: pr})
	}
	for _, w := range wants {
		payload, desc, err := release.Open(ctx, in.Images, w.payload)
		if err != nil {
			return nil, fmt.Errorf("release %s: %w", w.payload, err)
		}
		pl := *payload
		if w.version != "" {
			// Named by the version the graph lists it under, as oc-mirror
			// tags it, even if the payload metadata says otherwise.
			pl.Version = w.version
		}
		spec := release.MirrorSpec{
			Layout: release.LayoutOCMirror, Release: w.payload.WithDigest(desc.Digest.String()), Payload: &pl,
			To: in.Root.Repo(), KeepManifestList: w.arch == "multi" || desc.MediaType.IsIndex(),
		}
		rp, err := release.PlanMirror(spec)
		if err != nil {
			return nil, fmt.Errorf("release %s: %w", pl.Version, err)
		}
		col.Items = append(col.Items, rp.Items...)
		col.Releases = append(col.Releases, ReleaseInfo{Version: pl.Version, Architecture: pl.Architecture,
			Source: w.payload, Digest: desc.Digest.String(), Dest: spec.ReleaseDestination()})
	}
	return col, nil
}
