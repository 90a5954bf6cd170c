// Package pgptest makes OpenPGP keys and "atomic container signatures" (the
// simple-signing format of Red Hat's release signatures) for tests, so a
// test that needs a signed release names what it signs instead of
// re-writing the key, signing and armoring steps.
package pgptest

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// NewKey is a fresh 2048-bit RSA key pair named name (fast enough for tests).
func NewKey(t testing.TB, name string) *openpgp.Entity {
	t.Helper()
	k, err := openpgp.NewEntity(name, "test", name+"@example.com", &packet.Config{RSABits: 2048})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// SignAtomic is k's signed (not detached) atomic container signature
// binding dockerRef to the manifest digest.
func SignAtomic(t testing.TB, k *openpgp.Entity, dockerRef, digest string) []byte {
	t.Helper()
	body, err := json.Marshal(map[string]any{"critical": map[string]any{
		"type": "atomic container signature", "image": map[string]string{"docker-manifest-digest": digest},
		"identity": map[string]string{"docker-reference": dockerRef}}})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := openpgp.Sign(&buf, k, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// PublicKeyFile writes k's armored public key into a temporary directory
// and returns its path.
func PublicKeyFile(t testing.TB, k *openpgp.Entity) string {
	t.Helper()
	var kb bytes.Buffer
	aw, err := armor.Encode(&kb, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Serialize(aw); err != nil {
		t.Fatal(err)
	}
	if err := aw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "key.asc")
	if err := os.WriteFile(p, kb.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
