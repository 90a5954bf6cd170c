package graph

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/airlock-mirror/airlock/internal/testutil/shared"
)

// realMetadata412 is the REAL release-metadata of 4.12.0: its previous
// list (4.11.11 ... 4.11.23, 4.12.0-rc.0 ... rc.8).
func realMetadata412(t *testing.T) MirroredRelease {
	t.Helper()
	data, err := os.ReadFile(shared.Path(t, "release", "ocp-4.12.0-x86_64", "release-manifests", "release-metadata"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Kind     string   `json:"kind"`
		Version  string   `json:"version"`
		Previous []string `json:"previous"`
	}
	if err := json.Unmarshal(data, &m); err != nil || m.Kind != "cincinnati-metadata-v0" || len(m.Previous) != 21 {
		t.Fatalf("real release-metadata: %v %+v", err, m)
	}
	return MirroredRelease{Ref: "openshift/release-images:4.12.0-x86_64", Version: m.Version, Payload: "openshift/release-images@sha256:" + strings.Repeat("0", 64), Previous: m.Previous}
}

// realGraphData is the REAL graph-data tarball's channels and blocked edges.
func realGraphData(t *testing.T, extra map[string][]byte) *Data {
	t.Helper()
	f, err := os.Open(shared.Path(t, "release", "cincinnati", "cincinnati-graph-data.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	files, found, err := TarFiles(zr, "")
	if err != nil || !found {
		t.Fatalf("graph data: %v (found %v)", err, found)
	}
	for k, v := range extra {
		files[k] = v
	}
	d, err := ReadData(files, "graph-image:latest")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func rel(v string, previous ...string) MirroredRelease {
	return MirroredRelease{Ref: "openshift/release-images:" + v + "-x86_64", Version: v, Payload: "openshift/release-images@sha256:" + fmt.Sprintf("%064x", len(v)*1000+len(previous)), Previous: previous}
}

// edgeList prints the graph's edges as "from->to", and conditional ones as
// "from->to?RISK,RISK", sorted.
func edgeList(g *Graph) []string {
	var out []string
	for _, e := range g.Edges {
		out = append(out, g.Nodes[e[0]].Version.String()+"->"+g.Nodes[e[1]].Version.String())
	}
	risks := map[string][]string{}
	for _, ce := range g.ConditionalEdges {
		for _, e := range ce.Edges {
			for _, r := range ce.Risks {
				risks[e.From+"->"+e.To] = append(risks[e.From+"->"+e.To], r.Name)
			}
		}
	}
	for e, rs := range risks {
		sort.Strings(rs)
		out = append(out, e+"?"+strings.Join(rs, ","))
	}
	sort.Strings(out)
	return out
}

// TestBuildFromReleaseMetadata: the edges are the previous lists of the
// mirrored releases, only between mirrored releases (4.12.0's real list
// names 21 versions, two of them mirrored here).
func TestBuildFromReleaseMetadata(t *testing.T) {
	rels := []MirroredRelease{rel("4.11.20"), rel("4.11.22", "4.11.20"), rel("4.12.0-rc.8"), realMetadata412(t), rel("4.12.1", "4.11.22", "4.12.0"), rel("4.12.10", "4.12.0", "4.12.1"), rel("4.12.12", "4.12.10")}
	g, err := Build(rels, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"4.11.20->4.11.22", "4.11.20->4.12.0", "4.11.22->4.12.0", "4.11.22->4.12.1", "4.12.0->4.12.1", "4.12.0->4.12.10", "4.12.0-rc.8->4.12.0", "4.12.1->4.12.10", "4.12.10->4.12.12"}
	if got := edgeList(g); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("edges\n got %v\nwant %v", got, want)
	}
	if len(g.Nodes) != 7 || g.Head().String() != "4.12.12" || g.Nodes[3].Payload != rels[3].Payload {
		t.Errorf("nodes %+v", g.Nodes)
	}
	// A version listed twice (another architecture's copy) is one node.
	dup := rel("4.12.12", "4.12.10")
	dup.Payload = "openshift/release-images@sha256:" + strings.Repeat("f", 64)
	if g2, err := Build(append(rels, dup), nil, ""); err != nil || len(g2.Nodes) != 7 || len(g2.Edges) != len(g.Edges) {
		t.Errorf("duplicate version: %v, %d nodes", err, len(g2.Nodes))
	}
}

// TestBuildWithGraphData: with the REAL graph data, a channel keeps its
// own releases only (4.12.0-rc.8 is not in stable-4.12), the real blocked
// edges with matching rules make updates conditional with their risks
// (4.11 -> 4.12.0 OldBootImagesPodmanMissingAuthFlag, 4.12.10 -> 4.12.12
// PatchesOlderRelease, ...), and a blocked edge without rules removes the
// update.
func TestBuildWithGraphData(t *testing.T) {
	d := realGraphData(t, map[string][]byte{
		"blocked-edges/4.12.10-Test.yaml": []byte("to: 4.12.10\nfrom: 4[.]12[.]1\nurl: https://example.com\nname: Test\nmessage: test\n"),
	})
	if len(d.Channels["stable-4.12"]) != 96 || len(d.Blocked) < 500 {
		t.Fatalf("real graph data: %d stable-4.12 versions, %d blocked edges", len(d.Channels["stable-4.12"]), len(d.Blocked))
	}
	rels := []MirroredRelease{rel("4.11.20"), rel("4.11.22", "4.11.20"), rel("4.12.0-rc.8"), realMetadata412(t), rel("4.12.1", "4.11.22", "4.12.0"), rel("4.12.10", "4.12.0", "4.12.1"), rel("4.12.12", "4.12.10")}
	g, err := Build(rels, d, "stable-4.12")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"4.11.20->4.11.22",
		"4.11.20->4.12.0?OldBootImagesPodmanMissingAuthFlag",
		"4.11.22->4.12.0?OldBootImagesPodmanMissingAuthFlag",
		"4.11.22->4.12.1?ConsoleAvailableUpdatesNull,OVNCrashOnMigratedDualStack,OldBootImagesPodmanMissingAuthFlag",
		"4.12.0->4.12.10",
		"4.12.0->4.12.1?ConsoleAvailableUpdatesNull,OVNCrashOnMigratedDualStack",
		"4.12.10->4.12.12?PatchesOlderRelease",
	}
	if got := edgeList(g); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("edges\n got %v\nwant %v", got, want)
	}
	if len(g.Nodes) != 6 {
		t.Errorf("%d nodes, want 6 (no 4.12.0-rc.8 in stable-4.12)", len(g.Nodes))
	}
	// The shortest path 4.11.20 -> 4.12.12 avoids no conditional hop here,
	// so it takes them and names the risks.
	steps, err := ShortestPath(g, g.Nodes[0].Version, g.Head())
	if err != nil || len(steps) != 4 || steps[1].Version != "4.12.0" || len(steps[3].Risks) != 1 {
		t.Errorf("path %+v, %v", steps, err)
	}

	// Without a channel every mirrored release is a node; the blocked
	// edges still apply (none of the real ones blocks rc.8 -> 4.12.0).
	all, err := Build(rels, d, "")
	if err != nil || len(all.Nodes) != 7 {
		t.Fatalf("no channel: %v, %d nodes", err, len(all.Nodes))
	}
	if got := strings.Join(edgeList(all), " "); strings.Contains(got, "4.12.1->4.12.10") || !strings.Contains(got, "4.12.0-rc.8->4.12.0 ") {
		t.Errorf("no channel: %s", got)
	}
}

// TestBuildRealGraphRoundTrip: previous lists made from the REAL
// stable-4.13 graph (every update into a release, recommended or
// conditional, as release metadata lists them) give back its edges.
func TestBuildRealGraphRoundTrip(t *testing.T) {
	real := loadRealGraph(t)
	prev := map[string][]string{}
	want := map[string]bool{}
	for _, e := range real.Edges {
		a, b := real.Nodes[e[0]].Version.String(), real.Nodes[e[1]].Version.String()
		prev[b] = append(prev[b], a)
		want[a+"->"+b] = true
	}
	for _, ce := range real.ConditionalEdges {
		for _, e := range ce.Edges {
			if !want[e.From+"->"+e.To] {
				prev[e.To] = append(prev[e.To], e.From)
				want[e.From+"->"+e.To] = true
			}
		}
	}
	var rels []MirroredRelease
	for _, n := range real.Nodes {
		rels = append(rels, MirroredRelease{Ref: n.Version.String(), Version: n.Version.String(), Payload: n.Payload, Previous: prev[n.Version.String()]})
	}
	g, err := Build(rels, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Nodes) != len(real.Nodes) || len(g.Edges) != len(want) {
		t.Fatalf("%d nodes, %d edges; want %d, %d", len(g.Nodes), len(g.Edges), len(real.Nodes), len(want))
	}
	for _, e := range edgeList(g) {
		if !want[e] {
			t.Errorf("edge %s is not in the real graph", e)
		}
	}
}

func TestBuildErrors(t *testing.T) {
	d := realGraphData(t, nil)
	cases := []struct {
		rels    []MirroredRelease
		data    *Data
		channel string
		want    string
	}{
		{[]MirroredRelease{rel("4.12.0")}, nil, "stable-4.12", "the mirror holds no graph-data image (openshift/graph-image)"},
		{[]MirroredRelease{rel("4.12.0")}, d, "stable-4.99", "channel stable-4.99 is not in the graph data of graph-image:latest (it has stable-4.1, stable-4.10"},
		{[]MirroredRelease{{Ref: "openshift/release-images:bad", Version: "four"}}, nil, "", `release openshift/release-images:bad: version "four"`},
	}
	for _, c := range cases {
		if _, err := Build(c.rels, c.data, c.channel); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.channel, err, c.want)
		}
	}
	if _, err := ReadData(map[string][]byte{"blocked-edges/x.yaml": []byte("to: 4.1.0\nfrom: '('\n")}, "img"); err == nil || !strings.Contains(err.Error(), "img: blocked-edges/x.yaml: from") {
		t.Errorf("bad regexp: %v", err)
	}
}
