package graph

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/blang/semver/v4"
)

// Channel is one channel selection, with the semantics of oc-mirror's
// ImageSetConfiguration platform.channels:
//   - Max empty: the channel head (highest version in the channel graph).
//   - Min empty: the channel's first version with Full, else Min = Max
//     (heads only).
//   - ShortestPath: only the releases on the upgrade path Min -> Max;
//     otherwise every release with Min <= version <= Max.
type Channel struct {
	Name         string `json:"name"`
	MinVersion   string `json:"minVersion,omitempty"`
	MaxVersion   string `json:"maxVersion,omitempty"`
	ShortestPath bool   `json:"shortestPath,omitempty"`
	Full         bool   `json:"full,omitempty"`
}

// Fetcher gets one channel's graph; *Client implements it.
type Fetcher interface {
	Fetch(ctx context.Context, channel, arch string) (*Graph, error)
}

// Release is one resolved release.
type Release struct {
	Version  string   `json:"version"`
	Payload  string   `json:"payload"`
	Channels []string `json:"channels,omitempty"`
	// UpgradePath is set for releases added only because they are on the
	// upgrade path between the selected channels.
	UpgradePath bool `json:"upgradePath,omitempty"`
	// Risks names the known risks of a conditional update into this
	// release on a computed path.
	Risks []string `json:"risks,omitempty"`
}

// ChannelResult says how one channel selection was resolved.
type ChannelResult struct {
	Name       string `json:"name"`
	Head       string `json:"head"`
	MinVersion string `json:"minVersion"`
	MaxVersion string `json:"maxVersion"`
	Path       []Step `json:"path,omitempty"`
}

// Result is a resolved selection.
type Result struct {
	Arch     string          `json:"arch"`
	Channels []ChannelResult `json:"channels"`
	// Releases are every selected release, sorted by version, deduplicated.
	Releases []Release `json:"releases"`
	// UpgradePath is the path from the lowest to the highest selected
	// version over the merged graphs of all channels (more than one channel).
	UpgradePath []Step   `json:"upgradePath,omitempty"`
	Warnings    []string `json:"warnings,omitempty"`
}

// Resolve resolves the channel selections for one architecture.
func Resolve(ctx context.Context, f Fetcher, arch string, channels []Channel) (*Result, error) {
	if len(channels) == 0 {
		return nil, fmt.Errorf("no channel given: name at least one channel, e.g. stable-4.13")
	}
	res := &Result{Arch: arch}
	byVersion := map[string]*Release{}
	add := func(version, payload, channel string, risks []string, path bool) {
		r, ok := byVersion[version]
		if !ok {
			r = &Release{Version: version, Payload: payload, UpgradePath: path}
			byVersion[version] = r
		}
		if channel != "" && !contains(r.Channels, channel) {
			r.Channels = append(r.Channels, channel)
			sort.Strings(r.Channels)
		}
		if !path {
			r.UpgradePath = false
		}
		for _, k := range risks {
			if !contains(r.Risks, k) {
				r.Risks = append(r.Risks, k)
			}
		}
	}
	var graphs []*Graph
	var lowest, highest *semver.Version
	seen := map[string]bool{}
	for _, ch := range channels {
		if seen[ch.Name] {
			return nil, fmt.Errorf("channel %s is given twice", ch.Name)
		}
		seen[ch.Name] = true
		g, err := f.Fetch(ctx, ch.Name, arch)
		if err != nil {
			return nil, err
		}
		graphs = append(graphs, g)
		cr, err := resolveChannel(g, ch)
		if err != nil {
			return nil, fmt.Errorf("channel %s: %w", ch.Name, err)
		}
		minV, maxV := semver.MustParse(cr.MinVersion), semver.MustParse(cr.MaxVersion)
		if strings.Contains(ch.Name, "eus") && maxV.Minor-minV.Minor >= 2 {
			res.Warnings = append(res.Warnings, fmt.Sprintf("channel %s: Extended Update Support range spans %d minor versions; EUS-to-EUS updates go through the odd minor release: check the path at https://access.redhat.com/labs/ocpupgradegraph/update_path", ch.Name, maxV.Minor-minV.Minor))
		}
		if lowest == nil || minV.LT(*lowest) {
			lowest = &minV
		}
		if highest == nil || maxV.GT(*highest) {
			highest = &maxV
		}
		if ch.ShortestPath {
			for _, s := range cr.Path {
				add(s.Version, s.Payload, ch.Name, s.Risks, false)
				if len(s.Risks) > 0 {
					res.Warnings = append(res.Warnings, fmt.Sprintf("channel %s: the path to %s uses a conditional update (risks: %s); check that your cluster is not exposed before updating", ch.Name, s.Version, strings.Join(s.Risks, ", ")))
				}
			}
		} else {
			for _, n := range g.Nodes {
				if n.Version.GTE(minV) && n.Version.LTE(maxV) {
					add(n.Version.String(), n.Payload, ch.Name, nil, false)
				}
			}
		}
		res.Channels = append(res.Channels, cr)
	}
	if len(channels) > 1 && !lowest.EQ(*highest) {
		// Clusters move between channels during an upgrade (stable-4.12 ->
		// stable-4.13), so the path is computed over the union of the
		// channel graphs rather than inside one channel.
		merged := Merge(graphs...)
		path, err := ShortestPath(merged, *lowest, *highest)
		if err != nil {
			res.Warnings = append(res.Warnings, fmt.Sprintf("no upgrade path across the selected channels: %v; the releases of each channel are still listed", err))
		} else {
			res.UpgradePath = path
			for _, s := range path {
				add(s.Version, s.Payload, "", s.Risks, true)
			}
		}
	}
	for _, r := range byVersion {
		res.Releases = append(res.Releases, *r)
	}
	sort.Slice(res.Releases, func(i, j int) bool {
		return semver.MustParse(res.Releases[i].Version).LT(semver.MustParse(res.Releases[j].Version))
	})
	return res, nil
}

func resolveChannel(g *Graph, ch Channel) (ChannelResult, error) {
	head := g.Head()
	cr := ChannelResult{Name: ch.Name, Head: head.String()}
	maxV := head
	if ch.MaxVersion != "" {
		v, err := semver.Parse(strings.TrimPrefix(ch.MaxVersion, "v"))
		if err != nil {
			return cr, fmt.Errorf("max version %q is not a semantic version (e.g. 4.13.10): %w", ch.MaxVersion, err)
		}
		maxV = v
	}
	minV := maxV
	switch {
	case ch.MinVersion != "":
		v, err := semver.Parse(strings.TrimPrefix(ch.MinVersion, "v"))
		if err != nil {
			return cr, fmt.Errorf("min version %q is not a semantic version (e.g. 4.13.0): %w", ch.MinVersion, err)
		}
		minV = v
	case ch.Full:
		minV = g.First()
	}
	if minV.GT(maxV) {
		return cr, fmt.Errorf("min version %s is above max version %s", minV, maxV)
	}
	cr.MinVersion, cr.MaxVersion = minV.String(), maxV.String()
	if ch.ShortestPath {
		p, err := ShortestPath(g, minV, maxV)
		if err != nil {
			return cr, err
		}
		cr.Path = p
		return cr, nil
	}
	for _, n := range g.Nodes {
		if n.Version.GTE(minV) && n.Version.LTE(maxV) {
			return cr, nil
		}
	}
	vs := g.Versions()
	return cr, fmt.Errorf("no release between %s and %s (the channel has %s to %s)", minV, maxV, vs[0], vs[len(vs)-1])
}

// Merge returns the union of graphs: nodes by version, edges and
// conditional edges by version pair.
func Merge(gs ...*Graph) *Graph {
	out := &Graph{}
	idx := map[string]int{}
	edges := map[[2]int]bool{}
	for _, g := range gs {
		for _, n := range g.Nodes {
			if _, ok := idx[n.Version.String()]; !ok {
				idx[n.Version.String()] = len(out.Nodes)
				out.Nodes = append(out.Nodes, n)
			}
		}
		for _, e := range g.Edges {
			k := [2]int{idx[g.Nodes[e[0]].Version.String()], idx[g.Nodes[e[1]].Version.String()]}
			if !edges[k] {
				edges[k] = true
				out.Edges = append(out.Edges, k)
			}
		}
		out.ConditionalEdges = append(out.ConditionalEdges, g.ConditionalEdges...)
	}
	return out
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
