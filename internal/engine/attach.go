package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
)

// SignatureMode says what a copy does with the signatures of an image.
type SignatureMode string

const (
	// SignaturesBestEffort (the default) copies every signature,
	// attestation, SBOM and referrer found, and reports unsigned images.
	SignaturesBestEffort SignatureMode = "best-effort"
	// SignaturesStrict fails an image whose top-level manifest has no
	// signature, before copying it.
	SignaturesStrict SignatureMode = "strict"
	// SignaturesRemove copies no signature and no referrer (oc-mirror's
	// --remove-signatures).
	SignaturesRemove SignatureMode = "remove"
)

// ParseSignatureMode reads a --signatures value.
func ParseSignatureMode(s string) (SignatureMode, error) {
	switch m := SignatureMode(s); m {
	case "", SignaturesBestEffort:
		return SignaturesBestEffort, nil
	case SignaturesStrict, SignaturesRemove:
		return m, nil
	}
	return "", fmt.Errorf("signature mode %q: want strict, best-effort or remove", s)
}

// Attachment kinds: cosign's tag-style objects and OCI 1.1 referrers.
const (
	AttachSignature   = "sig"  // cosign tag sha256-<hex>.sig
	AttachAttestation = "att"  // cosign tag sha256-<hex>.att
	AttachSBOM        = "sbom" // cosign tag sha256-<hex>.sbom
	AttachReferrer    = "referrer"
)

// signatureArtifactTypes are the artifact types of referrers that are
// signatures (an image with one counts as signed).
var signatureArtifactTypes = map[string]bool{
	"application/vnd.dev.cosign.artifact.sig.v1+json":      true,
	"application/vnd.dev.sigstore.bundle.v0.3+json":        true,
	"application/vnd.dev.sigstore.bundle+json;version=0.3": true,
	"application/vnd.cncf.notary.signature":                true,
}

// maxAttachDepth bounds referrers of referrers (a signature of an SBOM of
// an image is depth 2).
const maxAttachDepth = 4

// Attachment is one signature, attestation, SBOM or other referrer that
// belongs to a copied manifest and was copied with it.
type Attachment struct {
	// Subject is the digest of the manifest it belongs to.
	Subject      string `json:"subject"`
	Kind         string `json:"kind"`
	Tag          string `json:"tag,omitempty"`
	Digest       string `json:"digest,omitempty"`
	ArtifactType string `json:"artifactType,omitempty"`
	// Depth is 1 for an attachment of the image, 2 for one of an
	// attachment, ...
	Depth  int    `json:"depth"`
	Status Status `json:"status"`
	Error  string `json:"error,omitempty"`
}

// IsSignature reports whether the attachment is a signature.
func (a Attachment) IsSignature() bool {
	return a.Kind == AttachSignature || (a.Kind == AttachReferrer && signatureArtifactTypes[a.ArtifactType])
}

// tagCache lists each source repository's tags once per engine: cosign's
// tag-style attachments of every image of a repository are found in one
// request instead of three HEADs per manifest.
type tagCache struct {
	mu   sync.Mutex
	repo map[string]*tagList
}

type tagList struct {
	once sync.Once
	tags map[string]bool
	err  error
}

// get lists ep's repository once per cache (its tags as a set).
func (tc *tagCache) get(ctx context.Context, ep endpoint) (map[string]bool, error) {
	key := ep.location() + "/" + ep.repoName()
	tc.mu.Lock()
	if tc.repo == nil {
		tc.repo = map[string]*tagList{}
	}
	tl := tc.repo[key]
	if tl == nil {
		tl = &tagList{}
		tc.repo[key] = tl
	}
	tc.mu.Unlock()
	tl.once.Do(func() {
		ts, err := ep.tags(ctx)
		tl.tags, tl.err = map[string]bool{}, err
		for _, t := range ts {
			tl.tags[t] = true
		}
	})
	return tl.tags, tl.err
}

// discover finds the attachments of every manifest of top that is written
// unchanged (a list rewritten by FilterByOS has a new digest nobody
// signed). Listing failures are warnings: an image is not failed because
// its registry hides tag lists or lacks the referrers API.
func (e *Engine) discover(ctx context.Context, src endpoint, tree, top *node, depth int) []Attachment {
	var subjects []string
	seen := map[string]bool{}
	var walk func(*node)
	walk = func(n *node) {
		if d := n.desc.Digest.String(); !seen[d] {
			seen[d] = true
			subjects = append(subjects, d)
		}
		for _, c := range n.children {
			walk(c)
		}
	}
	if top.desc.Digest == tree.desc.Digest {
		walk(top)
	} else {
		for _, c := range top.children {
			walk(c)
		}
	}
	tags := e.sourceTags(ctx, src)
	var out []Attachment
	for _, s := range subjects {
		out = append(out, e.attachmentsOf(ctx, src, tags, s, depth)...)
	}
	return out
}

// lookupAttachments finds the attachments of one manifest digest outside
// a tree walk: a complete image re-checked for new signatures, a policy
// check of a digest the copy does not write.
func (e *Engine) lookupAttachments(ctx context.Context, src endpoint, digest string, depth int) []Attachment {
	return e.attachmentsOf(ctx, src, e.sourceTags(ctx, src), digest, depth)
}

// sourceTags is the repository's tag list for attachmentsOf; nil, with a
// warning, when it cannot be listed (nil tells the referrers lookup the
// tags are unknown, so it still tries the referrers tag).
func (e *Engine) sourceTags(ctx context.Context, src endpoint) map[string]bool {
	tags, err := e.tags.get(ctx, src)
	if err != nil {
		e.log.Warn("cannot list tags: cosign tag-style signatures not looked for", "repository", src.String(), "err", err)
		return nil
	}
	return tags
}

// attachmentsOf finds the attachments of one manifest digest: cosign's
// tag-style sha256-<hex>.sig/.att/.sbom among tags and, unless
// NoReferrers, its referrers (filtered by ReferrersFilter), at depth+1.
// discover (a tree being copied) and lookupAttachments share it, so the
// copy, the re-run check and the policy check find the same attachments.
func (e *Engine) attachmentsOf(ctx context.Context, src endpoint, tags map[string]bool, subject string, depth int) []Attachment {
	var out []Attachment
	base := strings.Replace(subject, ":", "-", 1)
	for _, kind := range []string{AttachSignature, AttachAttestation, AttachSBOM} {
		if tags[base+"."+kind] {
			out = append(out, Attachment{Subject: subject, Kind: kind, Tag: base + "." + kind, Depth: depth + 1})
		}
	}
	if e.opts.NoReferrers {
		return out
	}
	descs, err := src.referrers(ctx, subject, tags)
	if err != nil {
		e.log.Warn("cannot list referrers", "repository", src.String(), "subject", subject, "err", err)
		return out
	}
	for _, d := range descs {
		if e.wantReferrer(d.ArtifactType) {
			out = append(out, Attachment{Subject: subject, Kind: AttachReferrer, Digest: d.Digest.String(), ArtifactType: d.ArtifactType, Depth: depth + 1})
		}
	}
	return out
}

func (e *Engine) wantReferrer(artifactType string) bool {
	if len(e.opts.ReferrersFilter) == 0 {
		return true
	}
	for _, t := range e.opts.ReferrersFilter {
		if t == artifactType {
			return true
		}
	}
	return false
}

// signed reports whether the image's top-level manifest has a signature
// among atts.
func signed(top string, atts []Attachment) bool {
	for _, a := range atts {
		if a.Subject == top && a.Depth == 1 && a.IsSignature() {
			return true
		}
	}
	return false
}

// copyAttachments copies each attachment next to the image at every
// destination: a tag-style one under its tag, a referrer by digest (the
// destination registry indexes it by its subject). Each is a copy of its
// own, so its blobs dedup and mount like any other, and its own
// attachments (a signature of an SBOM) follow, to maxAttachDepth.
func (e *Engine) copyAttachments(ctx context.Context, it plan.Item, atts []Attachment) ([]Attachment, int64) {
	var bytes int64
	var out []Attachment
	for _, a := range atts {
		sub := plan.Item{Kind: it.Kind, Origin: it.Origin}
		switch a.Kind {
		case AttachReferrer:
			sub.Source = it.Source.Repo().WithDigest(a.Digest)
			for _, d := range it.Dests {
				sub.Dests = append(sub.Dests, d.Repo())
			}
		default:
			sub.Source = it.Source.Repo().WithTag(a.Tag)
			for _, d := range it.Dests {
				sub.Dests = append(sub.Dests, d.Repo().WithTag(a.Tag))
			}
		}
		res := e.copyItemAt(ctx, sub, a.Depth)
		bytes += res.Bytes
		a.Status = res.Status
		if a.Digest == "" {
			a.Digest = res.Digest
		}
		if res.Err != nil {
			a.Error = res.Err.Error()
		}
		out = append(out, a)
		out = append(out, res.Attachments...)
	}
	return out, bytes
}

// subjectOf reads the subject digest and artifact type of a manifest, ""
// when it has no subject.
func subjectOf(data []byte) (subject, artifactType string) {
	var m struct {
		ArtifactType string         `json:"artifactType"`
		Config       v1.Descriptor  `json:"config"`
		Subject      *v1.Descriptor `json:"subject"`
	}
	if json.Unmarshal(data, &m) != nil || m.Subject == nil {
		return "", ""
	}
	at := m.ArtifactType
	if at == "" {
		at = string(m.Config.MediaType)
	}
	return m.Subject.Digest.String(), at
}

// MissingAt reports whether dest holds the image digest and which of its
// attachments (as a dry run discovered them at the source) it lacks: a
// tag-style one by its tag, a referrer by its digest. It answers "were
// the signatures mirrored too" without copying anything.
func (e *Engine) MissingAt(ctx context.Context, dest ref.Ref, digest string, atts []Attachment) (imageThere bool, missing []Attachment, err error) {
	ep, err := e.endpointFor(ctx, dest)
	if err != nil {
		return false, nil, err
	}
	if _, imageThere, err = ep.headManifest(ctx, digest); err != nil {
		return false, nil, fmt.Errorf("%s: %w", dest, err)
	}
	for _, a := range atts {
		reference := a.Digest
		if a.Kind != AttachReferrer {
			reference = a.Tag
		}
		info, found, err := ep.headManifest(ctx, reference)
		if err != nil {
			return imageThere, nil, fmt.Errorf("%s: %s: %w", dest, reference, err)
		}
		if !found || (a.Digest != "" && info.Digest != "" && info.Digest != a.Digest) {
			missing = append(missing, a)
		}
	}
	return imageThere, missing, nil
}
