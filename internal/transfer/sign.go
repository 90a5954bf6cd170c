package transfer

import (
	"bytes"
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

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/airlock-mirror/airlock/internal/atomicfile"
)

// Sign writes DIR/airlock-transfer.json.sig: the base64 of an ECDSA
// (ASN.1, over the SHA-256 of the manifest, as `cosign sign-blob` makes
// it) or ed25519 signature of the manifest's bytes. keyFile is an
// unencrypted PKCS#8 or SEC 1 PEM private key.
//
// An OpenPGP secret key (armored or binary, not passphrase-protected)
// writes DIR/airlock-transfer.json.asc instead: the armored detached
// signature `gpg --armor --detach-sign` makes, which gpg --verify checks.
func Sign(dir, keyFile string) error {
	kb, err := os.ReadFile(keyFile)
	if err != nil {
		return fmt.Errorf("reading signing key: %w", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return err
	}
	if isOpenPGP(kb) {
		return signPGP(dir, keyFile, kb, b)
	}
	// The bytes read once: the key may come from a pipe (<(gpg ...)).
	key, err := loadPrivate(keyFile, kb)
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
// public key in keyFile, or DIR/airlock-transfer.json.asc with an OpenPGP
// public key (armored or binary, as gpg --export writes it).
func VerifySignature(dir, keyFile string) error {
	pb, err := os.ReadFile(keyFile)
	if err != nil {
		return fmt.Errorf("reading public key: %w", err)
	}
	if isOpenPGP(pb) {
		return verifyPGP(dir, keyFile, pb)
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

func loadPrivate(keyFile string, b []byte) (crypto.Signer, error) {
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

// isOpenPGP tells an OpenPGP key (armored, or binary: the first byte of a
// packet has its high bit set) from a PEM one ("-----BEGIN ..." is ASCII).
func isOpenPGP(b []byte) bool {
	t := bytes.TrimSpace(b)
	return bytes.HasPrefix(t, []byte("-----BEGIN PGP ")) || len(t) > 0 && t[0]&0x80 != 0
}

func readPGPKeys(keyFile string, b []byte) (openpgp.EntityList, error) {
	var kr openpgp.EntityList
	var err error
	if bytes.HasPrefix(bytes.TrimSpace(b), []byte("-----BEGIN PGP ")) {
		kr, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(b))
	} else {
		kr, err = openpgp.ReadKeyRing(bytes.NewReader(b))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: reading OpenPGP key: %w", keyFile, err)
	}
	if len(kr) == 0 {
		return nil, fmt.Errorf("%s: no OpenPGP key in the file", keyFile)
	}
	return kr, nil
}

func signPGP(dir, keyFile string, kb, manifest []byte) error {
	kr, err := readPGPKeys(keyFile, kb)
	if err != nil {
		return err
	}
	var signer *openpgp.Entity
	for _, e := range kr {
		if e.PrivateKey != nil {
			signer = e
			break
		}
	}
	if signer == nil {
		return fmt.Errorf("%s is an OpenPGP public key: --sign-key needs the secret key (gpg --armor --export-secret-keys KEYID)", keyFile)
	}
	if signer.PrivateKey.Encrypted {
		// No passphrase prompt here: a transfer set is often written by an
		// unattended run. gpg can sign with its own agent instead.
		return fmt.Errorf("%s: the OpenPGP secret key is passphrase-protected: export it without a passphrase for --sign-key, or sign the set with gpg itself: gpg --armor --detach-sign %s (archive verify --key checks that %s)",
			keyFile, filepath.Join(dir, ManifestName), PGPSignatureName)
	}
	var out bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&out, signer, bytes.NewReader(manifest), nil); err != nil {
		return fmt.Errorf("signing %s with %s: %w", ManifestName, keyFile, err)
	}
	return atomicfile.Write(filepath.Join(dir, PGPSignatureName), out.Bytes(), 0o644)
}

func verifyPGP(dir, keyFile string, kb []byte) error {
	kr, err := readPGPKeys(keyFile, kb)
	if err != nil {
		return err
	}
	sigPath := filepath.Join(dir, PGPSignatureName)
	sig, err := os.ReadFile(sigPath)
	if err != nil {
		return fmt.Errorf("the set in %s has no OpenPGP signature for key %s (%s: %w)", dir, keyFile, PGPSignatureName, err)
	}
	manifest, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return err
	}
	check := openpgp.CheckArmoredDetachedSignature
	if !bytes.HasPrefix(bytes.TrimSpace(sig), []byte("-----BEGIN PGP ")) {
		check = openpgp.CheckDetachedSignature // gpg --detach-sign without --armor
	}
	if _, err := check(kr, bytes.NewReader(manifest), bytes.NewReader(sig), nil); err != nil {
		return fmt.Errorf("signature %s does not match %s with key %s: the manifest was changed or signed with another key (%v)", sigPath, ManifestName, keyFile, err)
	}
	return nil
}
