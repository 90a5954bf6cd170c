package signature

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

const (
	digest = "sha256:4c5a7e26d707780be6466ddc9591865beb2e3baa5556432d23e8d57966a2dd18"
	other  = "sha256:b622d947ade4a13754e9d9f6803107f1b321eecd925c897f3c12de1aafccbdc5"
)

func newKey(t *testing.T, name string) *openpgp.Entity {
	t.Helper()
	e, err := openpgp.NewEntity(name, "test", name+"@example.com", &packet.Config{RSABits: 2048})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// sign makes a release signature the way Red Hat publishes them: an
// OpenPGP signed message whose literal data is the atomic container
// signature JSON.
func sign(t *testing.T, key *openpgp.Entity, typ, dgst string) []byte {
	t.Helper()
	doc := map[string]any{
		"critical": map[string]any{
			"type":     typ,
			"image":    map[string]string{"docker-manifest-digest": dgst},
			"identity": map[string]string{"docker-reference": "quay.io/openshift-release-dev/ocp-release:4.12.0-x86_64"},
		},
		"optional": map[string]any{"creator": "Red Hat OpenShift Signing Authority 0.0.1"},
	}
	body, _ := json.Marshal(doc)
	var buf bytes.Buffer
	w, err := openpgp.Sign(&buf, key, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(body)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeKey(t *testing.T, key *openpgp.Entity) string {
	t.Helper()
	var buf bytes.Buffer
	aw, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := key.Serialize(aw); err != nil {
		t.Fatal(err)
	}
	aw.Close()
	p := filepath.Join(t.TempDir(), "key.asc")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadVerifyConfigMap(t *testing.T) {
	key := newKey(t, "release")
	dir := t.TempDir()
	sd := filepath.Join(dir, "sha256="+strings.TrimPrefix(digest, "sha256:"))
	os.MkdirAll(sd, 0o755)
	s1, s2 := sign(t, key, "atomic container signature", digest), sign(t, key, "atomic container signature", digest)
	os.WriteFile(filepath.Join(sd, "signature-1"), s1, 0o644)
	os.WriteFile(filepath.Join(sd, "signature-2"), s2, 0o644)
	os.WriteFile(filepath.Join(sd, "signature-4"), s2, 0o644) // after a gap: not read

	sigs, err := Load(dir, digest)
	if err != nil {
		t.Fatal(err)
	}
	if len(sigs) != 2 {
		t.Fatalf("loaded %d signatures, want 2", len(sigs))
	}
	kr, err := ReadKeyring(writeKey(t, key))
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyAll(sigs, kr, digest); err != nil {
		t.Fatal(err)
	}
	c, err := Verify(sigs[0], kr, digest)
	if err != nil || c.Critical.Identity.DockerReference == "" {
		t.Fatalf("claims %+v, err %v", c, err)
	}
	cm, err := ConfigMap(digest, sigs)
	if err != nil {
		t.Fatal(err)
	}
	if cm.Metadata.Namespace != "openshift-config-managed" || cm.Metadata.Name != "sha256-"+strings.TrimPrefix(digest, "sha256:") {
		t.Errorf("configmap metadata %+v", cm.Metadata)
	}
	if _, ok := cm.Metadata.Labels["release.openshift.io/verification-signatures"]; !ok {
		t.Errorf("configmap lacks the verification-signatures label: %+v", cm.Metadata.Labels)
	}
	hex := strings.TrimPrefix(digest, "sha256:")
	if !bytes.Equal(cm.BinaryData["sha256-"+hex+"-1"], s1) || !bytes.Equal(cm.BinaryData["sha256-"+hex+"-2"], s2) || len(cm.BinaryData) != 2 {
		t.Errorf("configmap binaryData keys wrong: %d entries", len(cm.BinaryData))
	}
	if FileName(digest) != "signature-sha256-4c5a7e26d707780b.json" {
		t.Errorf("FileName = %s", FileName(digest))
	}
}

func TestVerifyRejects(t *testing.T) {
	key, stranger := newKey(t, "release"), newKey(t, "stranger")
	kr := openpgp.EntityList{key}
	good := sign(t, key, "atomic container signature", digest)
	tampered := append([]byte{}, good...)
	tampered[len(tampered)/2] ^= 0xff
	tests := []struct {
		name string
		sig  []byte
		want string
	}{
		{"other image", sign(t, key, "atomic container signature", other), "signature is for image " + other},
		{"unknown key", sign(t, stranger, "atomic container signature", digest), "not in the verification keyring"},
		{"wrong type", sign(t, key, "cosign container image signature", digest), `want "atomic container signature"`},
		{"garbage", []byte("not a signature"), "not an OpenPGP signed message"},
		{"tampered", tampered, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Verify(tc.sig, kr, digest)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if err := VerifyAll([][]byte{good, sign(t, key, "atomic container signature", other)}, kr, digest); err == nil || !strings.Contains(err.Error(), "signature-2") {
		t.Errorf("VerifyAll should name signature-2: %v", err)
	}
}

func TestLoadMissing(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(dir, digest)
	if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), PublicURL+"sha256=4c5a7e26") {
		t.Fatalf("err = %v, want ErrMissing telling where to download", err)
	}
	if _, err := Load(filepath.Join(dir, "nope"), digest); err == nil || !strings.Contains(err.Error(), "not a readable directory") {
		t.Fatalf("err = %v", err)
	}
	if _, err := ReadKeyring(filepath.Join(dir, "nokey")); err == nil || !strings.Contains(err.Error(), "--verify-key") {
		t.Fatalf("err = %v", err)
	}
	bad := filepath.Join(dir, "bad.asc")
	os.WriteFile(bad, []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxx\n-----END PGP PUBLIC KEY BLOCK-----\n"), 0o644)
	if _, err := ReadKeyring(bad); err == nil || !strings.Contains(err.Error(), "not an OpenPGP public key") {
		t.Fatalf("err = %v", err)
	}
}
