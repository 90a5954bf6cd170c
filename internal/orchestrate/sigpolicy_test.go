package orchestrate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlock-mirror/airlock/internal/engine"
	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/testutil/golden"
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

// TestSignaturePolicyImagePolicyGolden: with --image-policy-namespace the
// run writes ip-airlock.yaml (ImagePolicy objects, one set per namespace,
// scopes the signed repositories) instead of cip-airlock.yaml, and
// --signature-lookaside goes into every registries.d entry; a signed
// release image is named as not covered for the cluster's own operators.
func TestSignaturePolicyImagePolicyGolden(t *testing.T) {
	cluster := plan.Plan{}
	for _, it := range []plan.Item{
		{Source: ref.MustParse("quay.io/app/web:1"), Dests: []ref.Ref{ref.MustParse("mirror.local:5000/app/web:1")}, Kind: plan.KindImage},
		{Source: ref.MustParse("quay.io/app/api@sha256:" + strings.Repeat("a", 64)), Dests: []ref.Ref{ref.MustParse("mirror.local:5000/app/api:sha256-" + strings.Repeat("a", 64))}, Kind: plan.KindImage},
		{Source: ref.MustParse("quay.io/openshift-release-dev/ocp-release:4.21.0-x86_64"), Dests: []ref.Ref{ref.MustParse("mirror.local:5000/openshift/release-images:4.21.0-x86_64")}, Kind: plan.KindRelease},
		{Source: ref.MustParse("docker.io/partner/tool:2"), Dests: []ref.Ref{ref.MustParse("mirror.local:5000/partner/tool:2")}, Kind: plan.KindImage},
	} {
		cluster.Add(it)
	}
	rep := &engine.Report{}
	for i, it := range cluster.Items {
		rep.Items = append(rep.Items, engine.ItemResult{Source: it.Source, Dests: []engine.DestResult{{Ref: it.Dests[0]}}, Signed: i < 3})
	}
	var warns []string
	o := Options{SignatureKeys: testKeys(t)[:1], ImagePolicyNamespaces: []string{"team-a", "team-b"},
		Lookaside: "https://sigs.example.com/openpgp", Warn: func(s string) { warns = append(warns, s) }}
	files := map[string][]byte{}
	if err := addSignaturePolicy(files, o, &Result{Cluster: cluster, Report: rep}); err != nil {
		t.Fatal(err)
	}
	if _, ok := files[ClusterImagePolicyFile]; ok {
		t.Errorf("%s written with --image-policy-namespace", ClusterImagePolicyFile)
	}
	golden.Check(t, "ip-airlock.yaml", files[ImagePolicyFile])
	golden.Check(t, "registries.d-lookaside.yaml", files[RegistriesDFile])
	all := strings.Join(warns, "\n")
	for _, w := range []string{"the ImagePolicy covers the repositories of the 3 signed images; 1 unsigned", "1 signed release images are covered only for pods of team-a, team-b"} {
		if !strings.Contains(all, w) {
			t.Errorf("warnings lack %q:\n%s", w, all)
		}
	}

	// Without namespaces the same run writes the ClusterImagePolicy.
	o.ImagePolicyNamespaces, files = nil, map[string][]byte{}
	if err := addSignaturePolicy(files, o, &Result{Cluster: cluster, Report: rep}); err != nil {
		t.Fatal(err)
	}
	if _, ok := files[ImagePolicyFile]; ok || !strings.Contains(string(files[ClusterImagePolicyFile]), "kind: ClusterImagePolicy") {
		t.Errorf("without --image-policy-namespace: files %v", files)
	}

	// A namespace that is no Kubernetes name, or one given twice, is refused.
	for ns, want := range map[string]string{"Team_A": `namespace "Team_A"`, "team-a": "given twice"} {
		o.ImagePolicyNamespaces = []string{"team-a", ns}
		if err := addSignaturePolicy(map[string][]byte{}, o, &Result{Cluster: cluster, Report: rep}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("namespace %q: %v, want %q", ns, err, want)
		}
	}
}

// TestSignaturePolicyOpenPGPRelease: a release image whose only signatures
// are OpenPGP ones (imported with --signature-dir, no cosign signature)
// gets a lookaside entry for its mirror in the registries.d file of
// cluster-resources/, beside the cosign-signed images' entries; with
// --signature-lookaside alone that file is all the policy written, and
// without a lookaside the release is named in a warning.
func TestSignaturePolicyOpenPGPRelease(t *testing.T) {
	relDigest := "sha256:" + strings.Repeat("b", 64)
	cluster := plan.Plan{}
	for _, it := range []plan.Item{
		{Source: ref.MustParse("quay.io/app/web:1"), Dests: []ref.Ref{ref.MustParse("mirror.local:5000/app/web:1")}, Kind: plan.KindImage},
		{Source: ref.MustParse("quay.io/openshift-release-dev/ocp-release:4.21.0-x86_64"), Dests: []ref.Ref{ref.MustParse("mirror.local:5000/openshift/release-images:4.21.0-x86_64")}, Kind: plan.KindRelease, Digest: relDigest},
		// Another release without imported signatures: no entry.
		{Source: ref.MustParse("quay.io/openshift-release-dev/ocp-release:4.20.9-x86_64"), Dests: []ref.Ref{ref.MustParse("mirror.local:5000/openshift/old-release-images:4.20.9-x86_64")}, Kind: plan.KindRelease, Digest: "sha256:" + strings.Repeat("c", 64)},
		{Source: ref.MustParse("quay.io/openshift-release-dev/ocp-v4.0-art-dev@" + "sha256:" + strings.Repeat("d", 64)), Dests: []ref.Ref{ref.MustParse("mirror.local:5000/openshift/release:4.21.0-x86_64-cli")}, Kind: plan.KindReleaseComponent},
	} {
		cluster.Add(it)
	}
	rep := &engine.Report{}
	for i, it := range cluster.Items {
		// Only the web image carries a cosign signature.
		rep.Items = append(rep.Items, engine.ItemResult{Source: it.Source, Dests: []engine.DestResult{{Ref: it.Dests[0]}}, Signed: i == 0})
	}
	sigs := []ReleaseSignature{{Digest: relDigest, Signatures: [][]byte{[]byte("atomic signature")}}}
	run := func(o Options) (map[string][]byte, []string) {
		t.Helper()
		var warns []string
		o.Warn = func(s string) { warns = append(warns, s) }
		o.Dir = t.TempDir()
		res := &Result{Cluster: cluster, Report: rep, Signatures: sigs}
		if err := writeClusterResources(o, res); err != nil {
			t.Fatal(err)
		}
		files := map[string][]byte{}
		for _, p := range res.Files {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			files[filepath.Base(p)] = b
		}
		return files, warns
	}

	files, _ := run(Options{SignatureKeys: testKeys(t)[:1], Lookaside: "https://sigs.example.com/openpgp"})
	golden.Check(t, "registries.d-openpgp-release.yaml", files[RegistriesDFile])
	if cip := string(files[ClusterImagePolicyFile]); !strings.Contains(cip, "- quay.io/app/web\n") || strings.Contains(cip, "ocp-release") {
		t.Errorf("the ClusterImagePolicy must scope the cosign-signed image only:\n%s", cip)
	}

	// --signature-lookaside alone: the registries.d file for the release, no policy.
	files, _ = run(Options{Lookaside: "https://sigs.example.com/openpgp"})
	golden.Check(t, "registries.d-openpgp-only.yaml", files[RegistriesDFile])
	for _, n := range []string{ClusterImagePolicyFile, ImagePolicyFile, NodePolicyFile} {
		if _, ok := files[n]; ok {
			t.Errorf("%s written without --signature-key", n)
		}
	}
	if _, ok := files[SignatureConfigMapFile]; !ok {
		t.Errorf("the signature ConfigMap is missing")
	}

	// A key but no lookaside: no lookaside entry can be written; the
	// warning says what to give.
	files, warns := run(Options{SignatureKeys: testKeys(t)[:1]})
	if rd := string(files[RegistriesDFile]); strings.Contains(rd, "release-images") {
		t.Errorf("release entry without a lookaside URL:\n%s", rd)
	}
	if all := strings.Join(warns, "\n"); !strings.Contains(all, "1 release images carry OpenPGP signatures") || !strings.Contains(all, "--signature-lookaside URL") {
		t.Errorf("warnings:\n%s", all)
	}
}
