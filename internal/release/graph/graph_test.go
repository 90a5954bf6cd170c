package graph

import (
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/blang/semver/v4"
)

var update = flag.Bool("update", false, "rewrite golden files")

func realGraphPath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "shared", "testdata", "release", "cincinnati", "graph-amd64-stable-4.13.json")
}

// serveRealGraph serves the REAL recorded stable-4.13 amd64 graph the way
// the Cincinnati API does, and a stable-4.12 graph derived from it (its
// 4.12 nodes and the edges among them) so channel merging can be tested on
// real data. Any other channel or arch is a 400, as the real API answers.
func serveRealGraph(t *testing.T) (*httptest.Server, *int) {
	t.Helper()
	data, err := os.ReadFile(realGraphPath())
	if err != nil {
		t.Fatalf("real graph missing: %v", err)
	}
	g, err := Parse(data, "graph")
	if err != nil {
		t.Fatal(err)
	}
	sub := &Graph{}
	old := map[int]int{}
	for i, n := range g.Nodes {
		if n.Version.Minor == 12 {
			old[i] = len(sub.Nodes)
			sub.Nodes = append(sub.Nodes, n)
		}
	}
	for _, e := range g.Edges {
		a, ok1 := old[e[0]]
		b, ok2 := old[e[1]]
		if ok1 && ok2 {
			sub.Edges = append(sub.Edges, [2]int{a, b})
		}
	}
	sub412, _ := json.Marshal(sub)
	requests := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests++
		if r.Header.Get("Accept") != "application/json" || r.URL.Query().Get("arch") != "amd64" {
			http.Error(w, `{"kind":"invalid_params","value":"bad arch or accept"}`, http.StatusBadRequest)
			return
		}
		switch r.URL.Query().Get("channel") {
		case "stable-4.13":
			w.Write(data)
		case "stable-4.12":
			w.Write(sub412)
		default:
			http.Error(w, `{"kind":"invalid_params","value":"unknown channel"}`, http.StatusBadRequest)
		}
	}))
	t.Cleanup(srv.Close)
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("test server not on 127.0.0.1: %s", srv.URL)
	}
	return srv, &requests
}

func golden(t *testing.T, name string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", name+".golden.json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update once to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from golden file %s:\n%s", name, path, got)
	}
}

func versions(r *Result) []string {
	var out []string
	for _, x := range r.Releases {
		out = append(out, x.Version)
	}
	return out
}

func TestResolveRealGraph(t *testing.T) {
	srv, _ := serveRealGraph(t)
	c := &Client{URL: srv.URL + "/api/upgrades_info/v1/graph"}
	tests := []struct {
		name     string
		channels []Channel
		check    func(t *testing.T, r *Result)
	}{
		{"head", []Channel{{Name: "stable-4.13"}}, func(t *testing.T, r *Result) {
			if v := versions(r); len(v) != 1 || v[0] != "4.13.43" {
				t.Errorf("head = %v, want [4.13.43]", v)
			}
		}},
		{"range", []Channel{{Name: "stable-4.13", MinVersion: "4.13.38", MaxVersion: "4.13.41"}}, func(t *testing.T, r *Result) {
			if v := strings.Join(versions(r), ","); v != "4.13.38,4.13.39,4.13.40,4.13.41" {
				t.Errorf("range = %s", v)
			}
		}},
		{"min-to-head", []Channel{{Name: "stable-4.13", MinVersion: "4.13.40"}}, func(t *testing.T, r *Result) {
			if v := strings.Join(versions(r), ","); v != "4.13.40,4.13.41,4.13.42,4.13.43" {
				t.Errorf("min to head = %s", v)
			}
		}},
		{"full", []Channel{{Name: "stable-4.13", Full: true}}, func(t *testing.T, r *Result) {
			if len(r.Releases) != 98 || r.Releases[0].Version != "4.12.0" || r.Releases[97].Version != "4.13.43" {
				t.Errorf("full: %d releases %s..%s, want all 98 from 4.12.0 to 4.13.43", len(r.Releases), r.Releases[0].Version, r.Releases[len(r.Releases)-1].Version)
			}
		}},
		{"shortest-path", []Channel{{Name: "stable-4.13", MinVersion: "4.12.0", MaxVersion: "4.13.43", ShortestPath: true}}, func(t *testing.T, r *Result) {
			p := r.Channels[0].Path
			if len(p) < 2 || p[0].Version != "4.12.0" || p[len(p)-1].Version != "4.13.43" {
				t.Errorf("path %v does not go 4.12.0 -> 4.13.43", p)
			}
			for _, s := range p {
				if len(s.Risks) > 0 {
					t.Errorf("path uses conditional edge into %s although an unconditional path exists", s.Version)
				}
			}
		}},
		// 4.13.27 reaches 4.13.41 only through conditional updates in this graph.
		{"shortest-path-conditional", []Channel{{Name: "stable-4.13", MinVersion: "4.13.27", MaxVersion: "4.13.41", ShortestPath: true}}, func(t *testing.T, r *Result) {
			risky := 0
			for _, s := range r.Channels[0].Path {
				risky += len(s.Risks)
			}
			if risky == 0 || len(r.Warnings) == 0 {
				t.Errorf("want a conditional hop with risks and a warning, got path %+v warnings %v", r.Channels[0].Path, r.Warnings)
			}
		}},
		{"merge-channels", []Channel{{Name: "stable-4.12", MinVersion: "4.12.50"}, {Name: "stable-4.13"}}, func(t *testing.T, r *Result) {
			if len(r.UpgradePath) < 2 || r.UpgradePath[0].Version != "4.12.50" || r.UpgradePath[len(r.UpgradePath)-1].Version != "4.13.43" {
				t.Errorf("cross-channel path = %+v", r.UpgradePath)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Resolve(context.Background(), c, "amd64", tc.channels)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, r)
			golden(t, tc.name, r)
		})
	}
}

func TestResolveErrors(t *testing.T) {
	srv, _ := serveRealGraph(t)
	c := &Client{URL: srv.URL}
	tests := []struct {
		name     string
		arch     string
		channels []Channel
		want     string
	}{
		{"unknown channel", "amd64", []Channel{{Name: "stable-9.9"}}, "HTTP 400"},
		{"bad version", "amd64", []Channel{{Name: "stable-4.13", MaxVersion: "4.13"}}, `max version "4.13" is not a semantic version`},
		{"min above max", "amd64", []Channel{{Name: "stable-4.13", MinVersion: "4.13.40", MaxVersion: "4.13.1"}}, "min version 4.13.40 is above max version 4.13.1"},
		{"empty range", "amd64", []Channel{{Name: "stable-4.13", MinVersion: "4.14.0", MaxVersion: "4.14.2"}}, "no release between 4.14.0 and 4.14.2"},
		{"path to unknown version", "amd64", []Channel{{Name: "stable-4.13", MinVersion: "4.12.38", ShortestPath: true}}, "version 4.12.38 is not in the update graph"},
		{"no channel", "amd64", nil, "no channel given"},
		{"twice", "amd64", []Channel{{Name: "stable-4.13"}, {Name: "stable-4.13"}}, "given twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Resolve(context.Background(), c, tc.arch, tc.channels)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestClientURLOverride(t *testing.T) {
	srv, requests := serveRealGraph(t)
	t.Setenv(URLEnv, srv.URL)
	g, err := (&Client{}).Fetch(context.Background(), "stable-4.13", "amd64")
	if err != nil {
		t.Fatal(err)
	}
	if *requests != 1 || len(g.Nodes) != 98 || len(g.Edges) != 1171 || len(g.ConditionalEdges) != 37 {
		t.Fatalf("requests %d, graph %d nodes %d edges %d conditional", *requests, len(g.Nodes), len(g.Edges), len(g.ConditionalEdges))
	}
	if h := g.Head(); !h.EQ(semver.MustParse("4.13.43")) {
		t.Errorf("head %s", h)
	}
}

func TestParseRejectsDanglingEdge(t *testing.T) {
	_, err := Parse([]byte(`{"nodes":[{"version":"4.1.0","payload":"x"}],"edges":[[0,5]]}`), "g.json")
	if err == nil || !strings.Contains(err.Error(), "g.json: edge 0 (0->5) points outside the 1 nodes") {
		t.Fatalf("err = %v", err)
	}
}

// A 503 and a dropped connection are retried; the third answer counts.
func TestFetchRetriesTransientFailures(t *testing.T) {
	data, err := os.ReadFile(realGraphPath())
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		switch calls {
		case 1:
			http.Error(w, "busy", http.StatusServiceUnavailable)
		case 2:
			hj, _ := w.(http.Hijacker)
			conn, _, _ := hj.Hijack()
			conn.Close()
		default:
			w.Write(data)
		}
	}))
	defer srv.Close()
	g, err := (&Client{URL: srv.URL, RetryDelay: time.Millisecond}).Fetch(context.Background(), "stable-4.13", "amd64")
	if err != nil || calls != 3 || len(g.Nodes) != 98 {
		t.Fatalf("calls %d, err %v", calls, err)
	}
	calls = 0
	srv2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		http.Error(w, "down", http.StatusBadGateway)
	}))
	defer srv2.Close()
	_, err = (&Client{URL: srv2.URL, RetryDelay: time.Millisecond}).Fetch(context.Background(), "stable-4.13", "amd64")
	if err == nil || calls != 3 || !strings.Contains(err.Error(), "HTTP 502") {
		t.Fatalf("calls %d, err %v", calls, err)
	}
}
