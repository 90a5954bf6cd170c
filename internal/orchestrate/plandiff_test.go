package orchestrate

import (
	"testing"

	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
)

// TestDiffChartBuiltInTemporaryDir: two plans of the same config build the
// chart artifact (and the graph-data image) in their own temporary working
// directories: the same digest at the same destination is no change, another
// digest is a change, and a chart at another destination is added/removed.
func TestDiffChartBuiltInTemporaryDir(t *testing.T) {
	const d1, d2 = "sha256:1111111111111111111111111111111111111111111111111111111111111111",
		"sha256:2222222222222222222222222222222222222222222222222222222222222222"
	built := func(work, digest, chartDest string) *ConfigPlan {
		return &ConfigPlan{Images: []Planned{
			{Source: ref.Ref{Transport: ref.OCI, Path: work + "/helm/oci/repo-demo-1.2.0", Tag: "1.2.0"},
				Dests: []ref.Ref{ref.MustParse(chartDest)}, Kind: plan.KindHelmChart, Digest: digest},
			{Source: ref.Ref{Transport: ref.OCI, Path: work + "/graph-image", Tag: "latest"},
				Dests: []ref.Ref{ref.MustParse("file://openshift/graph-image:latest")}, Kind: plan.KindGraph, Digest: d1},
			{Source: ref.MustParse("quay.io/a/b:1"), Dests: []ref.Ref{ref.MustParse("file://a/b:1")}, Kind: plan.KindImage, Digest: d1},
		}}
	}
	const chart = "file://helm-charts/demo:1.2.0"
	if d := built("/tmp/airlock-plan-1", d1, chart).Diff(built("/tmp/airlock-plan-2", d1, chart)); !d.Empty() {
		t.Errorf("same chart and graph image built in two temporary dirs: %+v", d)
	}
	d := built("/tmp/airlock-plan-1", d2, chart).Diff(built("/tmp/airlock-plan-2", d1, chart))
	if len(d.Changed) != 1 || len(d.Added)+len(d.Removed) != 0 || d.Changed[0].Old != d1 || d.Changed[0].New != d2 {
		t.Errorf("new chart digest: %+v", d)
	}
	d = built("/tmp/airlock-plan-1", d1, "file://helm-charts/demo:1.3.0").Diff(built("/tmp/airlock-plan-2", d1, chart))
	if len(d.Added) != 1 || len(d.Removed) != 1 || len(d.Changed) != 0 {
		t.Errorf("chart at another destination: %+v", d)
	}
}
