package orchestrate

import (
	"strings"
	"testing"

	"github.com/airlock-mirror/airlock/internal/engine"
	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
)

// TestSignaturePolicyCoversSignedImagesOnly: the ClusterImagePolicy a
// mirror run writes scopes the repositories of the images that carried a
// signature, one scope each; unsigned images stay out (the cluster would
// refuse them) and one sharing a repository with signed images is named.
func TestSignaturePolicyCoversSignedImagesOnly(t *testing.T) {
	item := func(src, dst string) plan.Item {
		return plan.Item{Source: ref.MustParse(src), Dests: []ref.Ref{ref.MustParse(dst)}, Kind: plan.KindImage}
	}
	cluster := plan.Plan{}
	for _, it := range []plan.Item{
		item("quay.io/app/web:1", "mirror.local/app/web:1"),
		item("quay.io/app/api:1", "mirror.local/app/api:1"),
		item("quay.io/app/api:0", "mirror.local/app/api:0"),
		item("docker.io/partner/tool:2", "mirror.local/partner/tool:2"),
	} {
		cluster.Add(it)
	}
	rep := &engine.Report{}
	for i, it := range cluster.Items {
		rep.Items = append(rep.Items, engine.ItemResult{Source: it.Source, Dests: []engine.DestResult{{Ref: it.Dests[0]}}, Signed: i < 2})
	}
	var warns []string
	o := Options{SignatureKeys: testKeys(t)[:1], Warn: func(s string) { warns = append(warns, s) }}
	files := map[string][]byte{}
	if err := addSignaturePolicy(files, o, &Result{Cluster: cluster, Report: rep}); err != nil {
		t.Fatal(err)
	}
	cip := string(files[ClusterImagePolicyFile])
	for _, want := range []string{"- quay.io/app/web\n", "- quay.io/app/api\n"} {
		if !strings.Contains(cip, want) {
			t.Errorf("scope %q missing:\n%s", want, cip)
		}
	}
	if strings.Contains(cip, "partner") || strings.Contains(cip, "- quay.io/app\n") {
		t.Errorf("the policy covers an unsigned repository or a whole namespace:\n%s", cip)
	}
	all := strings.Join(warns, "\n")
	if !strings.Contains(all, "quay.io/app/api:0 is unsigned but shares its repository") || !strings.Contains(all, "2 unsigned images stay outside") {
		t.Errorf("warnings:\n%s", all)
	}

	// Nothing signed: no policy, a warning.
	for i := range rep.Items {
		rep.Items[i].Signed = false
	}
	files, warns = map[string][]byte{}, nil
	if err := addSignaturePolicy(files, o, &Result{Cluster: cluster, Report: rep}); err != nil {
		t.Fatal(err)
	}
	if len(files) != 0 || len(warns) != 1 || !strings.Contains(warns[0], "no ClusterImagePolicy was written") {
		t.Errorf("nothing signed: files %v, warnings %q", files, warns)
	}
}
