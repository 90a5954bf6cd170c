package orchestrate

import (
	"strings"
	"testing"

	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/testutil/golden"
)

// TestUpdateServiceGolden: with a graph-data image mirrored to a registry
// (mirror.platform.graph: true), cluster-resources/ holds updateService.yaml
// in oc-mirror's shape (updateservice.operator.openshift.io/v1 UpdateService
// update-service-oc-mirror in openshift-update-service, 2 replicas, releases
// at DEST/openshift/release-images, graphDataImage the mirrored graph image),
// under a registry prefix and at the registry root; the graph image is in no
// mirror set; a graph image in the store (mirror-to-disk) writes no
// UpdateService: the cluster pulls from the registry, not the disk.
func TestUpdateServiceGolden(t *testing.T) {
	graph := func(dest string) plan.Plan {
		var p plan.Plan
		p.Add(plan.Item{Source: ref.Ref{Transport: ref.OCI, Path: "/ws/working-dir/graph-image", Tag: "latest"},
			Dests: []ref.Ref{ref.MustParse(dest)}, Kind: plan.KindGraph})
		p.Add(plan.Item{Source: ref.MustParse("quay.io/openshift-release-dev/ocp-release@sha256:" + strings.Repeat("1", 64)),
			Dests: []ref.Ref{ref.MustParse("docker://mirror.local:5000/pre/openshift/release-images:4.18.1-x86_64")}, Kind: plan.KindRelease})
		return p
	}
	for _, tc := range []struct{ dest, file string }{
		{"docker://mirror.local:5000/pre/openshift/graph-image:latest", "updateService-prefix.yaml"},
		{"docker://mirror.local:5000/openshift/graph-image:latest", "updateService-root.yaml"},
	} {
		files, err := ClusterResources(graph(tc.dest), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		us, ok := files["updateService.yaml"]
		if !ok {
			t.Fatalf("%s: no updateService.yaml in %v", tc.dest, keysOf(files))
		}
		golden.Check(t, tc.file, us)
		for name, b := range files {
			if name != "updateService.yaml" && strings.Contains(string(b), "graph-image") {
				t.Errorf("%s names the graph image:\n%s", name, b)
			}
		}
	}
	files, err := ClusterResources(graph("file://openshift/graph-image:latest"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if b, ok := files["updateService.yaml"]; ok {
		t.Errorf("a graph image in the store wrote an UpdateService:\n%s", b)
	}
}

func keysOf(m map[string][]byte) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}
