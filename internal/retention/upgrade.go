package retention

import (
	"fmt"
	"sort"
	"strings"

	"github.com/blang/semver/v4"

	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/regscan"
	"github.com/airlock-mirror/airlock/internal/release/graph"
)

// UpgradePath keeps, of the OpenShift release images in the registry, the
// ones clusters at From still need to reach the channel head, per an
// update graph; the other releases go, and with them the component images
// no kept release (or anything else kept) names.
type UpgradePath struct {
	// Graph is the Cincinnati update graph of the clusters' channel and
	// architecture; Source names it in reasons and errors (a file name).
	Graph  *graph.Graph
	Source string
	// From are the clusters' current versions.
	From []semver.Version
	// AnyPath keeps every release on any upgrade path From -> head,
	// conditional updates included; otherwise only the shortest path
	// (graph.ShortestPath, oc-mirror's shortestPath) is kept.
	AnyPath bool
	// Warnings came with the graph (BuildMirrorGraph's); the decision
	// repeats them.
	Warnings []string
}

// ReleaseDecision says what the upgrade-path policy does to one release
// image of the registry, and why.
type ReleaseDecision struct {
	Ref     string `json:"release"`
	Digest  string `json:"digest"`
	Version string `json:"version"`
	Keep    bool   `json:"keep"`
	Reason  string `json:"reason"`

	repo string
}

// pathPlan is the resolved policy: version -> why it is kept, and the
// payload digest of each graph node (releases are matched by digest
// first: a retagged release keeps its digest).
type pathPlan struct {
	keep     map[string]string // version -> reason
	byDigest map[string]string // payload digest -> version
	inGraph  map[string]bool   // versions of the graph
	head     string
	source   string
	warnings []string
}

// version is the graph version of a release of the snapshot: by payload
// digest, else by the version its metadata gives ("" if neither is in the
// graph).
func (pp *pathPlan) version(r *regscan.Release) string {
	if v := pp.byDigest[r.Digest]; v != "" {
		return v
	}
	// Another architecture's graph, or a payload mirrored as a single
	// platform of a multi graph: the version still identifies it.
	if sv, err := semver.ParseTolerant(r.Version); err == nil && pp.inGraph[sv.String()] {
		return sv.String()
	}
	return ""
}

// plan resolves the policy against the releases s holds. Paths are
// computed through the mirrored releases only: a path through a release
// the mirror lacks cannot be travelled from it, and keeping its other
// steps would keep a useless path while dropping a usable one.
func (u *UpgradePath) plan(s *regscan.Snapshot) (*pathPlan, error) {
	if u.Graph == nil || len(u.Graph.Nodes) == 0 {
		return nil, fmt.Errorf("update graph %s has no releases: give the graph of the clusters' channel and architecture (--graph)", u.Source)
	}
	if len(u.From) == 0 {
		return nil, fmt.Errorf("no current cluster version given for the upgrade path")
	}
	pp := &pathPlan{keep: map[string]string{}, byDigest: map[string]string{}, inGraph: map[string]bool{}, source: u.Source,
		warnings: append([]string(nil), u.Warnings...)}
	for _, n := range u.Graph.Nodes {
		pp.inGraph[n.Version.String()] = true
		if r, err := ref.Parse(n.Payload); err == nil && r.Digest != "" {
			pp.byDigest[r.Digest] = n.Version.String()
		}
	}
	graphHead := u.Graph.Head()
	mirrored := map[string]bool{}
	for _, r := range s.Releases {
		if v := pp.version(r); v != "" && r.Error == "" {
			mirrored[v] = true
		}
	}
	for _, from := range u.From {
		if !pp.inGraph[from.String()] {
			return nil, fmt.Errorf("current version %s is not in the update graph %s (head %s): give the version 'oc get clusterversion' shows and the graph of that cluster's channel and architecture", from, u.Source, graphHead)
		}
	}
	// The head is the channel's; when the mirror does not hold it yet
	// (the next mirror run brings it), paths end at the highest release
	// the mirror holds.
	head := graphHead
	if !mirrored[graphHead.String()] {
		var best *semver.Version
		for v := range mirrored {
			sv := semver.MustParse(v)
			if best == nil || sv.GT(*best) {
				best = &sv
			}
		}
		if best == nil {
			return nil, fmt.Errorf("the registry holds none of the releases of the update graph %s (head %s): is it the graph of the mirrored channel and architecture?", u.Source, graphHead)
		}
		head = *best
		pp.warnings = append(pp.warnings, fmt.Sprintf("the channel head %s of %s is not in the registry: upgrade paths end at %s, the highest release it holds", graphHead, u.Source, head))
	}
	pp.head = head.String()
	pp.keep[pp.head] = "the channel head of " + u.Source
	if !head.Equals(graphHead) {
		pp.keep[pp.head] = "the highest release of " + u.Source + " in the registry"
	}
	sub := map[string]bool{}
	for v := range mirrored {
		sub[v] = true
	}
	for _, from := range u.From {
		sub[from.String()] = true // the cluster runs it: the mirror need not hold it
	}
	g := u.Graph.Only(sub)
	for _, from := range u.From {
		if from.GT(head) {
			return nil, fmt.Errorf("current version %s is above %s, the head the registry holds of %s: mirror the newer releases first", from, head, u.Source)
		}
		var steps []graph.Step
		var err error
		kind := "the shortest upgrade path"
		if u.AnyPath {
			steps, err = graph.OnAnyPath(g, from, head)
			kind = "an upgrade path"
		} else {
			steps, err = graph.ShortestPath(g, from, head)
		}
		if err != nil {
			// Say what the full graph would need, so the fix is clear.
			hint := ""
			if full, ferr := graph.ShortestPath(u.Graph, from, head); ferr == nil {
				var vs []string
				for _, st := range full {
					vs = append(vs, st.Version)
				}
				hint = fmt.Sprintf("; the graph's path is %s: mirror the missing releases", strings.Join(vs, " -> "))
			}
			return nil, fmt.Errorf("no upgrade path from %s to %s through the releases the registry holds (%s), nothing pruned%s", from, head, u.Source, hint)
		}
		for _, st := range steps {
			if _, ok := pp.keep[st.Version]; !ok {
				pp.keep[st.Version] = fmt.Sprintf("on %s %s -> %s", kind, from, pp.head)
			}
		}
	}
	for _, from := range u.From {
		pp.keep[from.String()] = "a current cluster version"
	}
	return pp, nil
}

// decide gives the verdict on one release of the snapshot.
func (pp *pathPlan) decide(r *regscan.Release) ReleaseDecision {
	d := ReleaseDecision{Ref: r.Ref(), Digest: r.Digest, Version: r.Version, repo: r.Repo}
	v := pp.version(r)
	switch {
	case r.Error != "":
		d.Keep, d.Reason = true, "its payload could not be read, so its components are unknown: kept ("+r.Error+")"
	case v == "":
		d.Keep, d.Reason = true, fmt.Sprintf("version %q is not in the update graph %s: kept, the graph cannot tell whether it is on a path", r.Version, pp.source)
	case pp.keep[v] != "":
		d.Keep, d.Reason = true, pp.keep[v]
	default:
		d.Reason = fmt.Sprintf("release %s is not on the upgrade path to %s in %s", v, pp.head, pp.source)
	}
	return d
}

// componentCopies returns, for the images of deleted releases, the copies
// (repo@digest) to delete with the reason: a copy goes unless a kept
// release, bundle or rule still needs it, or a tag other than a component
// tag of a deleted release (<release tag>-<component>, as release mirrors
// name them) holds it.
func componentCopies(s *regscan.Snapshot, deleted []*regscan.Release, neededDigest map[string]bool, keep func(repo, digest string) bool) map[string]string {
	prefixes := make([]string, 0, len(deleted))
	for _, r := range deleted {
		prefixes = append(prefixes, r.Tag+"-")
	}
	componentTag := func(t string) bool {
		for _, p := range prefixes {
			if strings.HasPrefix(t, p) {
				return true
			}
		}
		return false
	}
	// Where each digest is held, indexed once: a registry holds thousands
	// of tags and every release names ~180 components.
	type copyOf struct {
		repo string
		tags []string
	}
	held := map[string][]*copyOf{} // digest -> copies
	for _, repo := range s.Repos {
		here := map[string]*copyOf{}
		at := func(d string) *copyOf {
			c := here[d]
			if c == nil {
				c = &copyOf{repo: repo.Name}
				here[d] = c
				held[d] = append(held[d], c)
			}
			return c
		}
		for _, t := range repo.Tags {
			c := at(t.Digest)
			c.tags = append(c.tags, t.Name)
		}
		for _, m := range repo.Untagged {
			at(m.Digest)
		}
	}
	out := map[string]string{}
	for _, rel := range deleted {
		for _, c := range rel.Components {
			r, err := ref.Parse(c.Image)
			if err != nil || r.Digest == "" || neededDigest[r.Digest] {
				continue
			}
		copies:
			for _, cp := range held[r.Digest] {
				for _, t := range cp.tags {
					if !componentTag(t) {
						continue copies // another tag holds it
					}
				}
				key := cp.repo + "@" + r.Digest
				if keep(cp.repo, r.Digest) {
					continue
				}
				if _, ok := out[key]; !ok {
					out[key] = fmt.Sprintf("component %s of release %s (%s), which goes, and of no kept release", c.Name, rel.Ref(), rel.Version)
				}
			}
		}
	}
	return out
}

func sortReleaseDecisions(ds []ReleaseDecision) {
	sort.Slice(ds, func(i, j int) bool {
		a, aerr := semver.ParseTolerant(ds[i].Version)
		b, berr := semver.ParseTolerant(ds[j].Version)
		if aerr == nil && berr == nil && !a.EQ(b) {
			return a.LT(b)
		}
		return ds[i].Ref < ds[j].Ref
	})
}
