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
