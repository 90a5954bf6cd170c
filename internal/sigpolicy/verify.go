package sigpolicy

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/airlock-mirror/airlock/internal/release/signature"
)

// Evidence is what the source holds for one image: the signatures the
// engine found beside it.
type Evidence struct {
	// Image is the reference as the plan names it (host/path[:tag][@digest]):
	// it selects the scope. signedIdentity rules compare against the
	// repository at Digest — the image as the cluster pulls it through a
	// digest mirror — so cosign's repository-only identities satisfy the
	// default matchRepoDigestOrExact.
	Image string
	// Digest is the manifest digest being mirrored.
	Digest string
	// Simple are cosign tag-style signatures: simple-signing payloads
	// (the layers of sha256-<hex>.sig) and their base64 signatures.
	Simple []SimpleSigning
	// Bundles are Sigstore bundles (referrers of artifact type
	// application/vnd.dev.sigstore.bundle*), the JSON of each.
	Bundles [][]byte
}

// SimpleSigning is one cosign simple-signing payload and its signature.
type SimpleSigning struct {
	Payload   []byte
	Signature string // base64, the dev.cosignproject.cosign/signature annotation
}

// Check evaluates the requirements of the image's scope: nil when all are
// satisfied, else an error naming the policy file, the scope, the
// requirement and why each signature did not do.
func (p *Policy) Check(ctx context.Context, ev Evidence) error {
	scope, reqs := p.For(ev.Image)
	repo, _, _ := splitRef(ev.Image)
	ev.Image = repo + "@" + ev.Digest
	for i, r := range reqs {
		var err error
		switch r.Type {
		case TypeAccept:
		case TypeReject:
			err = errors.New("images of this scope are rejected")
		case TypeSigstoreSigned:
			err = r.checkSigstore(ev)
		case TypeSignedBy:
			err = p.checkSignedBy(ctx, r, ev)
		}
		if err != nil {
			return fmt.Errorf("signature policy %s, scope %s, requirement %d (%s): %w", p.File, scope, i+1, r.Type, err)
		}
	}
	return nil
}

func (r Requirement) checkSigstore(ev Evidence) error {
	if len(ev.Simple)+len(ev.Bundles) == 0 {
		return fmt.Errorf("%s has no sigstore signature (no %s.sig tag, no Sigstore bundle referrer)", ev.Digest, strings.Replace(ev.Digest, ":", "-", 1))
	}
	var why []string
	for i, s := range ev.Simple {
		err := r.verifySimple(ev, s)
		if err == nil {
			return nil
		}
		why = append(why, fmt.Sprintf("signature %d: %v", i+1, err))
	}
	for i, b := range ev.Bundles {
		err := r.verifyBundle(ev, b)
		if err == nil {
			return nil
		}
		why = append(why, fmt.Sprintf("bundle %d: %v", i+1, err))
	}
	return fmt.Errorf("no signature satisfies it: %s", strings.Join(why, "; "))
}

// simplePayload is cosign's simple-signing document.
type simplePayload struct {
	Critical struct {
		Identity struct {
			DockerReference string `json:"docker-reference"`
		} `json:"identity"`
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
}

func (r Requirement) verifySimple(ev Evidence, s SimpleSigning) error {
	sig, err := base64.StdEncoding.DecodeString(s.Signature)
	if err != nil || len(sig) == 0 {
		return fmt.Errorf("no base64 signature annotation")
	}
	if err := r.verifyAny(s.Payload, sig); err != nil {
		return err
	}
	var pl simplePayload
	if err := json.Unmarshal(s.Payload, &pl); err != nil {
		return fmt.Errorf("payload is not a simple-signing document: %w", err)
	}
	if pl.Critical.Type != "cosign container image signature" {
		return fmt.Errorf("payload type %q, want \"cosign container image signature\"", pl.Critical.Type)
	}
	if pl.Critical.Image.DockerManifestDigest != ev.Digest {
		return fmt.Errorf("signs %s, not %s", pl.Critical.Image.DockerManifestDigest, ev.Digest)
	}
	return r.SignedIdentity.matches(ev.Image, pl.Critical.Identity.DockerReference)
}

// bundle is the part of a Sigstore bundle (v0.1-v0.3) checked here: a DSSE
// envelope over an in-toto statement whose subject is the image digest,
// which is what cosign v3 writes when it signs an image with a key.
type bundle struct {
	MediaType    string `json:"mediaType"`
	DSSEEnvelope *struct {
		Payload     string `json:"payload"`
		PayloadType string `json:"payloadType"`
		Signatures  []struct {
			Sig string `json:"sig"`
		} `json:"signatures"`
	} `json:"dsseEnvelope"`
	MessageSignature any `json:"messageSignature"`
}

type statement struct {
	Subject []struct {
		Digest map[string]string `json:"digest"`
	} `json:"subject"`
}

func (r Requirement) verifyBundle(ev Evidence, data []byte) error {
	var b bundle
	if err := json.Unmarshal(data, &b); err != nil {
		return fmt.Errorf("not a Sigstore bundle: %w", err)
	}
	if b.DSSEEnvelope == nil {
		return fmt.Errorf("bundle without a DSSE envelope (message signatures sign blobs, not images)")
	}
	// The statement names the image by digest only: a rule beyond the
	// default cannot be checked against it.
	if !r.SignedIdentity.isDefault() {
		return fmt.Errorf("a Sigstore bundle names no repository, so signedIdentity %s cannot be checked", r.SignedIdentity.Type)
	}
	payload, err := base64.StdEncoding.DecodeString(b.DSSEEnvelope.Payload)
	if err != nil {
		return fmt.Errorf("DSSE payload is not base64: %w", err)
	}
	pae := fmt.Appendf(nil, "DSSEv1 %d %s %d %s", len(b.DSSEEnvelope.PayloadType), b.DSSEEnvelope.PayloadType, len(payload), payload)
	var verr error = errors.New("no signature in the envelope")
	ok := false
	for _, s := range b.DSSEEnvelope.Signatures {
		sig, err := base64.StdEncoding.DecodeString(s.Sig)
		if err != nil {
			continue
		}
		if verr = r.verifyAny(pae, sig); verr == nil {
			ok = true
			break
		}
	}
	if !ok {
		return verr
	}
	var st statement
	if err := json.Unmarshal(payload, &st); err != nil {
		return fmt.Errorf("DSSE payload is not an in-toto statement: %w", err)
	}
	algo, want, _ := strings.Cut(ev.Digest, ":")
	for _, s := range st.Subject {
		if s.Digest[algo] == want {
			return nil
		}
	}
	return fmt.Errorf("the statement's subject is not %s", ev.Digest)
}

// verifyAny checks sig over msg with any of the requirement's keys.
func (r Requirement) verifyAny(msg, sig []byte) error {
	sum := sha256.Sum256(msg)
	for _, k := range r.keys {
		if verifyWith(k, msg, sum[:], sig) {
			return nil
		}
	}
	return fmt.Errorf("not signed by the policy's key(s) (signature invalid or by another key)")
}

func verifyWith(k crypto.PublicKey, msg, sum, sig []byte) bool {
	switch k := k.(type) {
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(k, sum, sig)
	case ed25519.PublicKey:
		return ed25519.Verify(k, msg, sig)
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(k, crypto.SHA256, sum, sig) == nil ||
			rsa.VerifyPSS(k, crypto.SHA256, sum, sig, nil) == nil
	}
	return false
}

func (p *Policy) checkSignedBy(ctx context.Context, r Requirement, ev Evidence) error {
	if p.Lookaside == nil {
		return fmt.Errorf("OpenPGP signatures are read from a lookaside: give --registries.d DIR naming one for %s", ev.Image)
	}
	sigs, where, err := p.Lookaside.Fetch(ctx, ev.Image, ev.Digest)
	if err != nil {
		return err
	}
	if len(sigs) == 0 {
		return fmt.Errorf("no OpenPGP signature for %s at %s", ev.Digest, where)
	}
	var why []string
	for i, s := range sigs {
		c, err := signature.Verify(s, r.keyring, ev.Digest)
		if err == nil {
			if err = r.SignedIdentity.matches(ev.Image, c.Critical.Identity.DockerReference); err == nil {
				return nil
			}
		}
		why = append(why, fmt.Sprintf("signature-%d: %v", i+1, err))
	}
	return fmt.Errorf("no signature at %s satisfies it: %s", where, strings.Join(why, "; "))
}

// DigestHex is the hex part of a sha256 digest (for lookaside paths).
func digestPath(digest string) string {
	algo, h, _ := strings.Cut(digest, ":")
	if _, err := hex.DecodeString(h); err != nil {
		return digest
	}
	return algo + "=" + h
}
