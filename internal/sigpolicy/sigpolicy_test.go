package sigpolicy

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlock-mirror/airlock/internal/testutil/pgptest"
)

const digest = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

func newKey(t *testing.T, dir, name string) (*ecdsa.PrivateKey, string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".pub")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return k, path
}

func sign(t *testing.T, k *ecdsa.PrivateKey, msg []byte) string {
	t.Helper()
	sum := sha256.Sum256(msg)
	sig, err := ecdsa.SignASN1(rand.Reader, k, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// simple is a cosign tag-style signature of dgst claiming identity.
func simple(t *testing.T, k *ecdsa.PrivateKey, identity, dgst string) SimpleSigning {
	payload := fmt.Appendf(nil, `{"critical":{"identity":{"docker-reference":%q},"image":{"docker-manifest-digest":%q},"type":"cosign container image signature"},"optional":null}`, identity, dgst)
	return SimpleSigning{Payload: payload, Signature: sign(t, k, payload)}
}

// dsse is a cosign v3 bundle: a DSSE envelope over an in-toto statement.
func dsse(t *testing.T, k *ecdsa.PrivateKey, dgst string) []byte {
	algo, h, _ := strings.Cut(dgst, ":")
	stmt := fmt.Appendf(nil, `{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{%q:%q}}],"predicateType":"https://sigstore.dev/cosign/sign/v1","predicate":{}}`, algo, h)
	typ := "application/vnd.in-toto+json"
	pae := fmt.Appendf(nil, "DSSEv1 %d %s %d %s", len(typ), typ, len(stmt), stmt)
	b, _ := json.Marshal(map[string]any{
		"mediaType":    "application/vnd.dev.sigstore.bundle.v0.3+json",
		"dsseEnvelope": map[string]any{"payload": base64.StdEncoding.EncodeToString(stmt), "payloadType": typ, "signatures": []map[string]string{{"sig": sign(t, k, pae)}}},
	})
	return b
}

func writePolicy(t *testing.T, dir, body string) string {
	t.Helper()
	p := filepath.Join(dir, "policy.json")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSigstorePolicy: a policy requiring a key accepts a tag-style
// signature and a cosign v3 bundle by that key, and refuses — naming the
// policy file, the scope and the reason — an unsigned image, a tampered
// signature, a signature by another key, one for another digest and one
// for another repository; other scopes follow their own rules.
func TestSigstorePolicy(t *testing.T) {
	dir := t.TempDir()
	good, goodPub := newKey(t, dir, "good")
	other, _ := newKey(t, dir, "other")
	path := writePolicy(t, dir, `{
  "default": [{"type": "reject"}],
  "transports": {"docker": {
    "quay.io/app": [{"type": "sigstoreSigned", "keyPath": "good.pub", "signedIdentity": {"type": "matchRepository"}}],
    "quay.io/app/legacy": [{"type": "insecureAcceptAnything"}],
    "*.example.com": [{"type": "sigstoreSigned", "keyPath": "`+goodPub+`"}]
  }}
}`)
	p, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	img := "quay.io/app/web@" + digest
	tampered := simple(t, good, "quay.io/app/web", digest)
	tampered.Payload = bytes.Replace(tampered.Payload, []byte("aaaa"), []byte("aaab"), 1)
	cases := []struct {
		name string
		ev   Evidence
		want string // "" = accepted, else a substring of the refusal
	}{
		{"tag-style signature", Evidence{Image: img, Digest: digest, Simple: []SimpleSigning{simple(t, good, "quay.io/app/web", digest)}}, ""},
		{"bundle", Evidence{Image: "quay.io/app/web:v1", Digest: digest, Bundles: [][]byte{dsse(t, good, digest)}}, "cannot be checked"},
		{"unsigned", Evidence{Image: img, Digest: digest}, "no sigstore signature"},
		{"tampered", Evidence{Image: img, Digest: digest, Simple: []SimpleSigning{tampered}}, "not signed by the policy's key"},
		{"another key", Evidence{Image: img, Digest: digest, Simple: []SimpleSigning{simple(t, other, "quay.io/app/web", digest)}}, "not signed by the policy's key"},
		{"another digest", Evidence{Image: img, Digest: digest, Simple: []SimpleSigning{simple(t, good, "quay.io/app/web", "sha256:"+strings.Repeat("b", 64))}}, "signs sha256:bbbb"},
		{"another repository", Evidence{Image: img, Digest: digest, Simple: []SimpleSigning{simple(t, good, "quay.io/evil/web", digest)}}, `signature names "quay.io/evil/web"`},
		{"bad then good", Evidence{Image: img, Digest: digest, Simple: []SimpleSigning{tampered, simple(t, good, "quay.io/app/web", digest)}}, ""},
		{"accept scope", Evidence{Image: "quay.io/app/legacy:1", Digest: digest}, ""},
		{"default reject", Evidence{Image: "docker.io/library/busybox:1", Digest: digest}, "scope default"},
		{"tagged image, cosign's repository-only identity", Evidence{Image: "r.example.com/x/y:v1", Digest: digest, Simple: []SimpleSigning{simple(t, good, "r.example.com/x/y", digest)}}, ""},
		{"tagged image, identity of another repository", Evidence{Image: "r.example.com/x/y:v1", Digest: digest, Simple: []SimpleSigning{simple(t, good, "r.example.com/x/z", digest)}}, "wants repository r.example.com/x/y"},
		{"wildcard bundle", Evidence{Image: "r.eu.example.com/x/y@" + digest, Digest: digest, Bundles: [][]byte{dsse(t, good, digest)}}, ""},
		{"wildcard bundle for another digest", Evidence{Image: "r.eu.example.com/x/y@" + digest, Digest: digest, Bundles: [][]byte{dsse(t, good, "sha256:"+strings.Repeat("c", 64))}}, "subject is not"},
		{"wildcard bundle by another key", Evidence{Image: "r.example.com/x/y@" + digest, Digest: digest, Bundles: [][]byte{dsse(t, other, digest)}}, "not signed by the policy's key"},
	}
	for _, c := range cases {
		err := p.Check(context.Background(), c.ev)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.want != "" && err == nil:
			t.Errorf("%s: accepted", c.name)
		case c.want != "" && !strings.Contains(err.Error(), c.want):
			t.Errorf("%s: %v, want it to say %q", c.name, err, c.want)
		case err != nil && !strings.Contains(err.Error(), path):
			t.Errorf("%s: %v does not name %s", c.name, err, path)
		}
	}
}

func TestScopes(t *testing.T) {
	p := &Policy{Default: []Requirement{{Type: TypeReject}}, Transports: map[string]map[string][]Requirement{"docker": {
		"":                          {{Type: "t-default"}},
		"quay.io":                   {{Type: "t-host"}},
		"quay.io/ns":                {{Type: "t-ns"}},
		"quay.io/ns/repo":           {{Type: "t-repo"}},
		"quay.io/ns/repo:v1":        {{Type: "t-tag"}},
		"*.example.com":             {{Type: "t-wild"}},
		"*.b.example.com":           {{Type: "t-wild2"}},
		"quay.io/ns/repo@" + digest: {{Type: "t-digest"}},
	}}}
	for image, want := range map[string]string{
		"quay.io/ns/repo:v1":        "t-tag",
		"quay.io/ns/repo:v2":        "t-repo",
		"quay.io/ns/repo@" + digest: "t-digest",
		"quay.io/ns/other:v1":       "t-ns",
		"quay.io/x/y":               "t-host",
		"a.b.example.com/x":         "t-wild2",
		"c.example.com:5000/x":      "t-wild",
		"registry.io/x":             "t-default",
	} {
		if _, r := p.For(image); r[0].Type != want {
			t.Errorf("%s: %s, want %s", image, r[0].Type, want)
		}
	}
}

func TestIdentityRules(t *testing.T) {
	for _, c := range []struct {
		id            *Identity
		image, signed string
		ok            bool
	}{
		{nil, "quay.io/a/b:v1", "quay.io/a/b:v1", true},
		{nil, "quay.io/a/b:v1", "quay.io/a/b:v2", false},
		{nil, "quay.io/a/b@" + digest, "quay.io/a/b:anything", true},
		{&Identity{Type: MatchExact}, "quay.io/a/b@" + digest, "quay.io/a/b", false},
		{&Identity{Type: MatchRepository}, "quay.io/a/b:v1", "quay.io/a/b:v9", true},
		{&Identity{Type: ExactReference, DockerReference: "quay.io/x/y:1"}, "mirror/a:v1", "quay.io/x/y:1", true},
		{&Identity{Type: ExactRepository, DockerRepository: "quay.io/x/y"}, "mirror/a:v1", "quay.io/x/z:1", false},
		{&Identity{Type: RemapIdentity, Prefix: "mirror.local/rh", SignedPrefix: "registry.redhat.io"}, "mirror.local/rh/ubi9/ubi@" + digest, "registry.redhat.io/ubi9/ubi", true},
		{&Identity{Type: RemapIdentity, Prefix: "mirror.local/rh", SignedPrefix: "registry.redhat.io"}, "mirror.local/rhx/ubi@" + digest, "registry.redhat.io/x/ubi", false},
		{nil, "busybox:1", "docker.io/library/busybox:1", true},
	} {
		if err := c.id.matches(c.image, c.signed); (err == nil) != c.ok {
			t.Errorf("%+v image %s signed %s: %v, want ok=%v", c.id, c.image, c.signed, err, c.ok)
		}
	}
}

// TestParseErrors: a policy that cannot be enforced offline, or is not a
// policy, is refused when loaded, naming file and scope.
func TestParseErrors(t *testing.T) {
	dir := t.TempDir()
	_, pub := newKey(t, dir, "k")
	notKey := filepath.Join(dir, "notkey.pub")
	os.WriteFile(notKey, []byte("hello"), 0o644)
	for body, want := range map[string]string{
		`{"default": []}`: `"default" is empty`,
		`{"default": [{"type": "insecureAcceptAnything"}], "transports": {"docker": {"q.io/a": [{"type": "sigstoreSigned", "keyPath": "` + pub + `", "fulcio": {"caPath": "x"}}]}}}`: `transports.docker["q.io/a"]: sigstoreSigned requirement: fulcio`,
		// Keyless and transparency-log requirements: refused by name with
		// what is supported, never loaded with the Rekor part ignored.
		`{"default": [{"type": "sigstoreSigned", "fulcio": {"caPath": "x", "oidcIssuer": "https://i", "subjectEmail": "a@b"}, "rekorPublicKeyPath": "r.pub"}]}`: `default: sigstoreSigned requirement: fulcio, rekorPublicKeyPath: keyless (Fulcio certificate), PKI and Rekor transparency-log signatures are not supported`,
		`{"default": [{"type": "sigstoreSigned", "keyPath": "` + pub + `", "rekorPublicKeyPath": "r.pub"}]}`:                                                    "rekorPublicKeyPath: keyless",
		`{"default": [{"type": "sigstoreSigned", "keyPath": "` + pub + `", "rekorPublicKeyData": "eA=="}]}`:                                                     "give keyPath, keyPaths, keyData or keyDatas",
		`{"default": [{"type": "sigstoreSigned", "keyPath": "` + pub + `", "rekorPublicKeyPaths": ["a"], "rekorPublicKeyDatas": ["eA=="]}]}`:                    "rekorPublicKeyPaths, rekorPublicKeyDatas",
		`{"default": [{"type": "sigstoreSigned", "pki": {"caRootsPath": "x"}}]}`:                                                                                "pki: keyless",
		`{"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "` + pub + `", "fulcio": {}}]}`:                                                     "only sigstoreSigned takes",
		`{"default": [{"type": "bogus"}]}`:                                                                "unknown type",
		`{"default": [{"type": "sigstoreSigned"}]}`:                                                       "no keyPath",
		`{"default": [{"type": "sigstoreSigned", "keyPath": "` + notKey + `"}]}`:                          "not a PEM file",
		`{"default": [{"type": "sigstoreSigned", "keyPath": "missing.pub"}]}`:                             "missing.pub",
		`{"default": [{"type": "reject"}], "transports": {"docker": {"q.io/*/x": [{"type": "reject"}]}}}`: "wildcard",
		`{"default": [{"type": "reject"}], "transports": {"docker": {"q.io": []}}}`:                       "empty requirement list",
		`{"default": [{"type": "reject", "signedIdentity": {"type": "remapIdentity", "prefix": "x"}}]}`:   "signedPrefix",
		`{"default": [{"type": "reject"}], "surprise": 1}`:                                                "unknown field",
		`{"default": [{"type": "signedBy", "keyType": "X509", "keyPath": "` + pub + `"}]}`:                "GPGKeys",
	} {
		path := writePolicy(t, dir, body)
		_, err := Load(path)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s:\n got %v\n want %q and the file name", body, err, want)
		}
	}
}

// TestSignedByLookaside: OpenPGP atomic signatures published in a
// lookaside (file:// layout BASE/<path>@sha256=<hex>/signature-N, found
// through registries.d) satisfy a signedBy requirement when one is by the
// keyring's key for the digest, and not otherwise.
func TestSignedByLookaside(t *testing.T) {
	dir := t.TempDir()
	key, stranger := pgptest.NewKey(t, "release"), pgptest.NewKey(t, "stranger")
	keyFile := pgptest.PublicKeyFile(t, key)
	sigs := filepath.Join(dir, "sigs")
	publish := func(repoPath, dgst string, bodies ...[]byte) {
		d := filepath.Join(sigs, repoPath+"@"+strings.Replace(dgst, ":", "=", 1))
		os.MkdirAll(d, 0o755)
		for i, b := range bodies {
			os.WriteFile(filepath.Join(d, fmt.Sprintf("signature-%d", i+1)), b, 0o644)
		}
	}
	other := "sha256:" + strings.Repeat("d", 64)
	stale := "sha256:" + strings.Repeat("e", 64)
	publish("ocp/release", digest, pgptest.SignAtomic(t, stranger, "quay.io/ocp/release", digest), pgptest.SignAtomic(t, key, "quay.io/ocp/release", digest))
	publish("ocp/release", other, pgptest.SignAtomic(t, stranger, "quay.io/ocp/release", other))
	publish("ocp/release", stale, pgptest.SignAtomic(t, key, "quay.io/ocp/release", digest))
	rdDir := filepath.Join(dir, "registries.d")
	os.MkdirAll(rdDir, 0o755)
	os.WriteFile(filepath.Join(rdDir, "quay.yaml"), []byte("docker:\n  quay.io/ocp:\n    lookaside: file://"+sigs+"\n"), 0o644)
	p, err := Load(writePolicy(t, dir, `{"default": [{"type": "reject"}], "transports": {"docker": {"quay.io/ocp": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "`+keyFile+`"}]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	ev := Evidence{Image: "quay.io/ocp/release@" + digest, Digest: digest}
	if err := p.Check(context.Background(), ev); err == nil || !strings.Contains(err.Error(), "--registries.d") {
		t.Fatalf("without registries.d: %v", err)
	}
	if p.Lookaside, err = LoadRegistriesD(rdDir); err != nil {
		t.Fatal(err)
	}
	if err := p.Check(context.Background(), ev); err != nil {
		t.Errorf("signed by the key: %v", err)
	}
	for dgst, want := range map[string]string{other: "signature-1", stale: "not for release", "sha256:" + strings.Repeat("f", 64): "no OpenPGP signature"} {
		err := p.Check(context.Background(), Evidence{Image: "quay.io/ocp/release@" + dgst, Digest: dgst})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", dgst, err, want)
		}
	}
	// A scope configured twice across files is an error, as in containers/image.
	os.WriteFile(filepath.Join(rdDir, "again.yaml"), []byte("docker:\n  quay.io/ocp:\n    lookaside: file:///x\n"), 0o644)
	if _, err := LoadRegistriesD(rdDir); err == nil || !strings.Contains(err.Error(), "also configured") {
		t.Errorf("duplicate scope: %v", err)
	}
}
