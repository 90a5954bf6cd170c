package clusterres

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/airlock-mirror/airlock/internal/testutil/golden"

	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
	"sigs.k8s.io/yaml"
)

const (
	dgA = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	dgB = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	dgC = "sha256:3333333333333333333333333333333333333333333333333333333333333333"
)

// catalogPlan is the shape of an `oc adm catalog mirror` plan: a catalog
// image by tag, bundles and related images by digest, names mangled by
// --max-components 2.
func catalogPlan() plan.Plan {
	var p plan.Plan
	add := func(src, dst string, k plan.Kind) {
		p.Add(plan.Item{Source: ref.MustParse(src), Dests: []ref.Ref{ref.MustParse(dst)}, Kind: k})
	}
	add("registry.redhat.io/redhat/redhat-operator-index:v4.8", "myregistry.com/olm/redhat-redhat-operator-index:v4.8", plan.KindCatalog)
	add("registry.redhat.io/openshift4/ose-oauth-proxy@"+dgA, "myregistry.com/olm/openshift4-ose-oauth-proxy:2f1eb95", plan.KindRelated)
	add("registry.redhat.io/openshift4/ose-oauth-proxy@"+dgB, "myregistry.com/olm/openshift4-ose-oauth-proxy:5a1c2b3", plan.KindRelated)
	add("quay.io/coreos/etcd-operator@"+dgC, "myregistry.com/olm/coreos-etcd-operator:9f0e1d2", plan.KindBundle)
	add("docker.io/library/busybox:1.36", "myregistry.com/olm/library-busybox:1.36", plan.KindRelated)
	// A copy to the local store is not something a cluster can pull from.
	add("quay.io/coreos/etcd@"+dgA, "file://local/coreos/etcd:x", plan.KindRelated)
	return p
}

func TestPairsFromPlan(t *testing.T) {
	pairs := PairsFromPlan(catalogPlan(), nil)
	want := []Pair{
		{Source: "docker.io/library/busybox", Mirror: "myregistry.com/olm/library-busybox", Tag: true},
		{Source: "quay.io/coreos/etcd-operator", Mirror: "myregistry.com/olm/coreos-etcd-operator", Digest: true},
		{Source: "registry.redhat.io/openshift4/ose-oauth-proxy", Mirror: "myregistry.com/olm/openshift4-ose-oauth-proxy", Digest: true},
		{Source: "registry.redhat.io/redhat/redhat-operator-index", Mirror: "myregistry.com/olm/redhat-redhat-operator-index", Tag: true},
	}
	if len(pairs) != len(want) {
		t.Fatalf("got %d pairs %+v, want %d", len(pairs), pairs, len(want))
	}
	for i := range want {
		if pairs[i] != want[i] {
			t.Errorf("pair %d = %+v, want %+v", i, pairs[i], want[i])
		}
	}
	noCatalog := PairsFromPlan(catalogPlan(), func(it plan.Item) bool { return it.Kind != plan.KindCatalog })
	if len(noCatalog) != 3 {
		t.Errorf("keep filter: got %d pairs, want 3: %+v", len(noCatalog), noCatalog)
	}
}

func TestCatalogMirrorSetsGolden(t *testing.T) {
	pairs := PairsFromPlan(catalogPlan(), nil)
	opts := SetOptions{Name: "redhat-operator-index", Labels: map[string]string{"operators.openshift.org/catalog": "true"}}

	icsp, err := ImageContentSourcePolicies(pairs, opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := YAML(icsp...)
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "catalog-icsp.yaml", b)

	idms, err := ImageDigestMirrorSets(pairs, opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err = YAML(idms...)
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "catalog-idms.yaml", b)

	itms, err := ImageTagMirrorSets(pairs, SetOptions{Name: "redhat-operator-index", MirrorSourcePolicy: "NeverContactSource"})
	if err != nil {
		t.Fatal(err)
	}
	b, err = YAML(itms...)
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "catalog-itms.yaml", b)

	// Tag-only sources must never reach IDMS/ICSP (a digest mirror does not
	// apply to tag pulls), digest-only never ITMS.
	for _, s := range []string{"source: docker.io/library/busybox", "source: registry.redhat.io/redhat/redhat-operator-index"} {
		if bytes.Contains(mustYAML(t, idms), []byte(s)) || bytes.Contains(mustYAML(t, icsp), []byte(s)) {
			t.Errorf("tag source %s leaked into IDMS/ICSP", s)
		}
	}
	if bytes.Contains(mustYAML(t, itms), []byte("source: registry.redhat.io/openshift4/ose-oauth-proxy")) {
		t.Errorf("digest source leaked into ITMS")
	}
}

func mustYAML[T any](t *testing.T, objs []T) []byte {
	t.Helper()
	b, err := YAML(objs...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// releasePairs has the shape of a release mirror: components keep their
// source path below a prefix, the release image goes to another repository.
func releasePairs() []Pair {
	return []Pair{
		{Source: "quay.io/openshift-release-dev/ocp-v4.0-art-dev", Mirror: "mirror.example.com:5000/openshift-release-dev/ocp-v4.0-art-dev", Digest: true},
		{Source: "quay.io/openshift-release-dev/ocp-release", Mirror: "mirror.example.com:5000/openshift/release-images", Digest: true},
		{Source: "registry.redhat.io/ubi9/ubi", Mirror: "mirror.example.com:5000/ubi9/ubi", Digest: true},
		{Source: "registry.redhat.io/rhel9/support-tools", Mirror: "mirror.example.com:5000/rhel9/support-tools", Digest: true},
		{Source: "registry.redhat.io/single", Mirror: "mirror.example.com:5000/x-single", Digest: true},
	}
}

func TestScopesGolden(t *testing.T) {
	for _, sc := range []Scope{ScopeRepository, ScopeNamespace, ScopeRegistry} {
		idms, err := ImageDigestMirrorSets(releasePairs(), SetOptions{Name: "idms-release", Scope: sc})
		if err != nil {
			t.Fatal(err)
		}
		golden.Check(t, "scope-"+string(sc)+".yaml", mustYAML(t, idms))
	}
}

func TestWiden(t *testing.T) {
	cases := []struct {
		src, dst    string
		scope       Scope
		wSrc, wMirr string
	}{
		{"quay.io/a/b", "m.io/a/b", ScopeNamespace, "quay.io/a", "m.io/a"},
		{"quay.io/a/b", "m.io/p/a/b", ScopeNamespace, "quay.io/a", "m.io/p/a"},
		{"quay.io/a/b", "m.io/p/a-b", ScopeNamespace, "quay.io/a/b", "m.io/p/a-b"}, // mangled: stay narrow
		{"quay.io/b", "m.io/b", ScopeNamespace, "quay.io/b", "m.io/b"},             // no namespace to widen to
		{"quay.io/a/b", "m.io/p/a/b", ScopeRegistry, "quay.io", "m.io/p"},
		{"quay.io/a/b", "m.io/a/b", ScopeRegistry, "quay.io", "m.io"},
		{"quay.io/a/b", "m.io/olm/a-b", ScopeRegistry, "quay.io/a/b", "m.io/olm/a-b"},
		{"quay.io/a/b", "m.io/p/a/b", ScopeRepository, "quay.io/a/b", "m.io/p/a/b"},
	}
	for _, c := range cases {
		s, m := widen(c.src, c.dst, c.scope)
		if s != c.wSrc || m != c.wMirr {
			t.Errorf("widen(%s, %s, %s) = %s, %s; want %s, %s", c.src, c.dst, c.scope, s, m, c.wSrc, c.wMirr)
		}
	}
}

func TestParseScope(t *testing.T) {
	if _, err := ParseScope("cluster"); err == nil || !strings.Contains(err.Error(), "repository") {
		t.Errorf("ParseScope(cluster) = %v, want error listing valid scopes", err)
	}
	if s, err := ParseScope(""); err != nil || s != ScopeRepository {
		t.Errorf("ParseScope(\"\") = %v, %v", s, err)
	}
}

// TestSplitRespectsLimit builds enough entries to need several objects and
// checks every object is within the limit, names are numbered, and no entry
// is lost or duplicated.
func TestSplitRespectsLimit(t *testing.T) {
	var pairs []Pair
	for i := 0; i < 3000; i++ {
		src := "registry.example.com/team" + strings.Repeat("x", i%40) + "/image-" + itoa(i)
		pairs = append(pairs, Pair{Source: src, Mirror: "mirror.example.com/olm/" + strings.TrimPrefix(src, "registry.example.com/"), Digest: true})
	}
	for _, limit := range []int{0, 20000, 3000} {
		idms, err := ImageDigestMirrorSets(pairs, SetOptions{Name: "big", MaxBytes: limit})
		if err != nil {
			t.Fatal(err)
		}
		max := limit
		if max == 0 {
			max = MaxObjectBytes
		}
		seen := map[string]bool{}
		for i, o := range idms {
			if want := "big-" + itoa(i); o.Metadata.Name != want {
				t.Errorf("object %d named %s, want %s", i, o.Metadata.Name, want)
			}
			b, _ := yaml.Marshal(o)
			if len(b) > max {
				t.Errorf("limit %d: object %s is %d bytes", max, o.Metadata.Name, len(b))
			}
			for _, e := range o.Spec.ImageDigestMirrors {
				if seen[e.Source] {
					t.Errorf("entry %s in two objects", e.Source)
				}
				seen[e.Source] = true
			}
		}
		if len(seen) != len(pairs) {
			t.Errorf("limit %d: %d entries written, want %d", max, len(seen), len(pairs))
		}
		if limit == 3000 && len(idms) < 20 {
			t.Errorf("limit 3000: only %d objects; split did not happen", len(idms))
		}
		if limit == 0 && len(idms) != 2 {
			// ~3000 entries of ~110 bytes do not fit one 250000-byte object.
			t.Errorf("default limit: %d objects, want 2", len(idms))
		}
	}
}

func TestSplitEntryTooBig(t *testing.T) {
	_, err := ImageDigestMirrorSets([]Pair{{Source: "a.io/" + strings.Repeat("x", 500), Mirror: "m.io/x", Digest: true}}, SetOptions{Name: "n", MaxBytes: 300})
	if err == nil || !strings.Contains(err.Error(), "alone") {
		t.Errorf("got %v, want an error about one entry exceeding the limit", err)
	}
}

func TestBadSetName(t *testing.T) {
	_, err := ImageDigestMirrorSets(releasePairs(), SetOptions{Name: "Bad_Name"})
	if err == nil || !strings.Contains(err.Error(), "Bad_Name") {
		t.Errorf("got %v, want error naming the bad name", err)
	}
	// No digest pairs at all: nothing to write, no error.
	objs, err := ImageDigestMirrorSets([]Pair{{Source: "a.io/x", Mirror: "m.io/x", Tag: true}}, SetOptions{Name: "n"})
	if err != nil || len(objs) != 0 {
		t.Errorf("tag-only pairs: got %d objects, %v; want none", len(objs), err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestCatalogSourceGolden(t *testing.T) {
	minimal, err := NewCatalogSource(CatalogSourceOptions{Name: "redhat-operator-index", Image: "myregistry.com/olm/redhat-redhat-operator-index:v4.8"})
	if err != nil {
		t.Fatal(err)
	}
	full, err := NewCatalogSource(CatalogSourceOptions{
		Name: CatalogSourceName("redhat/redhat-operator-index:v4.18"), Image: "myregistry.com/olm/redhat-redhat-operator-index:v4.18",
		DisplayName: "Red Hat Operators (mirror)", Publisher: "airlock", RegistryPoll: 10 * time.Minute,
		MemoryTarget: "30Mi", ExtractContent: &ExtractContent{CatalogDir: "/configs", CacheDir: "/tmp/cache"},
		Annotations: map[string]string{"airlock.io/source": "registry.redhat.io/redhat/redhat-operator-index:v4.18"},
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := yaml.Marshal(minimal)
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "catalogsource-minimal.yaml", b)
	b, err = yaml.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "catalogsource-full.yaml", b)
}

// TestClusterCatalog: OLM v1's ClusterCatalog, cluster-scoped, priority
// always written, the image as the mirror names it.
func TestClusterCatalog(t *testing.T) {
	cc, err := NewClusterCatalog("cc-redhat-operator-index-v4-18", "mirror.example.com:5000/redhat/redhat-operator-index:v4.18")
	if err != nil {
		t.Fatal(err)
	}
	b, err := yaml.Marshal(cc)
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "clustercatalog.yaml", b)
	if _, err := NewClusterCatalog("CC_Bad", "x.io/a:b"); err == nil || !strings.Contains(err.Error(), "CC_Bad") {
		t.Errorf("bad name: %v", err)
	}
	if _, err := NewClusterCatalog("cc-ok", ""); err == nil {
		t.Error("no image accepted")
	}
}

func TestCatalogSourceRejects(t *testing.T) {
	cases := map[string]CatalogSourceOptions{
		"name":     {Name: "Red_Hat", Image: "x.io/a:b"},
		"image":    {Name: "ok"},
		"memory":   {Name: "ok", Image: "x.io/a:b", MemoryTarget: "30 megs"},
		"extract":  {Name: "ok", Image: "x.io/a:b", ExtractContent: &ExtractContent{CatalogDir: "configs", CacheDir: "/tmp/cache"}},
		"negative": {Name: "ok", Image: "x.io/a:b", RegistryPoll: -time.Second},
	}
	for what, o := range cases {
		if _, err := NewCatalogSource(o); err == nil {
			t.Errorf("%s: bad options accepted", what)
		}
	}
}

func TestCatalogSourceName(t *testing.T) {
	cases := map[string]string{
		"redhat-operator-index":        "redhat-operator-index",
		"redhat/redhat-operator-index": "redhat-redhat-operator-index",
		"Community_Operators.v4.18":    "community-operators-v4-18",
		"--":                           "catalog",
		strings.Repeat("a", 70):        strings.Repeat("a", 63),
		strings.Repeat("a", 62) + "-b": strings.Repeat("a", 62),
	}
	for in, want := range cases {
		if got := CatalogSourceName(in); got != want {
			t.Errorf("CatalogSourceName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSignatureConfigMapGolden(t *testing.T) {
	one, err := SignatureConfigMap("", ReleaseSignatures{Digest: dgA, Signatures: [][]byte{[]byte("sig-one"), []byte("sig-two")}})
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "signatures-single.yaml", mustYAML(t, []ConfigMap{one}))
	if one.Metadata.Name != "sha256-"+strings.TrimPrefix(dgA, "sha256:") {
		t.Errorf("default name %s", one.Metadata.Name)
	}
	many, err := SignatureConfigMap("mirrored-release-signatures",
		ReleaseSignatures{Digest: dgB, Signatures: [][]byte{[]byte("b1")}},
		ReleaseSignatures{Digest: dgA, Signatures: [][]byte{[]byte("a1")}})
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "signatures-many.yaml", mustYAML(t, []ConfigMap{many}))

	if _, err := SignatureConfigMap("", ReleaseSignatures{Digest: dgA}, ReleaseSignatures{Digest: dgB}); err == nil {
		t.Error("several releases without a name accepted")
	}
	if _, err := SignatureConfigMap("x", ReleaseSignatures{Digest: "sha256:abc", Signatures: [][]byte{[]byte("s")}}); err == nil {
		t.Error("short digest accepted")
	}
	if _, err := SignatureConfigMap("x", ReleaseSignatures{Digest: dgA, Signatures: [][]byte{[]byte("s")}}, ReleaseSignatures{Digest: dgA, Signatures: [][]byte{[]byte("s")}}); err == nil {
		t.Error("duplicate release accepted")
	}
}

const testPEM = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"

func TestTrustedCAGolden(t *testing.T) {
	cm, err := TrustedCAConfigMap("mirror-registry-ca", map[string]string{"mirror.example.com:5000": testPEM, "registry.example.com": testPEM})
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "trusted-ca.yaml", mustYAML(t, []ConfigMap{cm}))
	if _, err := TrustedCAConfigMap("x", map[string]string{"a.io": "not a pem"}); err == nil || !strings.Contains(err.Error(), "a.io") {
		t.Errorf("non-PEM CA: got %v, want error naming the registry", err)
	}
	for in, want := range map[string]string{"h.io:5000": "h.io..5000", "h.io": "h.io", "127.0.0.1:443": "127.0.0.1..443"} {
		if got := TrustedCAKey(in); got != want {
			t.Errorf("TrustedCAKey(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestOperatorHubGolden(t *testing.T) {
	golden.Check(t, "operatorhub.yaml", mustYAML(t, []OperatorHub{OperatorHubDisableDefaults()}))
}

func TestInstallObjectsGolden(t *testing.T) {
	ns, og, sub, err := InstallObjects(InstallOptions{Package: "etcd", Channel: "alpha", StartingCSV: "etcdoperator.v0.9.2",
		Namespace: "etcd", Approval: "Manual", CatalogSource: "redhat-operator-index"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := YAML[any](ns, og, sub)
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "install-own-namespace.yaml", b)
	_, og, _, err = InstallObjects(InstallOptions{Package: "etcd", Channel: "alpha", Namespace: "openshift-operators", CatalogSource: "cs", AllNamespaces: true})
	if err != nil {
		t.Fatal(err)
	}
	b, _ = YAML(og)
	if strings.Contains(string(b), "targetNamespaces") {
		t.Errorf("AllNamespaces OperatorGroup has targetNamespaces:\n%s", b)
	}
	for _, bad := range []InstallOptions{
		{Package: "etcd", Channel: "alpha", Namespace: "Bad_NS", CatalogSource: "cs"},
		{Package: "etcd", Namespace: "ns", CatalogSource: "cs"},
		{Package: "etcd", Channel: "a", Namespace: "ns", CatalogSource: "cs", Approval: "sometimes"},
	} {
		if _, _, _, err := InstallObjects(bad); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
}
