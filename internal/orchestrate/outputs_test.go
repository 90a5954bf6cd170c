package orchestrate

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/airlock-mirror/airlock/internal/clusterres"
	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
)

// clusterPlan is a mirror-to-mirror cluster plan: a release, an operator
// with a related image, an additional image, and a rebuilt catalog.
func clusterPlan() plan.Plan {
	var p plan.Plan
	add := func(src, dst string, k plan.Kind) {
		p.Add(plan.Item{Source: ref.MustParse(src), Dests: []ref.Ref{ref.MustParse(dst)}, Kind: k})
	}
	const d = "@sha256:" + hex
	add("quay.io/openshift-release-dev/ocp-release:4.21.0-x86_64", "mirror.local:5000/openshift/release-images:4.21.0-x86_64", plan.KindRelease)
	add("quay.io/openshift-release-dev/ocp-v4.0-art-dev"+d, "mirror.local:5000/openshift/release:4.21.0-x86_64-etcd", plan.KindReleaseComponent)
	add("registry.example.com/team/operator-bundle"+d, "mirror.local:5000/team/operator-bundle:sha256-"+hex, plan.KindBundle)
	add("registry.example.com/team/operator"+d, "mirror.local:5000/team/operator:sha256-"+hex, plan.KindRelated)
	add("docker.io/library/busybox:1.36", "mirror.local:5000/library/busybox:1.36", plan.KindImage)
	add("registry.example.com/catalogs/index:v1", "mirror.local:5000/catalogs/index:v1", plan.KindCatalog)
	return p
}

func testKeys(t *testing.T) []clusterres.SigstoreKey {
	t.Helper()
	var keys []clusterres.SigstoreKey
	for _, n := range []string{"cosign-1.pub", "cosign-2.pub"} {
		f := filepath.Join("..", "clusterres", "testdata", n)
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		k, err := clusterres.ParsePublicKey(f, b)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	return keys
}

func cipScopes(t *testing.T, b []byte) [][]string {
	t.Helper()
	var out [][]string
	for _, doc := range strings.Split(string(b), "---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var c clusterres.ClusterImagePolicy
		if err := yaml.Unmarshal([]byte(doc), &c); err != nil {
			t.Fatal(err)
		}
		if c.Kind != "ClusterImagePolicy" || c.APIVersion != "config.openshift.io/v1" || c.Spec.Policy.RootOfTrust.PublicKey == nil {
			t.Fatalf("not a PublicKey ClusterImagePolicy: %s", doc)
		}
		out = append(out, c.Spec.Scopes)
	}
	return out
}

// TestClusterResourcesSignaturePolicy: without keys no policy file is
// written (the existing outputs are unchanged); with keys the
// ClusterImagePolicy scopes are the plan's source repositories (at
// repository scope exactly; at namespace scope widened where the IDMS is),
// catalogs left out, one object per key.
func TestClusterResourcesSignaturePolicy(t *testing.T) {
	p := clusterPlan()
	plain, err := ClusterResources(p, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	for n := range plain {
		if n == ClusterImagePolicyFile || n == RegistriesDFile || n == NodePolicyFile {
			t.Errorf("%s written without --signature-key", n)
		}
	}

	var sources []string
	for _, it := range p.Items {
		if it.Kind != plan.KindCatalog {
			sources = append(sources, it.Source.Repository())
		}
	}
	sort.Strings(sources)

	files, err := ClusterResources(p, nil, 2, testKeys(t)...) // max-nested-paths: repository scope
	if err != nil {
		t.Fatal(err)
	}
	for n, b := range plain {
		if n != "idms-oc-mirror.yaml" && n != "itms-oc-mirror.yaml" {
			continue
		}
		if _, ok := files[n]; !ok {
			t.Errorf("%s missing with keys (%d bytes without)", n, len(b))
		}
	}
	scopes := cipScopes(t, files[ClusterImagePolicyFile])
	if len(scopes) != 2 {
		t.Fatalf("%d ClusterImagePolicy objects, want one per key (2)", len(scopes))
	}
	for _, s := range scopes {
		if strings.Join(s, " ") != strings.Join(sources, " ") {
			t.Errorf("scopes %v, want the plan's sources %v", s, sources)
		}
	}
	for _, n := range []string{RegistriesDFile, NodePolicyFile} {
		if len(files[n]) == 0 {
			t.Errorf("%s not written", n)
		}
	}
	if !strings.Contains(string(files[RegistriesDFile]), "mirror.local:5000/team/operator:\n    use-sigstore-attachments: true") {
		t.Errorf("registries.d lacks the operator mirror:\n%s", files[RegistriesDFile])
	}

	// Namespace scope (the default): every source is covered by exactly one
	// scope, and every scope covers a source.
	files, err = ClusterResources(p, nil, 0, testKeys(t)[0])
	if err != nil {
		t.Fatal(err)
	}
	ns := cipScopes(t, files[ClusterImagePolicyFile])
	if len(ns) != 1 {
		t.Fatalf("%d objects, want 1", len(ns))
	}
	for _, src := range sources {
		n := 0
		for _, s := range ns[0] {
			if src == s || strings.HasPrefix(src, s+"/") {
				n++
			}
		}
		if n != 1 {
			t.Errorf("source %s covered by %d scopes of %v", src, n, ns[0])
		}
	}
	if strings.Contains(strings.Join(ns[0], " "), "catalogs") {
		t.Errorf("catalog in scopes: %v", ns[0])
	}
}

// TestSignaturePolicyLookaside: with OpenPGP signatures served at a URL,
// every registries.d entry gets lookaside next to use-sigstore-attachments;
// a lookaside that is not a URL is refused.
func TestSignaturePolicyLookaside(t *testing.T) {
	pairs := clusterres.PairsFromPlan(clusterPlan(), func(it plan.Item) bool { return it.Kind == plan.KindRelease || it.Kind == plan.KindReleaseComponent })
	files, err := SignaturePolicyFiles(pairs, clusterres.ScopeRepository, "4-21-0", SignaturePolicy{Keys: testKeys(t)[:1], Lookaside: "https://sigs.example.com/release"})
	if err != nil {
		t.Fatal(err)
	}
	want := "docker:\n" +
		"  mirror.local:5000/openshift/release:\n    lookaside: https://sigs.example.com/release\n    use-sigstore-attachments: true\n" +
		"  mirror.local:5000/openshift/release-images:\n    lookaside: https://sigs.example.com/release\n    use-sigstore-attachments: true\n"
	if got := string(files[RegistriesDFile]); got != want {
		t.Errorf("registries.d:\n%s\nwant:\n%s", got, want)
	}
	if _, err := SignaturePolicyFiles(pairs, clusterres.ScopeRepository, "x", SignaturePolicy{Keys: testKeys(t)[:1], Lookaside: "sigs.example.com"}); err == nil || !strings.Contains(err.Error(), "URL") {
		t.Errorf("bad lookaside: %v", err)
	}
}
