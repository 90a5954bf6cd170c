package orchestrate

import (
	"context"
	"errors"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/airlock-mirror/airlock/internal/imageset"
	"github.com/airlock-mirror/airlock/internal/plan"
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
		if p.KubeVirtContainer {
			it, err := kubeVirtItem(ctx, in, w.payload.WithDigest(desc.Digest.String()), desc, spec)
			switch {
			case errors.Is(err, release.ErrNoKubeVirt) || errors.Is(err, errKubeVirtMulti):
				// As oc-mirror: the release is still mirrored, the disk is not.
				in.warn("mirror.platform.kubeVirtContainer: release %s: %v", pl.Version, err)
			case err != nil:
				return nil, fmt.Errorf("release %s: kubeVirtContainer: %w", pl.Version, err)
			default:
				col.Items = append(col.Items, it)
			}
		}
		col.Releases = append(col.Releases, ReleaseInfo{Version: pl.Version, Architecture: pl.Architecture,
			Source: w.payload, Digest: desc.Digest.String(), Dest: spec.ReleaseDestination()})
	}
	return col, nil
}

// KubeVirtComponent is the component name the KubeVirt container disk is
// mirrored under: openshift/release:<version>-<arch>-kube-virt-container,
// beside the payload's own components.
const KubeVirtComponent = "kube-virt-container"

var errKubeVirtMulti = errors.New("a multi-architecture payload: its KubeVirt container disks are not collected (give the architectures instead of multi)")

// kubeVirtItem is the copy of the KubeVirt container disk the payload's
// coreos-bootimages file names (mirror.platform.kubeVirtContainer).
func kubeVirtItem(ctx context.Context, in *Input, pinned ref.Ref, desc v1.Descriptor, spec release.MirrorSpec) (plan.Item, error) {
	if desc.MediaType.IsIndex() {
		return plan.Item{}, errKubeVirtMulti
	}
	img, err := in.Images.Image(ctx, pinned)
	if err != nil {
		return plan.Item{}, fmt.Errorf("reading %s: %w", pinned, err)
	}
	data, err := release.ReadFile(img, release.BootImagesPath)
	if err != nil {
		return plan.Item{}, fmt.Errorf("%s: %w", pinned, err)
	}
	if data == nil {
		return plan.Item{}, fmt.Errorf("%w: the payload has no %s", release.ErrNoKubeVirt, release.BootImagesPath)
	}
	name, err := release.KubeVirtImage(data, spec.Payload.Architecture)
	if err != nil {
		return plan.Item{}, err
	}
	src, err := ref.Parse(name)
	if err != nil {
		return plan.Item{}, fmt.Errorf("%s names the KubeVirt disk %q: %w", release.BootImagesPath, name, err)
	}
	dest := in.Root.Repo()
	dest.Path = strings.Trim(strings.TrimSuffix(dest.Path, "/")+"/"+release.OCMirrorComponentRepo, "/")
	dest.Tag = spec.TagPrefix() + "-" + KubeVirtComponent
	return plan.Item{Source: src.ByDigest(src.Digest), Dests: []ref.Ref{dest}, Kind: plan.KindReleaseComponent, Digest: src.Digest,
		Origin: plan.Origin{Release: spec.Payload.Version, Component: KubeVirtComponent}}, nil
}
