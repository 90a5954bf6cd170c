package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"sigs.k8s.io/yaml"

	"github.com/airlock-mirror/airlock/internal/clusterres"
	"github.com/airlock-mirror/airlock/internal/release/releasetest"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
)

// TestReleaseSigstoreSignatureVerifiesAtMirror: a release image signed
// upstream with cosign keeps a signature that verifies, with the same key,
// at the destination of `airlock release mirror`, and --signature-key with
// that key writes a ClusterImagePolicy whose scopes are the release's
// source repositories and whose key is the one that signed.
func TestReleaseSigstoreSignatureVerifiesAtMirror(t *testing.T) {
	s := newSignedSource(t)
	rel, err := releasetest.Build(s.reg.Host, releasetest.Options{Components: 2, Remote: []remote.Option{remote.WithTransport(s.reg.Transport)}})
	if err != nil {
		t.Fatal(err)
	}
	repo, _, _ := strings.Cut(rel.Ref, "@")
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	s.sign(t, repo+"@"+rel.Digest)

	dst := regtest.Start(t)
	manifests := t.TempDir()
	mustRun(t, s.env, "", airlockBin, "release", "mirror", "--insecure", "--from", rel.Ref, "--to", dst.Host+"/ocp/release",
		"--to-manifests", manifests, "--signature-key", s.pub)
	if r := s.verify(t, dst.Host+"/ocp/release@"+rel.Digest); r.err != nil {
		t.Fatalf("cosign verify of the mirrored release with the upstream key: %v", r)
	}

	b, err := os.ReadFile(filepath.Join(manifests, "cip-airlock.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cip clusterres.ClusterImagePolicy
	if err := yaml.Unmarshal([]byte(strings.TrimPrefix(string(b), "---\n")), &cip); err != nil {
		t.Fatal(err)
	}
	pub, _ := os.ReadFile(s.pub)
	if got := string(cip.Spec.Policy.RootOfTrust.PublicKey.KeyData); got != string(pub) {
		t.Errorf("keyData is not the signing key:\n%s", got)
	}
	if !contains(cip.Spec.Scopes, repo) {
		t.Errorf("scopes %v lack the release repository %s", cip.Spec.Scopes, repo)
	}

	// A file that is not a public key is refused, named, before copying.
	r := run(t, s.env, "", airlockBin, "release", "mirror", "--insecure", "--from", rel.Ref, "--to", dst.Host+"/ocp/other",
		"--to-manifests", t.TempDir(), "--signature-key", s.key)
	if r.err == nil || !strings.Contains(r.stderr, s.key) || !strings.Contains(r.stderr, "private key") {
		t.Errorf("release mirror --signature-key PRIVATE: %v", r)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestMirrorConfigImagePolicy: `mirror -c` mirror-to-mirror of cosign-signed
// and unsigned images with --signature-key, --image-policy-namespace and
// --signature-lookaside writes ip-airlock.yaml (an ImagePolicy in the
// namespace whose scopes are exactly the signed source repositories and
// whose key is the signing key) instead of cip-airlock.yaml, and the
// lookaside on every registries.d entry; the signatures verify with cosign
// at the destination.
func TestMirrorConfigImagePolicy(t *testing.T) {
	s := newSignedSource(t)
	dst := regtest.Start(t)
	isc := filepath.Join(t.TempDir(), "imageset.yaml")
	if err := os.WriteFile(isc, []byte(`apiVersion: mirror.openshift.io/v2alpha1
kind: ImageSetConfiguration
mirror:
  additionalImages:
  - name: `+s.signed+`
  - name: `+s.multi+`
  - name: `+s.unsigned+`
`), 0o644); err != nil {
		t.Fatal(err)
	}
	ws := t.TempDir()
	lookaside := "https://sigs.example.com/openpgp"
	mustRun(t, s.env, "", airlockBin, "mirror", "-c", isc, "--insecure", "--workspace", "file://"+ws, "docker://"+dst.Host+"/m",
		"--signature-key", s.pub, "--image-policy-namespace", "team-a", "--signature-lookaside", lookaside)

	res := filepath.Join(ws, "working-dir", "cluster-resources")
	if _, err := os.Stat(filepath.Join(res, "cip-airlock.yaml")); err == nil {
		t.Errorf("cip-airlock.yaml written with --image-policy-namespace")
	}
	b, err := os.ReadFile(filepath.Join(res, "ip-airlock.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var ip clusterres.ImagePolicy
	if err := yaml.Unmarshal([]byte(strings.TrimPrefix(string(b), "---\n")), &ip); err != nil {
		t.Fatal(err)
	}
	pub, _ := os.ReadFile(s.pub)
	if ip.Kind != "ImagePolicy" || ip.Metadata.Namespace != "team-a" || string(ip.Spec.Policy.RootOfTrust.PublicKey.KeyData) != string(pub) {
		t.Errorf("not an ImagePolicy in team-a with the signing key:\n%s", b)
	}
	want := []string{s.reg.Ref("apps/multi"), s.reg.Ref("apps/signed")}
	if strings.Join(ip.Spec.Scopes, " ") != strings.Join(want, " ") {
		t.Errorf("scopes %v, want the signed repositories %v", ip.Spec.Scopes, want)
	}
	rd, err := os.ReadFile(filepath.Join(res, "sigstore-registries-airlock.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(rd), "lookaside: "+lookaside); n != 2 {
		t.Errorf("registries.d has the lookaside on %d entries, want 2:\n%s", n, rd)
	}
	if r := s.verify(t, dst.Host+"/m/apps/signed@"+s.signedD); r.err != nil {
		t.Errorf("cosign verify at the destination: %v", r)
	}
}
