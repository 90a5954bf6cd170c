package graph

import (
	"archive/tar"
	"fmt"
	"io"
	"maps"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/blang/semver/v4"
	"sigs.k8s.io/yaml"
)

// A disconnected mirror rarely holds a current Cincinnati graph, but it
// holds what Cincinnati builds one from: the release images, whose
// release-manifests/release-metadata lists the versions each release
// updates from ("previous", and rarely "next"), and, when it mirrors
// mirror.platform.graph, the graph-data image with the channels and the
// blocked edges. Build makes the update graph out of those, as the update
// service does.

// GraphImageRepo is where oc-mirror v2 and airlock put the graph-data
// image (tag latest); DataDir is where its layer holds the graph data.
const (
	GraphImageRepo = "openshift/graph-image"
	DataDir        = "var/lib/cincinnati-graph-data"
)

// MirroredRelease is one release image a mirror holds, as its
// release-metadata describes it.
type MirroredRelease struct {
	// Ref names the image in errors (repo:tag).
	Ref     string
	Version string
	// Payload is the image by digest (repo@sha256:...).
	Payload string
	// Previous and Next are the release-metadata lists: updates from each
	// Previous version to this one, and from this one to each Next.
	Previous []string
	Next     []string
}

// BlockedEdge is one file of the graph data's blocked-edges/: the updates
// to To from every version matching From (a regular expression over the
// whole version). Without matching rules the updates are removed; with
// them (a risk the cluster evaluates) they become conditional updates.
type BlockedEdge struct {
	File        string
	To          string
	From        string
	Conditional bool
	Risk        Risk

	from *regexp.Regexp
}

// Data is the graph data of a graph-data image: the versions of each
// channel and the blocked edges.
type Data struct {
	Source   string
	Channels map[string][]string
	Blocked  []BlockedEdge
}

// ReadData parses graph data: files maps paths relative to the graph-data
// root (channels/stable-4.13.yaml, blocked-edges/4.13.0-X.yaml) to their
// contents; other files are ignored. source names the data in errors.
func ReadData(files map[string][]byte, source string) (*Data, error) {
	d := &Data{Source: source, Channels: map[string][]string{}}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		dir, base := path.Split(n)
		if !strings.HasSuffix(base, ".yaml") && !strings.HasSuffix(base, ".yml") {
			continue
		}
		switch dir {
		case "channels/":
			var ch struct {
				Name     string   `json:"name"`
				Versions []string `json:"versions"`
			}
			if err := yaml.Unmarshal(files[n], &ch); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", source, n, err)
			}
			if ch.Name == "" {
				ch.Name = strings.TrimSuffix(strings.TrimSuffix(base, ".yaml"), ".yml")
			}
			d.Channels[ch.Name] = append(d.Channels[ch.Name], ch.Versions...)
		case "blocked-edges/":
			var b struct {
				To            string `json:"to"`
				From          string `json:"from"`
				URL           string `json:"url"`
				Name          string `json:"name"`
				Message       string `json:"message"`
				MatchingRules []any  `json:"matchingRules"`
			}
			if err := yaml.Unmarshal(files[n], &b); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", source, n, err)
			}
			if b.To == "" || b.From == "" {
				return nil, fmt.Errorf("%s: %s: a blocked edge needs to and from", source, n)
			}
			re, err := regexp.Compile("^(?:" + b.From + ")$")
			if err != nil {
				return nil, fmt.Errorf("%s: %s: from %q: %w", source, n, b.From, err)
			}
			d.Blocked = append(d.Blocked, BlockedEdge{File: n, To: b.To, From: b.From, from: re,
				Conditional: len(b.MatchingRules) > 0, Risk: Risk{Name: b.Name, URL: b.URL, Message: b.Message}})
		}
	}
	return d, nil
}

// Build makes the update graph of the mirrored releases: one node per
// version (the first release of a version gives the payload), an edge for
// each previous/next pair of the release metadata whose both ends are
// mirrored. With data, a channel restricts the nodes to its versions,
// and the blocked edges are removed (or made conditional when they carry
// matching rules). A channel without data, or one the data lacks, is an
// error.
func Build(rels []MirroredRelease, data *Data, channel string) (*Graph, error) {
	var inChannel map[string]bool
	if channel != "" {
		if data == nil {
			return nil, fmt.Errorf("channel %s: the mirror holds no graph-data image (%s) to read its versions from: mirror it (mirror.platform.graph: true) or give no channel", channel, GraphImageRepo)
		}
		vs, ok := data.Channels[channel]
		if !ok {
			return nil, fmt.Errorf("channel %s is not in the graph data of %s (%s)", channel, data.Source, nearChannels(data, channel))
		}
		inChannel = map[string]bool{}
		for _, v := range vs {
			if sv, err := semver.ParseTolerant(v); err == nil {
				inChannel[sv.String()] = true
			}
		}
	}
	g := &Graph{}
	idx := map[string]int{}
	for _, r := range rels {
		sv, err := semver.ParseTolerant(r.Version)
		if err != nil {
			return nil, fmt.Errorf("release %s: version %q in its release-metadata is not a semantic version: re-mirror the release image, or delete it", r.Ref, r.Version)
		}
		v := sv.String()
		if _, dup := idx[v]; dup || (inChannel != nil && !inChannel[v]) {
			continue
		}
		idx[v] = len(g.Nodes)
		g.Nodes = append(g.Nodes, Node{Version: sv, Payload: r.Payload})
	}
	edges := map[[2]int]bool{}
	add := func(from, to string) {
		a, aok := idx[canonical(from)]
		b, bok := idx[canonical(to)]
		if aok && bok && a != b {
			edges[[2]int{a, b}] = true
		}
	}
	for _, r := range rels {
		for _, p := range r.Previous {
			add(p, r.Version)
		}
		for _, n := range r.Next {
			add(r.Version, n)
		}
	}
	cond := map[string]*ConditionalEdge{} // blocked-edges file -> its conditional updates
	if data != nil {
		for e := range edges {
			from, to := g.Nodes[e[0]].Version.String(), g.Nodes[e[1]].Version.String()
			var risky []*BlockedEdge
			hard := false
			for i := range data.Blocked {
				b := &data.Blocked[i]
				if canonical(b.To) != to || !b.from.MatchString(from) {
					continue
				}
				if !b.Conditional {
					hard = true // blocked for every cluster: no conditional update either
					break
				}
				risky = append(risky, b)
			}
			if !hard && len(risky) == 0 {
				continue
			}
			delete(edges, e)
			if hard {
				continue
			}
			for _, b := range risky {
				ce := cond[b.File]
				if ce == nil {
					ce = &ConditionalEdge{Risks: []Risk{b.Risk}}
					cond[b.File] = ce
				}
				ce.Edges = append(ce.Edges, struct {
					From string `json:"from"`
					To   string `json:"to"`
				}{from, to})
			}
		}
	}
	for e := range edges {
		g.Edges = append(g.Edges, e)
	}
	sort.Slice(g.Edges, func(i, j int) bool {
		if g.Edges[i][0] != g.Edges[j][0] {
			return g.Edges[i][0] < g.Edges[j][0]
		}
		return g.Edges[i][1] < g.Edges[j][1]
	})
	for _, f := range slices.Sorted(maps.Keys(cond)) {
		ce := cond[f]
		sort.Slice(ce.Edges, func(i, j int) bool { return ce.Edges[i].From < ce.Edges[j].From })
		g.ConditionalEdges = append(g.ConditionalEdges, *ce)
	}
	return g, nil
}

// canonical is the semantic version string of v ("" if it is none).
func canonical(v string) string {
	sv, err := semver.ParseTolerant(v)
	if err != nil {
		return ""
	}
	return sv.String()
}

// nearChannels names the channels of the data that share the wanted
// channel's version suffix or prefix, or all when there are few.
func nearChannels(d *Data, want string) string {
	var all, near []string
	for c := range d.Channels {
		all = append(all, c)
	}
	sort.Strings(all)
	prefix, _, _ := strings.Cut(want, "-")
	_, suffix, _ := strings.Cut(want, "-")
	for _, c := range all {
		p, s, _ := strings.Cut(c, "-")
		if p == prefix || (suffix != "" && s == suffix) {
			near = append(near, c)
		}
	}
	if len(near) == 0 {
		near = all
	}
	if len(near) > 12 {
		near = append(near[:12], "...")
	}
	return "it has " + strings.Join(near, ", ")
}

// maxDataBytes bounds the graph data read from one tar stream (the real
// data is a few MiB).
const maxDataBytes = 256 << 20

// TarFiles returns the channels/ and blocked-edges/ files of a tar stream
// whose paths are under prefix ("" or DataDir; a leading "./" or "/" is
// ignored), keyed by their path below prefix. found says whether any
// entry was under prefix at all (a layer of the graph data).
func TarFiles(r io.Reader, prefix string) (files map[string][]byte, found bool, err error) {
	files = map[string][]byte{}
	prefix = strings.Trim(prefix, "/")
	tr := tar.NewReader(r)
	var total int64
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, found, nil
		}
		if err != nil {
			return nil, found, err
		}
		n := path.Clean(strings.TrimPrefix(strings.TrimPrefix(h.Name, "./"), "/"))
		if prefix != "" {
			if n != prefix && !strings.HasPrefix(n, prefix+"/") {
				continue
			}
			n = strings.TrimPrefix(strings.TrimPrefix(n, prefix), "/")
		}
		found = true
		dir, _ := path.Split(n)
		if h.Typeflag != tar.TypeReg || (dir != "channels/" && dir != "blocked-edges/") {
			continue
		}
		if total += h.Size; total > maxDataBytes {
			return nil, found, fmt.Errorf("more than %d MiB of graph data", maxDataBytes>>20)
		}
		b, err := io.ReadAll(io.LimitReader(tr, h.Size))
		if err != nil {
			return nil, found, fmt.Errorf("%s: %w", h.Name, err)
		}
		files[n] = b
	}
}
