// Package graph reads the OpenShift update graph (the Cincinnati API served
// by api.openshift.com or an OpenShift Update Service) and resolves which
// releases a channel selection means: channel heads, version ranges and
// upgrade paths. `airlock release list` and the ImageSetConfiguration's
// platform.channels both use it.
package graph

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/blang/semver/v4"
)

// DefaultURL is Red Hat's public update graph endpoint.
const DefaultURL = "https://api.openshift.com/api/upgrades_info/v1/graph"

// URLEnv overrides DefaultURL, as oc-mirror honours it.
const URLEnv = "UPDATE_URL_OVERRIDE"

// Node is one release in the graph.
type Node struct {
	Version  semver.Version    `json:"version"`
	Payload  string            `json:"payload"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Risk is a known issue that makes an update conditional.
type Risk struct {
	Name    string `json:"name"`
	URL     string `json:"url"`
	Message string `json:"message"`
}

// ConditionalEdge is a set of updates that are recommended only for
// clusters not exposed to its risks.
type ConditionalEdge struct {
	Edges []struct {
		From string `json:"from"`
		To   string `json:"to"`
	} `json:"edges"`
	Risks []Risk `json:"risks"`
}

// Graph is a Cincinnati graph response for one channel and architecture.
type Graph struct {
	Nodes            []Node            `json:"nodes"`
	Edges            [][2]int          `json:"edges"`
	ConditionalEdges []ConditionalEdge `json:"conditionalEdges,omitempty"`
}

// Parse decodes a graph response and checks that every edge names a node.
func Parse(data []byte, source string) (*Graph, error) {
	var g Graph
	if err := json.Unmarshal(data, &g); err != nil {
		return nil, fmt.Errorf("%s: not a valid update graph: %w", source, err)
	}
	for i, e := range g.Edges {
		if e[0] < 0 || e[0] >= len(g.Nodes) || e[1] < 0 || e[1] >= len(g.Nodes) {
			return nil, fmt.Errorf("%s: edge %d (%d->%d) points outside the %d nodes", source, i, e[0], e[1], len(g.Nodes))
		}
	}
	return &g, nil
}

// Client fetches graphs over HTTP.
type Client struct {
	// URL of the graph endpoint; empty means $UPDATE_URL_OVERRIDE or DefaultURL.
	URL  string
	HTTP *http.Client
	// RetryDelay is the base delay between attempts (default 1s).
	RetryDelay time.Duration
}

// Endpoint is the graph endpoint the client asks: URL, else
// $UPDATE_URL_OVERRIDE, else DefaultURL.
func (c *Client) Endpoint() string { return c.endpoint() }

func (c *Client) endpoint() string {
	if c.URL != "" {
		return c.URL
	}
	if u := os.Getenv(URLEnv); u != "" {
		return u
	}
	return DefaultURL
}

// Fetch gets the graph of one channel for one architecture (amd64, arm64,
// ppc64le, s390x, multi).
func (c *Client) Fetch(ctx context.Context, channel, arch string) (*Graph, error) {
	base := c.endpoint()
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("update graph URL %q: %w", base, err)
	}
	q := u.Query()
	q.Set("channel", channel)
	q.Set("arch", arch)
	u.RawQuery = q.Encode()
	hc := c.HTTP
	if hc == nil {
		// The public endpoint is on the internet: never hang a run on it.
		hc = &http.Client{Timeout: 2 * time.Minute}
	}
	var (
		status int
		body   []byte
	)
	// A dropped connection or a 5xx from the graph service is retried a
	// few times; anything else (a 4xx for an unknown channel) is final.
	for attempt := 0; ; attempt++ {
		status, body, err = get(ctx, hc, u.String())
		if err == nil && status < 500 {
			break
		}
		if attempt == 2 || ctx.Err() != nil {
			if err != nil {
				return nil, fmt.Errorf("fetching update graph for channel %s (%s) from %s: %w", channel, arch, u, err)
			}
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(attempt+1) * c.retryDelay()):
		}
	}
	if status != http.StatusOK {
		msg := strings.TrimSpace(string(body))
		if len(msg) > 300 {
			msg = msg[:300] + "..."
		}
		return nil, fmt.Errorf("update graph %s for channel %s (%s): HTTP %d: %s (check the channel name and --graph-url)", u, channel, arch, status, msg)
	}
	g, err := Parse(body, "update graph "+u.String())
	if err != nil {
		return nil, err
	}
	if len(g.Nodes) == 0 {
		return nil, fmt.Errorf("update graph %s: channel %s has no releases for architecture %s (check the channel name and --arch)", u, channel, arch)
	}
	return g, nil
}

func get(ctx context.Context, hc *http.Client, u string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("reading the response: %w", err)
	}
	return resp.StatusCode, body, nil
}

func (c *Client) retryDelay() time.Duration {
	if c.RetryDelay > 0 {
		return c.RetryDelay
	}
	return time.Second
}

// Versions returns the node versions sorted ascending.
func (g *Graph) Versions() []semver.Version {
	vs := make([]semver.Version, len(g.Nodes))
	for i, n := range g.Nodes {
		vs[i] = n.Version
	}
	semver.Sort(vs)
	return vs
}

// Head is the channel head: the highest version in the channel's graph.
func (g *Graph) Head() semver.Version { vs := g.Versions(); return vs[len(vs)-1] }

// First is the lowest version in the channel's graph.
func (g *Graph) First() semver.Version { return g.Versions()[0] }

// index returns version string -> node index.
func (g *Graph) index() map[string]int {
	m := make(map[string]int, len(g.Nodes))
	for i, n := range g.Nodes {
		m[n.Version.String()] = i
	}
	return m
}

// Step is one release on an upgrade path. Risks is set when the update
// into this release is conditional (it has known risks a cluster must be
// checked for).
type Step struct {
	Version string   `json:"version"`
	Payload string   `json:"payload"`
	Risks   []string `json:"risks,omitempty"`
}

// ShortestPath returns the fewest-hops upgrade path from -> to. It uses
// only unconditional (recommended for every cluster) edges first; only if
// there is no such path does it also use conditional edges, and then every
// conditional hop carries its risk names so the caller can warn. Among
// equally short paths it prefers the highest versions at each hop (the
// graph's neighbour order is sorted by version, descending), so the result
// is deterministic.
func ShortestPath(g *Graph, from, to semver.Version) ([]Step, error) {
	idx := g.index()
	s, ok := idx[from.String()]
	if !ok {
		return nil, fmt.Errorf("version %s is not in the update graph", from)
	}
	e, ok := idx[to.String()]
	if !ok {
		return nil, fmt.Errorf("version %s is not in the update graph", to)
	}
	adj := make(map[int][]int)
	for _, ed := range g.Edges {
		adj[ed[0]] = append(adj[ed[0]], ed[1])
	}
	if p := bfs(g, adj, s, e); p != nil {
		return steps(g, p, nil), nil
	}
	risks := map[[2]int][]string{}
	for _, ce := range g.ConditionalEdges {
		for _, ed := range ce.Edges {
			a, ok1 := idx[ed.From]
			b, ok2 := idx[ed.To]
			if !ok1 || !ok2 {
				continue // the edge leaves this channel's graph
			}
			k := [2]int{a, b}
			if _, seen := risks[k]; !seen {
				adj[a] = append(adj[a], b)
			}
			for _, r := range ce.Risks {
				risks[k] = append(risks[k], r.Name)
			}
		}
	}
	if p := bfs(g, adj, s, e); p != nil {
		return steps(g, p, risks), nil
	}
	return nil, fmt.Errorf("no upgrade path from %s to %s in the update graph, not even through conditional updates", from, to)
}

func bfs(g *Graph, adj map[int][]int, s, e int) []int {
	for k, ns := range adj {
		sort.SliceStable(ns, func(i, j int) bool { return g.Nodes[ns[i]].Version.GT(g.Nodes[ns[j]].Version) })
		adj[k] = ns
	}
	prev := map[int]int{s: -1}
	queue := []int{s}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		if n == e {
			break
		}
		for _, m := range adj[n] {
			if _, seen := prev[m]; !seen {
				prev[m] = n
				queue = append(queue, m)
			}
		}
	}
	if _, ok := prev[e]; !ok {
		return nil
	}
	var path []int
	for n := e; n != -1; n = prev[n] {
		path = append([]int{n}, path...)
	}
	return path
}

func steps(g *Graph, path []int, risks map[[2]int][]string) []Step {
	out := make([]Step, len(path))
	for i, n := range path {
		out[i] = Step{Version: g.Nodes[n].Version.String(), Payload: g.Nodes[n].Payload}
		if i > 0 && risks != nil {
			if r, ok := risks[[2]int{path[i-1], n}]; ok && !hasEdge(g, path[i-1], n) {
				out[i].Risks = dedupe(r)
			}
		}
	}
	return out
}

func hasEdge(g *Graph, a, b int) bool {
	for _, e := range g.Edges {
		if e[0] == a && e[1] == b {
			return true
		}
	}
	return false
}

func dedupe(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// OnAnyPath returns every release that lies on some upgrade path from ->
// to, sorted by version: the releases reachable from from that can still
// reach to. Conditional updates count as edges here (an administrator may
// accept their risks), unlike ShortestPath's first choice: the caller uses
// it to decide what must stay available, where keeping too much is the
// safe mistake.
func OnAnyPath(g *Graph, from, to semver.Version) ([]Step, error) {
	idx := g.index()
	s, ok := idx[from.String()]
	if !ok {
		return nil, fmt.Errorf("version %s is not in the update graph", from)
	}
	e, ok := idx[to.String()]
	if !ok {
		return nil, fmt.Errorf("version %s is not in the update graph", to)
	}
	fwd, back := map[int][]int{}, map[int][]int{}
	add := func(a, b int) {
		fwd[a] = append(fwd[a], b)
		back[b] = append(back[b], a)
	}
	for _, ed := range g.Edges {
		add(ed[0], ed[1])
	}
	for _, ce := range g.ConditionalEdges {
		for _, ed := range ce.Edges {
			a, ok1 := idx[ed.From]
			b, ok2 := idx[ed.To]
			if ok1 && ok2 {
				add(a, b)
			}
		}
	}
	reach := func(start int, adj map[int][]int) map[int]bool {
		seen := map[int]bool{start: true}
		queue := []int{start}
		for len(queue) > 0 {
			n := queue[0]
			queue = queue[1:]
			for _, m := range adj[n] {
				if !seen[m] {
					seen[m] = true
					queue = append(queue, m)
				}
			}
		}
		return seen
	}
	ahead, behind := reach(s, fwd), reach(e, back)
	if !ahead[e] {
		return nil, fmt.Errorf("no upgrade path from %s to %s in the update graph, not even through conditional updates", from, to)
	}
	var out []Step
	for n := range ahead {
		if behind[n] {
			out = append(out, Step{Version: g.Nodes[n].Version.String(), Payload: g.Nodes[n].Payload})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return semver.MustParse(out[i].Version).LT(semver.MustParse(out[j].Version))
	})
	return out, nil
}

// Only returns the graph restricted to the given versions: their nodes,
// the edges between them and the conditional edges between them. Paths in
// it are the upgrades that need nothing but those releases — what a
// disconnected mirror holding only them can serve.
func (g *Graph) Only(versions map[string]bool) *Graph {
	out := &Graph{}
	renum := map[int]int{}
	for i, n := range g.Nodes {
		if versions[n.Version.String()] {
			renum[i] = len(out.Nodes)
			out.Nodes = append(out.Nodes, n)
		}
	}
	for _, e := range g.Edges {
		a, ok1 := renum[e[0]]
		b, ok2 := renum[e[1]]
		if ok1 && ok2 {
			out.Edges = append(out.Edges, [2]int{a, b})
		}
	}
	for _, ce := range g.ConditionalEdges {
		c := ConditionalEdge{Risks: ce.Risks}
		for _, ed := range ce.Edges {
			if versions[ed.From] && versions[ed.To] {
				c.Edges = append(c.Edges, ed)
			}
		}
		if len(c.Edges) > 0 {
			out.ConditionalEdges = append(out.ConditionalEdges, c)
		}
	}
	return out
}
