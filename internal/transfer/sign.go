package transfer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/airlock-mirror/airlock/internal/atomicfile"
)

// Sign writes DIR/airlock-transfer.json.sig: the base64 of an ECDSA
// (ASN.1, over the SHA-256 of the manifest, as `cosign sign-blob` makes
// it) or ed25519 signature of the manifest's bytes. keyFile is an
// unencrypted PKCS#8 or SEC 1 PEM private key.
func Sign(dir, keyFile string) error {
	key, err := loadPrivate(keyFile)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return err
	}
	var sig []byte
	switch k := key.(type) {
	case ed25519.PrivateKey:
		sig = ed25519.Sign(k, b)
	case *ecdsa.PrivateKey:
		sum := sha256.Sum256(b)
		if sig, err = ecdsa.SignASN1(rand.Reader, k, sum[:]); err != nil {
			return fmt.Errorf("signing %s: %w", ManifestName, err)
		}
	default:
		return fmt.Errorf("%s: key type %T: want ed25519 or ECDSA", keyFile, key)
	}
	return atomicfile.Write(filepath.Join(dir, SignatureName), []byte(base64.StdEncoding.EncodeToString(sig)+"\n"), 0o644)
}

// VerifySignature checks DIR/airlock-transfer.json.sig with the PEM
// public key in keyFile.
func VerifySignature(dir, keyFile string) error {
	pb, err := os.ReadFile(keyFile)
	if err != nil {
		return fmt.Errorf("reading public key: %w", err)
	}
	blk, _ := pem.Decode(pb)
	if blk == nil {
		return fmt.Errorf("%s: no PEM block; want a PUBLIC KEY (cosign.pub or openssl pkey -pubout)", keyFile)
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return fmt.Errorf("%s: %w", keyFile, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return err
	}
	sb, err := os.ReadFile(filepath.Join(dir, SignatureName))
	if err != nil {
		return fmt.Errorf("the set in %s is not signed (%s: %w)", dir, SignatureName, err)
	}
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(sb)))
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, SignatureName), err)
	}
	ok := false
	switch k := pub.(type) {
	case ed25519.PublicKey:
		ok = ed25519.Verify(k, b, sig)
	case *ecdsa.PublicKey:
		sum := sha256.Sum256(b)
		ok = ecdsa.VerifyASN1(k, sum[:], sig)
	default:
		return fmt.Errorf("%s: key type %T: want ed25519 or ECDSA", keyFile, pub)
	}
	if !ok {
		return fmt.Errorf("signature %s does not match %s with key %s: the manifest was changed or signed with another key", filepath.Join(dir, SignatureName), ManifestName, keyFile)
	}
	return nil
}

func loadPrivate(keyFile string) (crypto.Signer, error) {
	b, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("reading signing key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM block", keyFile)
	}
	switch blk.Type {
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(blk.Bytes)
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", keyFile, err)
		}
		if s, ok := k.(crypto.Signer); ok {
			return s, nil
		}
		return nil, fmt.Errorf("%s: key type %T cannot sign", keyFile, k)
	}
	return nil, fmt.Errorf("%s: PEM type %q: want an unencrypted PRIVATE KEY or EC PRIVATE KEY (encrypted cosign keys: export with `cosign import-key-pair`/openssl first)", keyFile, blk.Type)
}
