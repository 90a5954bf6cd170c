package retention_test

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/airlock-mirror/airlock/internal/testutil/shared"

	"github.com/blang/semver/v4"

	"github.com/airlock-mirror/airlock/internal/regscan"
	"github.com/airlock-mirror/airlock/internal/release/graph"
	"github.com/airlock-mirror/airlock/internal/retention"
)

// graphFile is the REAL stable-4.13 amd64 update graph (98 nodes, 1171
// edges) of ../shared/testdata.
func graphFile() string {
	return filepath.Join(shared.Root(), "release", "cincinnati", "graph-amd64-stable-4.13.json")
}

func realGraph(t *testing.T) *graph.Graph {
	t.Helper()
	data, err := os.ReadFile(graphFile())
	if err != nil {
		t.Fatal(err)
	}
	g, err := graph.Parse(data, "graph-amd64-stable-4.13.json")
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// pullLog is a Pulls of "repo:tag" -> last pull.
type pullLog map[string]time.Time

func (p pullLog) LastPull(repo, tag string) (time.Time, bool) {
	t, ok := p[repo+":"+tag]
	return t, ok
}

func fakeDigest(s string) string { return fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(s))) }

// releaseSnapshot is a mirror in oc's layout (everything in ocp4/openshift4:
// releases as <version>-x86_64, components as <version>-x86_64-<name>)
// holding the given versions. Releases of the graph carry their REAL
// payload digest; every release shares one etcd component and has its
// own cli component. extra tags (tag -> digest) are added to the repo.
func releaseSnapshot(t *testing.T, g *graph.Graph, versions []string, extra map[string]string) *regscan.Snapshot {
	t.Helper()
	payload := map[string]string{}
	for _, n := range g.Nodes {
		payload[n.Version.String()] = n.Payload[strings.Index(n.Payload, "@")+1:]
	}
	repo := &regscan.Repo{Name: "ocp4/openshift4", Kind: "release"}
	s := &regscan.Snapshot{Repos: []*regscan.Repo{repo}}
	tag := func(name, digest string) {
		repo.Tags = append(repo.Tags, &regscan.Tag{Name: name, Digest: digest, Manifest: &regscan.Manifest{Digest: digest}})
	}
	etcd := fakeDigest("etcd")
	for _, v := range versions {
		rd := payload[v]
		if rd == "" {
			rd = fakeDigest("release " + v)
		}
		rt := v + "-x86_64"
		tag(rt, rd)
		tag(rt+"-etcd", etcd)
		tag(rt+"-cli", fakeDigest("cli "+v))
		s.Releases = append(s.Releases, &regscan.Release{Repo: repo.Name, Tag: rt, Digest: rd, Version: v, Components: []regscan.ImageRef{
			{Name: "etcd", Image: "quay.io/openshift-release-dev/ocp-v4.0-art-dev@" + etcd},
			{Name: "cli", Image: "quay.io/openshift-release-dev/ocp-v4.0-art-dev@" + fakeDigest("cli "+v)},
		}})
	}
	for name, d := range extra {
		tag(name, d)
	}
	s.Index()
	return s
}

// outcome is the releases kept and the tags deleted, sorted.
func outcome(d *retention.Decision) (kept, dropped, deletedTags []string) {
	for _, r := range d.Releases {
		if r.Keep {
			kept = append(kept, r.Version)
		} else {
			dropped = append(dropped, r.Version)
		}
	}
	for _, t := range d.Delete {
		deletedTags = append(deletedTags, t.Tags...)
	}
	sort.Strings(deletedTags)
	return
}

func versions(vs ...string) []semver.Version {
	out := make([]semver.Version, len(vs))
	for i, v := range vs {
		out[i] = semver.MustParse(v)
	}
	return out
}

func TestUpgradePathKeepsShortestPathThroughMirroredReleases(t *testing.T) {
	g := realGraph(t)
	mirrored := []string{"4.11.0", "4.12.10", "4.12.30", "4.12.45", "4.12.58", "4.13.0", "4.13.12", "4.13.30", "4.13.43"}
	// An additional image that happens to be 4.12.45's cli: its own tag
	// keeps it.
	s := releaseSnapshot(t, g, mirrored, map[string]string{"tools": fakeDigest("cli 4.12.45")})
	eq := func(what string, got []string, want ...string) {
		t.Helper()
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s:\n got %v\nwant %v", what, got, want)
		}
	}

	for _, tc := range []struct {
		name                  string
		from                  []string
		anyPath               bool
		kept, dropped, tagsGo []string
	}{{
		// In the real graph 4.12.10 -> 4.12.30 -> 4.13.43 and
		// 4.12.10 -> 4.12.58 -> 4.13.43 are both two hops; the higher
		// hop wins. 4.11.0 is not in the graph: kept.
		name: "one cluster", from: []string{"4.12.10"},
		kept:    []string{"4.11.0", "4.12.10", "4.12.58", "4.13.43"},
		dropped: []string{"4.12.30", "4.12.45", "4.13.0", "4.13.12", "4.13.30"},
		tagsGo: []string{"4.12.30-x86_64", "4.12.30-x86_64-cli", "4.12.45-x86_64", "4.13.0-x86_64", "4.13.0-x86_64-cli",
			"4.13.12-x86_64", "4.13.12-x86_64-cli", "4.13.30-x86_64", "4.13.30-x86_64-cli"},
	}, {
		name: "two clusters", from: []string{"4.12.10", "4.13.0"},
		kept:    []string{"4.11.0", "4.12.10", "4.12.58", "4.13.0", "4.13.43"},
		dropped: []string{"4.12.30", "4.12.45", "4.13.12", "4.13.30"},
		tagsGo: []string{"4.12.30-x86_64", "4.12.30-x86_64-cli", "4.12.45-x86_64",
			"4.13.12-x86_64", "4.13.12-x86_64-cli", "4.13.30-x86_64", "4.13.30-x86_64-cli"},
	}, {
		// Every path 4.13.0 -> 4.13.43 in what the mirror holds: direct,
		// through 4.13.12, and through 4.13.30, which only the
		// conditional updates 4.13.0/4.13.12 -> 4.13.30
		// (NetPolicyTimeoutsHostNetworkedPodTraffic) reach.
		name: "any path", from: []string{"4.13.0"}, anyPath: true,
		kept:    []string{"4.11.0", "4.13.0", "4.13.12", "4.13.30", "4.13.43"},
		dropped: []string{"4.12.10", "4.12.30", "4.12.45", "4.12.58"},
		tagsGo: []string{"4.12.10-x86_64", "4.12.10-x86_64-cli", "4.12.30-x86_64", "4.12.30-x86_64-cli", "4.12.45-x86_64",
			"4.12.58-x86_64", "4.12.58-x86_64-cli"},
	}, {
		// A cluster at the head needs nothing else.
		name: "at the head", from: []string{"4.13.43"},
		kept:    []string{"4.11.0", "4.13.43"},
		dropped: []string{"4.12.10", "4.12.30", "4.12.45", "4.12.58", "4.13.0", "4.13.12", "4.13.30"},
		tagsGo: []string{"4.12.10-x86_64", "4.12.10-x86_64-cli", "4.12.30-x86_64", "4.12.30-x86_64-cli", "4.12.45-x86_64",
			"4.12.58-x86_64", "4.12.58-x86_64-cli", "4.13.0-x86_64", "4.13.0-x86_64-cli", "4.13.12-x86_64", "4.13.12-x86_64-cli",
			"4.13.30-x86_64", "4.13.30-x86_64-cli"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			p := retention.Policy{UpgradePath: &retention.UpgradePath{Graph: g, Source: "stable-4.13.json", From: versions(tc.from...), AnyPath: tc.anyPath}}
			d, err := retention.Decide(s, p, nil, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			kept, dropped, gone := outcome(d)
			eq("kept releases", kept, tc.kept...)
			eq("dropped releases", dropped, tc.dropped...)
			// The shared etcd component stays (kept releases name it);
			// 4.12.45's cli stays under its "tools" tag.
			eq("deleted tags", gone, tc.tagsGo...)
			for _, r := range d.Releases {
				if !r.Keep && !strings.Contains(r.Reason, "not on the upgrade path to 4.13.43") {
					t.Errorf("release %s: reason %q", r.Version, r.Reason)
				}
			}
		})
	}

	// Other rules still keep: a protected repository keeps every release.
	d, err := retention.Decide(s, retention.Policy{Protect: []*regexp.Regexp{regexp.MustCompile("^ocp4/")},
		UpgradePath: &retention.UpgradePath{Graph: g, Source: "g", From: versions("4.12.10")}}, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if kept, dropped, gone := outcome(d); len(kept) != len(mirrored) || len(dropped) != 0 || len(gone) != 0 {
		t.Errorf("protected: kept %v, dropped %v, deleted %v", kept, dropped, gone)
	}
	// A release tag pulled lately is kept by that rule, and said so.
	pulls := pullLog{"ocp4/openshift4:4.13.0-x86_64": time.Now()}
	d, err = retention.Decide(s, retention.Policy{KeepPulledWithin: time.Hour,
		UpgradePath: &retention.UpgradePath{Graph: g, Source: "g", From: versions("4.12.10")}}, pulls, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	kept, dropped, gone := outcome(d)
	eq("kept with a pull", kept, "4.11.0", "4.12.10", "4.12.58", "4.13.0", "4.13.43")
	eq("dropped with a pull", dropped, "4.12.30", "4.12.45", "4.13.12", "4.13.30")
	for _, r := range d.Releases {
		if r.Version == "4.13.0" && !strings.HasPrefix(r.Reason, "kept by another rule") {
			t.Errorf("4.13.0 reason %q", r.Reason)
		}
	}
	for _, tg := range gone {
		if strings.HasPrefix(tg, "4.13.0-") {
			t.Errorf("deleted %s of the pulled release", tg)
		}
	}

	// Without 4.12.58 in the mirror the path goes through 4.12.30, which
	// must then stay, though the full graph's path does not use it.
	s = releaseSnapshot(t, g, []string{"4.12.10", "4.12.30", "4.12.45", "4.13.43"}, nil)
	d, err = retention.Decide(s, retention.Policy{UpgradePath: &retention.UpgradePath{Graph: g, Source: "g", From: versions("4.12.10")}}, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	kept, dropped, _ = outcome(d)
	eq("kept without 4.12.58", kept, "4.12.10", "4.12.30", "4.13.43")
	eq("dropped without 4.12.58", dropped, "4.12.45")

	// The head not mirrored yet: paths end at the highest mirrored release.
	s = releaseSnapshot(t, g, []string{"4.12.10", "4.12.30", "4.12.58"}, nil)
	d, err = retention.Decide(s, retention.Policy{UpgradePath: &retention.UpgradePath{Graph: g, Source: "g", From: versions("4.12.10")}}, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	kept, dropped, _ = outcome(d)
	eq("kept without the head", kept, "4.12.10", "4.12.58")
	eq("dropped without the head", dropped, "4.12.30")
	if len(d.Warnings) != 1 || !strings.Contains(d.Warnings[0], "channel head 4.13.43") {
		t.Errorf("warnings %q", d.Warnings)
	}
}

func TestUpgradePathRefusesWhatItCannotDecide(t *testing.T) {
	g := realGraph(t)
	for _, tc := range []struct {
		mirrored []string
		from     string
		want     string
	}{
		{[]string{"4.12.10", "4.13.43"}, "4.11.5", "current version 4.11.5 is not in the update graph"},
		// 4.12.0 -> 4.13.43 needs a 4.12 z-stream the mirror lacks.
		{[]string{"4.12.0", "4.13.43"}, "4.12.0", "no upgrade path from 4.12.0 to 4.13.43 through the releases the registry holds"},
		{[]string{"4.11.0"}, "4.12.0", "holds none of the releases"},
	} {
		s := releaseSnapshot(t, g, tc.mirrored, nil)
		_, err := retention.Decide(s, retention.Policy{UpgradePath: &retention.UpgradePath{Graph: g, Source: "g", From: versions(tc.from)}}, nil, time.Now())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v from %s: error %v, want %q", tc.mirrored, tc.from, err, tc.want)
		}
	}
}
