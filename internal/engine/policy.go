package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/sigpolicy"
)

// Media types of the signature material a policy reads.
const (
	simpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	cosignSignatureAnnot   = "dev.cosignproject.cosign/signature"
	sigstoreBundlePrefix   = "application/vnd.dev.sigstore.bundle"
	// maxSignatureBlob bounds a signature payload or bundle read into
	// memory: real ones are a few hundred bytes.
	maxSignatureBlob = 1 << 20
	// maxPolicySignatures bounds how many signatures of one image are
	// read: a repository stuffed with referrers must not stall the run.
	maxPolicySignatures = 32
)

// checkPolicy gathers the signatures of the source manifest digest — from
// the attachments already discovered, or, when the copied manifest differs
// from the source's (a list rewritten by --filter-by-os), by looking them
// up — and evaluates the policy. An image that fails is not copied.
func (e *Engine) checkPolicy(ctx context.Context, src endpoint, it plan.Item, digest string, atts []Attachment, depth int) error {
	var own []Attachment
	for _, a := range atts {
		if a.Subject == digest && a.Depth == depth+1 {
			own = append(own, a)
		}
	}
	if len(own) == 0 {
		for _, a := range e.lookupAttachments(ctx, src, digest, depth) {
			if a.Kind == AttachSignature || a.Kind == AttachReferrer {
				own = append(own, a)
			}
		}
	}
	ev := sigpolicy.Evidence{Image: it.Source.Name(), Digest: digest}
	for _, a := range own {
		if len(ev.Simple)+len(ev.Bundles) >= maxPolicySignatures {
			break
		}
		switch {
		case a.Kind == AttachSignature:
			ss, err := e.simpleSignatures(ctx, src, a.Tag)
			if err != nil {
				return fmt.Errorf("reading signature %s: %w", a.Tag, err)
			}
			ev.Simple = append(ev.Simple, ss...)
		case a.Kind == AttachReferrer && strings.HasPrefix(a.ArtifactType, sigstoreBundlePrefix):
			b, err := e.bundleOf(ctx, src, a.Digest)
			if err != nil {
				return fmt.Errorf("reading Sigstore bundle %s: %w", a.Digest, err)
			}
			if b != nil {
				ev.Bundles = append(ev.Bundles, b)
			}
		}
	}
	return e.opts.Policy.Check(ctx, ev)
}

// simpleSignatures reads the simple-signing layers of a tag-style
// signature manifest.
func (e *Engine) simpleSignatures(ctx context.Context, src endpoint, tag string) ([]sigpolicy.SimpleSigning, error) {
	data, _, err := src.getManifest(ctx, tag)
	if err != nil {
		return nil, err
	}
	var m v1.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("not an image manifest: %w", err)
	}
	var out []sigpolicy.SimpleSigning
	for _, l := range m.Layers {
		if string(l.MediaType) != simpleSigningMediaType || len(out) >= maxPolicySignatures {
			continue
		}
		payload, err := e.readSmallBlob(ctx, src, l)
		if err != nil {
			return nil, err
		}
		out = append(out, sigpolicy.SimpleSigning{Payload: payload, Signature: l.Annotations[cosignSignatureAnnot]})
	}
	return out, nil
}

// bundleOf reads the bundle layer of a Sigstore bundle referrer (nil when
// it has none).
func (e *Engine) bundleOf(ctx context.Context, src endpoint, digest string) ([]byte, error) {
	data, _, err := src.getManifest(ctx, digest)
	if err != nil {
		return nil, err
	}
	if digestOf(data) != digest {
		return nil, fmt.Errorf("manifest does not hash to %s", digest)
	}
	var m v1.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("not an image manifest: %w", err)
	}
	for _, l := range m.Layers {
		if strings.HasPrefix(string(l.MediaType), sigstoreBundlePrefix) {
			return e.readSmallBlob(ctx, src, l)
		}
	}
	return nil, nil
}

// readSmallBlob reads a signature blob whole and checks its digest: a
// payload that does not hash to its descriptor is not evidence.
func (e *Engine) readSmallBlob(ctx context.Context, src endpoint, d v1.Descriptor) ([]byte, error) {
	if d.Size > maxSignatureBlob {
		return nil, fmt.Errorf("blob %s: %d bytes, more than a signature holds", d.Digest, d.Size)
	}
	body, _, err := src.openBlob(ctx, d.Digest.String(), 0)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, maxSignatureBlob+1))
	if err != nil {
		return nil, err
	}
	if digestOf(b) != d.Digest.String() {
		return nil, fmt.Errorf("blob %s: content does not match its digest", d.Digest)
	}
	return b, nil
}
