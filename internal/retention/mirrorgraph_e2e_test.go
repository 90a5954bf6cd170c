package retention_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/airlock-mirror/airlock/internal/release/graph"
	"github.com/airlock-mirror/airlock/internal/release/releasetest"
	"github.com/airlock-mirror/airlock/internal/testutil/clitest"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

// realPrevious is, for each mirrored version, its release-metadata
// previous list as the REAL stable-4.13 graph implies it: every version
// with an update into it, recommended or conditional (the update service
// derives both from these lists; most of the versions are not mirrored).
func realPrevious(t *testing.T) map[string][]string {
	t.Helper()
	g := realGraph(t)
	prev := map[string][]string{}
	add := func(from, to string) {
		for _, p := range prev[to] {
			if p == from {
				return
			}
		}
		prev[to] = append(prev[to], from)
	}
	for _, e := range g.Edges {
		add(g.Nodes[e[0]].Version.String(), g.Nodes[e[1]].Version.String())
	}
	for _, ce := range g.ConditionalEdges {
		for _, e := range ce.Edges {
			add(e.From, e.To)
		}
	}
	for _, v := range prev {
		sort.Strings(v)
	}
	return prev
}

// fillMirror pushes mirroredVersions as fillReleases does, each release
// with its real previous list in release-metadata.
func fillMirror(t *testing.T, host string, opts ...remote.Option) {
	t.Helper()
	prev := realPrevious(t)
	for i, v := range mirroredVersions {
		if len(prev[v]) == 0 {
			t.Fatalf("the real graph has %d updates into %s", len(prev[v]), v)
		}
		if _, err := releasetest.Build(host, releasetest.Options{Components: 4, Shared: 2, Seed: int64(i + 1), Version: v, Previous: prev[v],
			Repo: componentRepo, ReleaseRepo: releaseRepo, Tag: v + "-x86_64", Remote: opts}); err != nil {
			t.Fatal(err)
		}
	}
	tool, _ := synth.Image(77, synth.WithLayerSize(1024))
	if _, err := synth.Push(tool, host+"/app/tool:1.0", opts...); err != nil {
		t.Fatal(err)
	}
}

// pushGraphImage pushes a graph-data image as mirror.platform.graph
// builds it (the data under /var/lib/cincinnati-graph-data in a layer on
// a base image) to openshift/graph-image:latest.
func pushGraphImage(t *testing.T, host string, files map[string][]byte, opts ...remote.Option) {
	t.Helper()
	base, err := synth.Image(88, synth.WithLayerSize(2048))
	if err != nil {
		t.Fatal(err)
	}
	under := map[string][]byte{}
	for n, b := range files {
		under[graph.DataDir+"/"+n] = b
	}
	layer, err := releasetest.TarLayer(under)
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := synth.Push(img, host+"/"+graph.GraphImageRepo+":latest", opts...); err != nil {
		t.Fatal(err)
	}
}

func decisionLines(t *testing.T, d pruneJSON) (keep, drop []string, deletes []string) {
	t.Helper()
	for _, r := range d.Decision.Releases {
		if r.Keep {
			keep = append(keep, r.Version)
		} else {
			drop = append(drop, r.Version)
		}
	}
	for _, x := range d.Decision.Delete {
		deletes = append(deletes, x.Repository+"@"+x.Digest)
	}
	sort.Strings(deletes)
	return keep, drop, deletes
}

// TestPruneKeepUpgradePathFromMirror: without --graph, the update graph
// is built from the mirrored releases' release-metadata; the dry run keeps
// exactly the releases on the shortest path 4.12.10 -> 4.13.43 (the same
// decision as with the real Cincinnati graph file) and names what goes.
func TestPruneKeepUpgradePathFromMirror(t *testing.T) {
	root := t.TempDir()
	reg := regtest.Start(t, regtest.WithRoot(root))
	fillMirror(t, reg.Host, remote.WithTransport(reg.Transport))
	stop(t, reg)
	args := []string{"--root", root, "--keep-upgrade-path", "4.12.10", "--dry-run"}

	text, errOut, err := clitest.Run(t, append([]string{"registry", "prune"}, args...)...)
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, errOut)
	}
	checkUpgradePathDryRun(t, text, " in the release metadata of the mirrored releases")
	if !strings.Contains(text, "warning: no graph-data image (openshift/graph-image:latest) in the registry") {
		t.Errorf("no warning about the missing graph-data image:\n%s", text)
	}
	fromMirror := prune(t, args...)
	keep, drop, dels := decisionLines(t, fromMirror)
	if strings.Join(keep, " ") != strings.Join(keptVersions, " ") || strings.Join(drop, " ") != "4.12.30 4.12.45 4.13.0" || len(dels) != 9 {
		t.Fatalf("keep %v drop %v, %d deletes", keep, drop, len(dels))
	}
	// The same decision as with the real graph file.
	fromFile := prune(t, "--root", root, "--keep-upgrade-path", "4.12.10", "--dry-run", "--graph", graphFile())
	if _, _, fdels := decisionLines(t, fromFile); strings.Join(fdels, " ") != strings.Join(dels, " ") || fromFile.Decision.FreedBytes != fromMirror.Decision.FreedBytes {
		t.Errorf("from the mirror: %v\nfrom the graph file: %v", dels, fdels)
	}
}

// TestPruneKeepUpgradePathFromMirrorGraphData: with the graph-data image
// mirrored, --channel keeps to its versions and its blocked edges count:
// 4.12.58 -> 4.13.43 blocked for every cluster and 4.12.10 -> 4.12.45
// conditional (a risk with matching rules) leave 4.12.10 -> 4.12.30 ->
// 4.13.43 as the shortest recommended path; 4.13.0, not in the channel, is
// kept (the graph cannot tell). A wrong channel and an unreadable release
// are refused, named.
func TestPruneKeepUpgradePathFromMirrorGraphData(t *testing.T) {
	root := t.TempDir()
	reg := regtest.Start(t, regtest.WithRoot(root))
	opt := remote.WithTransport(reg.Transport)
	fillMirror(t, reg.Host, opt)
	files := map[string][]byte{}
	for _, n := range []string{"channels/stable-4.13.yaml", "blocked-edges/4.13.43-TestHardBlock.yaml", "blocked-edges/4.12.45-AMD19hFirmware.yaml", "version"} {
		b, err := os.ReadFile(filepath.Join("testdata", "graph-data", n))
		if err != nil {
			t.Fatal(err)
		}
		files[n] = b
	}
	pushGraphImage(t, reg.Host, files, opt)
	stop(t, reg)
	args := []string{"--root", root, "--keep-upgrade-path", "4.12.10", "--channel", "stable-4.13", "--dry-run"}

	text, errOut, err := clitest.Run(t, append([]string{"registry", "prune"}, args...)...)
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, errOut)
	}
	src := "the release metadata of the mirrored releases and openshift/graph-image:latest (channel stable-4.13)"
	for _, want := range []string{
		fmt.Sprintf("keep release %s:4.12.30-x86_64 (4.12.30): on the shortest upgrade path 4.12.10 -> 4.13.43", releaseRepo),
		fmt.Sprintf("keep release %s:4.13.43-x86_64 (4.13.43): the channel head of %s", releaseRepo, src),
		fmt.Sprintf("keep release %s:4.13.0-x86_64 (4.13.0): version \"4.13.0\" is not in the update graph %s", releaseRepo, src),
		fmt.Sprintf("would drop release %s:4.12.45-x86_64 (4.12.45): release 4.12.45 is not on the upgrade path to 4.13.43 in %s", releaseRepo, src),
		fmt.Sprintf("would drop release %s:4.12.58-x86_64 (4.12.58): release 4.12.58 is not on the upgrade path to 4.13.43 in %s", releaseRepo, src),
	} {
		if !strings.Contains(text, want) {
			t.Errorf("dry run does not say %q:\n%s", want, text)
		}
	}
	d := prune(t, args...)
	keep, drop, dels := decisionLines(t, d)
	if strings.Join(keep, " ") != "4.12.10 4.12.30 4.13.0 4.13.43" || strings.Join(drop, " ") != "4.12.45 4.12.58" || len(dels) != 6 {
		t.Errorf("keep %v drop %v, deletes %v", keep, drop, dels)
	}
	// --all-paths: the conditional update makes 4.12.45 a path too; the
	// blocked one never does.
	keep, _, _ = decisionLines(t, prune(t, append(args, "--all-paths")...))
	if strings.Join(keep, " ") != "4.12.10 4.12.30 4.12.45 4.13.0 4.13.43" {
		t.Errorf("--all-paths keeps %v", keep)
	}

	_, _, err = clitest.Run(t, "registry", "prune", "--root", root, "--keep-upgrade-path", "4.12.10", "--channel", "fast-4.13", "--dry-run")
	if err == nil || !strings.Contains(err.Error(), "channel fast-4.13 is not in the graph data of openshift/graph-image:latest (it has stable-4.13)") {
		t.Errorf("unknown channel: %v", err)
	}

	// A release image whose payload cannot be read stops the prune, named.
	reg = regtest.Start(t, regtest.WithRoot(root))
	broken, _ := synth.Image(99, synth.WithLabels(map[string]string{"io.openshift.release": "4.12.20"}))
	if _, err := synth.Push(broken, reg.Host+"/"+releaseRepo+":4.12.20-x86_64", remote.WithTransport(reg.Transport)); err != nil {
		t.Fatal(err)
	}
	stop(t, reg)
	_, _, err = clitest.Run(t, append([]string{"registry", "prune"}, args...)...)
	if err == nil || !strings.Contains(err.Error(), "release openshift/release-images:4.12.20-x86_64 (sha256:") ||
		!strings.Contains(err.Error(), "its release metadata could not be read") || !strings.Contains(err.Error(), "--graph FILE") {
		t.Errorf("unreadable release: %v", err)
	}
}

// TestPruneKeepUpgradePathFromMirrorRemote: the graph built from a
// registry reached over HTTP (--registry HOST/openshift): the releases and
// graph-data image under the prefix count; an unreadable release image of
// another tenant outside it neither enters the graph nor stops the prune.
func TestPruneKeepUpgradePathFromMirrorRemote(t *testing.T) {
	reg := regtest.Start(t)
	opt := remote.WithTransport(reg.Transport)
	fillMirror(t, reg.Host, opt)
	files := map[string][]byte{}
	for _, n := range []string{"channels/stable-4.13.yaml", "blocked-edges/4.13.43-TestHardBlock.yaml", "blocked-edges/4.12.45-AMD19hFirmware.yaml"} {
		b, err := os.ReadFile(filepath.Join("testdata", "graph-data", n))
		if err != nil {
			t.Fatal(err)
		}
		files[n] = b
	}
	pushGraphImage(t, reg.Host, files, opt)
	broken, _ := synth.Image(99, synth.WithLabels(map[string]string{"io.openshift.release": "4.12.20"}))
	if _, err := synth.Push(broken, reg.Host+"/tenant/release-images:4.12.20-x86_64", opt); err != nil {
		t.Fatal(err)
	}
	d := prune(t, "--registry", reg.Host+"/openshift", "--keep-upgrade-path", "4.12.10", "--channel", "stable-4.13", "--dry-run")
	keep, drop, dels := decisionLines(t, d)
	// The tenant's release is listed as kept (outside the prefix).
	if strings.Join(keep, " ") != "4.12.10 4.12.20 4.12.30 4.13.0 4.13.43" || strings.Join(drop, " ") != "4.12.45 4.12.58" || len(dels) != 6 {
		t.Errorf("keep %v drop %v, deletes %v", keep, drop, dels)
	}
	for _, x := range dels {
		if !strings.HasPrefix(x, "openshift/") {
			t.Errorf("deletes %s outside the prefix", x)
		}
	}
	// Without the prefix the unreadable release is in the graph's scope: refused.
	_, _, err := clitest.Run(t, "registry", "prune", "--registry", reg.Host, "--keep-upgrade-path", "4.12.10", "--dry-run")
	if err == nil || !strings.Contains(err.Error(), "release tenant/release-images:4.12.20-x86_64") {
		t.Errorf("unreadable release in scope: %v", err)
	}
}
