package orchestrate

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/airlock-mirror/airlock/internal/catalog"
	"github.com/airlock-mirror/airlock/internal/imageset"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/release/graph"
)

// CheckSources checks a parsed config against what it names: every
// catalog is opened and each selected package, channel and default channel
// looked up, and each release channel is resolved in the update graph.
// oc-mirror finds an unknown package only in the disk-to-mirror half
// (OCPBUGS-52588), after hours of copying; this finds it before anything
// is copied. Every problem names the file, line and field path.
func CheckSources(ctx context.Context, cfg *imageset.ImageSetConfiguration, imgs Images, g graph.Fetcher) imageset.Problems {
	var ps imageset.Problems
	for i, op := range cfg.Mirror.Operators {
		ps = append(ps, checkCatalog(ctx, cfg, fmt.Sprintf("mirror.operators[%d]", i), op, imgs)...)
	}
	p := cfg.Mirror.Platform
	if len(p.Channels) > 0 {
		arches, err := architectures(p)
		if err != nil {
			return append(ps, cfg.ProblemAt("mirror.platform", "%v", err))
		}
		if g == nil {
			g = &graph.Client{}
		}
		for i, c := range p.Channels {
			ch := graph.Channel{Name: c.Name, MinVersion: c.MinVersion, MaxVersion: c.MaxVersion, ShortestPath: c.ShortestPath, Full: c.Full}
			for _, arch := range arches {
				res, err := graph.Resolve(ctx, g, arch, []graph.Channel{ch})
				path := fmt.Sprintf("mirror.platform.channels[%d]", i)
				switch {
				case err != nil:
					ps = append(ps, cfg.ProblemAt(path, "channel %s (%s): %v", c.Name, arch, err))
				case len(res.Releases) == 0:
					ps = append(ps, cfg.ProblemAt(path, "channel %s (%s) selects no release", c.Name, arch))
				}
			}
		}
	}
	return ps
}

func checkCatalog(ctx context.Context, cfg *imageset.ImageSetConfiguration, path string, op imageset.Operator, imgs Images) imageset.Problems {
	at := func(p, format string, a ...any) imageset.Problems {
		return imageset.Problems{cfg.ProblemAt(p, format, a...)}
	}
	src, err := ref.Parse(op.Catalog)
	if err != nil {
		return at(path+".catalog", "%v", err)
	}
	if src.Transport == ref.Docker && !src.HasTagOrDigest() {
		return at(path+".catalog", "give a tag or digest, e.g. %s:v4.18", op.Catalog)
	}
	desc, err := imgs.Resolve(ctx, src)
	if err != nil {
		return at(path+".catalog", "catalog %s: %v", op.Catalog, err)
	}
	pinned := src
	if src.Transport == ref.Docker {
		pinned = src.ByDigest(desc.Digest.String())
	}
	cat, err := catalog.Load(ctx, WithTransport(pinned), PlatformOpener(imgs, platformFilter(op.Platforms)))
	if err != nil {
		return at(path+".catalog", "catalog %s: %v", op.Catalog, err)
	}
	var ps imageset.Problems
	bundles := map[string]bool{}
	for _, b := range cat.Config.Bundles {
		bundles[b.Package+"/"+b.Name] = true
	}
	channels := map[string][]string{}
	for _, ch := range cat.Config.Channels {
		channels[ch.Package] = append(channels[ch.Package], ch.Name)
	}
	for j, pkg := range op.Packages {
		ppath := fmt.Sprintf("%s.packages[%d]", path, j)
		if cat.Package(pkg.Name) == nil {
			ps = append(ps, cfg.ProblemAt(ppath+".name", "package %q is not in catalog %s%s", pkg.Name, op.Catalog, closest(pkg.Name, packageNames(cat))))
			continue
		}
		have := channels[pkg.Name]
		sort.Strings(have)
		for k, ch := range pkg.Channels {
			if !contains(have, ch.Name) {
				ps = append(ps, cfg.ProblemAt(fmt.Sprintf("%s.channels[%d].name", ppath, k), "package %s has no channel %q in catalog %s (channels: %s)", pkg.Name, ch.Name, op.Catalog, strings.Join(have, ", ")))
			}
		}
		for k, b := range pkg.Bundles {
			if !bundles[pkg.Name+"/"+b.Name] {
				ps = append(ps, cfg.ProblemAt(fmt.Sprintf("%s.bundles[%d].name", ppath, k), "package %s has no bundle %q in catalog %s", pkg.Name, b.Name, op.Catalog))
			}
		}
		if pkg.DefaultChannel != "" && !contains(have, pkg.DefaultChannel) {
			ps = append(ps, cfg.ProblemAt(ppath+".defaultChannel", "package %s has no channel %q in catalog %s (channels: %s)", pkg.Name, pkg.DefaultChannel, op.Catalog, strings.Join(have, ", ")))
		}
	}
	if len(ps) > 0 || (op.Full && len(op.Packages) == 0) {
		return ps
	}
	// Names are right; does the selection select something (a version
	// range with no bundle, a default channel filtered away)?
	if _, _, err := catalog.Filter(ctx, cat, op); err != nil {
		ps = append(ps, cfg.ProblemAt(path, "catalog %s: %v", op.Catalog, err))
	}
	return ps
}

func packageNames(cat *catalog.Catalog) []string {
	names := make([]string, len(cat.Config.Packages))
	for i, p := range cat.Config.Packages {
		names[i] = p.Name
	}
	return names
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// closest suggests the names that contain or are contained in name, for a
// typo or a renamed package ("elasticsearch" for "elasticsearch-operator").
func closest(name string, have []string) string {
	var near []string
	l := strings.ToLower(name)
	for _, h := range have {
		hl := strings.ToLower(h)
		if strings.Contains(hl, l) || strings.Contains(l, hl) {
			near = append(near, h)
		}
	}
	sort.Strings(near)
	if len(near) > 5 {
		near = near[:5]
	}
	if len(near) == 0 {
		return fmt.Sprintf(" (%d packages; list them with `airlock catalog packages`)", len(have))
	}
	return "; similar: " + strings.Join(near, ", ")
}
