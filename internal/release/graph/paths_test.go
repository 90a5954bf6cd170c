package graph

import (
	"os"
	"strings"
	"testing"

	"github.com/blang/semver/v4"
)

func loadRealGraph(t *testing.T) *Graph {
	t.Helper()
	data, err := os.ReadFile(realGraphPath())
	if err != nil {
		t.Fatalf("real graph missing: %v", err)
	}
	g, err := Parse(data, "graph")
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// Counts checked independently (a reachability walk over the JSON's edges
// and conditional edges in a separate script): 43 releases lie on some
// path 4.12.40 -> 4.13.43, 14 on 4.13.30 -> 4.13.43.
func TestOnAnyPathRealGraph(t *testing.T) {
	g := loadRealGraph(t)
	head := semver.MustParse("4.13.43")
	for from, want := range map[string]int{"4.12.40": 43, "4.13.30": 14, "4.13.43": 1} {
		steps, err := OnAnyPath(g, semver.MustParse(from), head)
		if err != nil {
			t.Fatal(err)
		}
		if len(steps) != want || steps[0].Version != from || steps[len(steps)-1].Version != "4.13.43" {
			t.Errorf("from %s: %d releases %v, want %d from %s to the head", from, len(steps), steps, want, from)
		}
	}
	if _, err := OnAnyPath(g, head, semver.MustParse("4.12.0")); err == nil || !strings.Contains(err.Error(), "no upgrade path") {
		t.Errorf("downgrade: err %v", err)
	}
}

// Only keeps the edges among the chosen releases: 4.12.10 -> 4.12.30 ->
// 4.13.43 in the real graph (no direct 4.12.10 -> 4.13.43 edge), so the
// shortest path through them has three steps.
func TestOnlyRestrictsEdges(t *testing.T) {
	g := loadRealGraph(t).Only(map[string]bool{"4.12.10": true, "4.12.30": true, "4.13.43": true})
	if len(g.Nodes) != 3 || len(g.Edges) != 2 || len(g.ConditionalEdges) != 0 {
		t.Fatalf("restricted graph: %d nodes, %d edges, %d conditional", len(g.Nodes), len(g.Edges), len(g.ConditionalEdges))
	}
	p, err := ShortestPath(g, semver.MustParse("4.12.10"), semver.MustParse("4.13.43"))
	if err != nil || len(p) != 3 || p[1].Version != "4.12.30" {
		t.Errorf("path %v, %v", p, err)
	}
}
