package clusterres

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlock-mirror/airlock/internal/testutil/golden"
)

func testKey(t *testing.T, name string) SigstoreKey {
	t.Helper()
	file := filepath.Join("testdata", name)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParsePublicKey(name, data)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestClusterImagePolicyGolden: the release shape at namespace scope (the
// release components widen to their namespace, the mangled one stays a
// repository), one key and the default identity.
func TestClusterImagePolicyGolden(t *testing.T) {
	scopes := PolicyScopes(releasePairs(), ScopeNamespace)
	want := "quay.io/openshift-release-dev registry.redhat.io/rhel9 registry.redhat.io/single registry.redhat.io/ubi9"
	if got := strings.Join(scopes, " "); got != want {
		t.Errorf("scopes = %s, want %s", got, want)
	}
	cips, err := ClusterImagePolicies(scopes, PolicyOptions{Name: "cip-airlock", Keys: []SigstoreKey{testKey(t, "cosign-1.pub")}})
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "cip-one-key.yaml", mustYAML(t, cips))
}

// TestClusterImagePolicyTwoKeysRemap: one object per key, RemapIdentity.
func TestClusterImagePolicyTwoKeysRemap(t *testing.T) {
	scopes := PolicyScopes(releasePairs(), ScopeRepository)
	id := &PolicyIdentity{MatchPolicy: RemapIdentity, RemapIdentity: &PolicyMatchRemapIdentity{
		Prefix: "quay.io/openshift-release-dev", SignedPrefix: "staging.example.com/release"}}
	cips, err := ClusterImagePolicies(scopes, PolicyOptions{Name: "cip-airlock", Identity: id,
		Keys: []SigstoreKey{testKey(t, "cosign-1.pub"), testKey(t, "cosign-2.pub")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(cips) != 2 || len(cips[0].Spec.Scopes) != 5 {
		t.Fatalf("got %d objects, want 2 of 5 scopes", len(cips))
	}
	golden.Check(t, "cip-two-keys-remap.yaml", mustYAML(t, cips))
}

func TestImagePolicyGolden(t *testing.T) {
	id := &PolicyIdentity{MatchPolicy: ExactRepository, ExactRepository: &PolicyMatchExactRepository{Repository: "quay.io/team/app"}}
	ips, err := ImagePolicies([]string{"quay.io/team/app", "quay.io/team/app-sidecar"}, PolicyOptions{
		Name: "ip-airlock", Namespace: "team-a", Identity: id, Keys: []SigstoreKey{testKey(t, "cosign-2.pub")}})
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "imagepolicy.yaml", mustYAML(t, ips))
	if _, err := ImagePolicies([]string{"quay.io/a"}, PolicyOptions{Name: "x", Keys: []SigstoreKey{testKey(t, "cosign-2.pub")}}); err == nil || !strings.Contains(err.Error(), "namespace") {
		t.Errorf("ImagePolicy without namespace: %v", err)
	}
}

func TestPolicySplitsScopes(t *testing.T) {
	var scopes []string
	for i := 0; i < MaxPolicyScopes+10; i++ {
		scopes = append(scopes, "quay.io/ns/repo-"+itoa(i))
	}
	cips, err := ClusterImagePolicies(scopes, PolicyOptions{Name: "cip", Keys: []SigstoreKey{testKey(t, "cosign-1.pub")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(cips) != 2 || len(cips[0].Spec.Scopes) != MaxPolicyScopes || len(cips[1].Spec.Scopes) != 10 || cips[1].Metadata.Name != "cip-1" {
		t.Errorf("split: %d objects", len(cips))
	}
}

func TestValidateScope(t *testing.T) {
	ok := []string{"quay.io", "quay.io/ns", "quay.io/ns/repo", "localhost:5000/a/b", "mirror.example.com:5000", "*.example.com"}
	for _, s := range ok {
		if err := ValidateScope(s); err != nil {
			t.Errorf("ValidateScope(%s) = %v", s, err)
		}
	}
	bad := map[string]string{
		"":                            "empty",
		"quay.io/ns/repo:latest":      "has a tag",
		"quay.io/ns/repo@sha256:abcd": "has a digest",
		"quay.io/*/repo":              "wildcard",
		"*.example.com/ns":            "wildcard",
		"foo.*.example.com":           "wildcard",
		"busybox":                     "registry host",
		"docker://quay.io/a":          "transport",
		"quay.io//a":                  "empty path component",
	}
	for s, want := range bad {
		err := ValidateScope(s)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ValidateScope(%q) = %v, want error containing %q", s, err, want)
		}
	}
	k := testKey(t, "cosign-1.pub")
	if _, err := ClusterImagePolicies([]string{"quay.io/a:v1"}, PolicyOptions{Name: "cip", Keys: []SigstoreKey{k}}); err == nil || !strings.Contains(err.Error(), "cip") || !strings.Contains(err.Error(), "tag") {
		t.Errorf("tagged scope: %v", err)
	}
	if _, err := ClusterImagePolicies([]string{"quay.io/a"}, PolicyOptions{Name: "cip"}); err == nil || !strings.Contains(err.Error(), "--signature-key") {
		t.Errorf("no key: %v", err)
	}
}

func TestValidateIdentity(t *testing.T) {
	bad := map[string]*PolicyIdentity{
		"want MatchRepoDigestOrExact": {MatchPolicy: "Exact"},
		"needs exactRepository":       {MatchPolicy: ExactRepository},
		"has a tag":                   {MatchPolicy: ExactRepository, ExactRepository: &PolicyMatchExactRepository{Repository: "quay.io/a:v1"}},
		"needs remapIdentity":         {MatchPolicy: RemapIdentity},
		"signedPrefix is required":    {MatchPolicy: RemapIdentity, RemapIdentity: &PolicyMatchRemapIdentity{Prefix: "quay.io/a"}},
		"no wildcard":                 {MatchPolicy: RemapIdentity, RemapIdentity: &PolicyMatchRemapIdentity{Prefix: "*.quay.io", SignedPrefix: "a.io"}},
		"takes no":                    {MatchPolicy: MatchRepository, ExactRepository: &PolicyMatchExactRepository{Repository: "quay.io/a"}},
	}
	for want, id := range bad {
		if err := ValidateIdentity(id); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ValidateIdentity(%+v) = %v, want %q", id, err, want)
		}
	}
}

func TestParsePublicKey(t *testing.T) {
	pub, _ := os.ReadFile(filepath.Join("testdata", "cosign-1.pub"))
	cases := map[string][]byte{
		"not a PEM file":      []byte("hello"),
		"is a private key":    []byte("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"),
		"want \"PUBLIC KEY\"": []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
		"not a valid public":  []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
		"more than one PEM":   append(append([]byte{}, pub...), pub...),
	}
	for want, data := range cases {
		_, err := ParsePublicKey("keys/x.pub", data)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "keys/x.pub") {
			t.Errorf("%s: %v", want, err)
		}
	}
}

func TestRegistriesDGolden(t *testing.T) {
	rd, err := RegistriesDConfig(releasePairs(), nil, ScopeNamespace, "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := rd.YAML()
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "registries.d-sigstore.yaml", b)
	rd, err = RegistriesDConfig(releasePairs()[:2], nil, ScopeRepository, "https://mirror.example.com/signatures")
	if err != nil {
		t.Fatal(err)
	}
	if b, err = rd.YAML(); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "registries.d-lookaside.yaml", b)
	if _, err := RegistriesDConfig(releasePairs(), nil, ScopeNamespace, "mirror.example.com/sigs"); err == nil || !strings.Contains(err.Error(), "URL") {
		t.Errorf("bad lookaside: %v", err)
	}
}

// TestRegistriesDOpenPGP: mirrors of images carrying OpenPGP signatures
// only (a release with its atomic signatures, no cosign signature) get a
// lookaside entry without use-sigstore-attachments; a mirror of both kinds
// gets both; OpenPGP images without a lookaside URL are refused.
func TestRegistriesDOpenPGP(t *testing.T) {
	rp := releasePairs()
	// ubi9 sigstore-signed only, the release OpenPGP only, support-tools both.
	rd, err := RegistriesDConfig([]Pair{rp[2], rp[3]}, []Pair{rp[1], rp[3]}, ScopeRepository, "https://sigs.example.com/openpgp")
	if err != nil {
		t.Fatal(err)
	}
	b, err := rd.YAML()
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "registries.d-openpgp.yaml", b)
	// OpenPGP only: no sigstore entry at all is still a file.
	rd, err = RegistriesDConfig(nil, rp[1:2], ScopeRepository, "file:///var/lib/sigs")
	if err != nil {
		t.Fatal(err)
	}
	if e := rd.Docker["mirror.example.com:5000/openshift/release-images"]; len(rd.Docker) != 1 || e.Lookaside != "file:///var/lib/sigs" || e.UseSigstoreAttachments {
		t.Errorf("OpenPGP only: %+v", rd.Docker)
	}
	if _, err := RegistriesDConfig(nil, rp[1:2], ScopeRepository, ""); err == nil || !strings.Contains(err.Error(), "lookaside URL") {
		t.Errorf("OpenPGP without lookaside: %v", err)
	}
}

func TestNodePolicyGolden(t *testing.T) {
	scopes := PolicyScopes(releasePairs(), ScopeNamespace)
	p, err := NodePolicy(scopes, NodePolicyOptions{Keys: []SigstoreKey{testKey(t, "cosign-1.pub")}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.JSON()
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "policy-keydata.json", b)
	id := &PolicyIdentity{MatchPolicy: RemapIdentity, RemapIdentity: &PolicyMatchRemapIdentity{Prefix: "quay.io/openshift-release-dev", SignedPrefix: "staging.example.com/release"}}
	p, err = NodePolicy(scopes[:1], NodePolicyOptions{Identity: id, KeyDir: "/etc/pki/containers",
		Keys: []SigstoreKey{testKey(t, "cosign-1.pub"), testKey(t, "cosign-2.pub")}})
	if err != nil {
		t.Fatal(err)
	}
	if b, err = p.JSON(); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "policy-keypath-remap.json", b)
}
