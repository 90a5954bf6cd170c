package ocicompat_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

// TestGoContainerRegistryUsesReferrersAPI pushes an image and a signature-
// like artifact with go-containerregistry, the client library airlock's
// copy engine uses, with the referrers tag fallback disabled: the push only
// succeeds if the registry answers OCI-Subject, and listing only succeeds
// through the referrers API.
func TestGoContainerRegistryUsesReferrersAPI(t *testing.T) {
	reg := regtest.Start(t, regtest.WithTLS(), regtest.WithAuth("carol", "pa55"))
	opts := []remote.Option{
		remote.WithTransport(reg.Transport),
		remote.WithAuthFromKeychain(reg.Keychain),
		remote.WithReferrersTagFallback(false),
	}
	img, err := synth.Image(7, synth.WithOCI())
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(reg.Ref("signed/app:v1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img, opts...); err != nil {
		t.Fatalf("pushing the subject: %v", err)
	}
	subjectDesc, err := partialDescriptor(img)
	if err != nil {
		t.Fatal(err)
	}

	sig := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	sig = mutate.ConfigMediaType(sig, "application/vnd.example.signature.config")
	sig = mutate.Annotations(sig, map[string]string{"signed-by": "ci"}).(v1.Image)
	sig = mutate.Subject(sig, subjectDesc).(v1.Image)
	sigDigest, err := sig.Digest()
	if err != nil {
		t.Fatal(err)
	}
	sigRef := tag.Context().Digest(sigDigest.String())
	if err := remote.Write(sigRef, sig, opts...); err != nil {
		t.Fatalf("pushing an artifact with a subject, tag fallback disabled: %v", err)
	}

	idx, err := remote.Referrers(tag.Context().Digest(subjectDesc.Digest.String()), opts...)
	if err != nil {
		t.Fatalf("listing referrers, tag fallback disabled: %v", err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != 1 || m.Manifests[0].Digest != sigDigest ||
		m.Manifests[0].ArtifactType != "application/vnd.example.signature.config" || m.Manifests[0].Annotations["signed-by"] != "ci" {
		t.Fatalf("referrers of %s: %+v", subjectDesc.Digest, m.Manifests)
	}
	// No fallback tag (sha256-<hex>) was written.
	tags, err := remote.List(tag.Context(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(tags, func(s string) bool { return strings.HasPrefix(s, "sha256-") }); i >= 0 {
		t.Errorf("a referrers fallback tag %q exists: the client did not see OCI-Subject", tags[i])
	}

	filtered, err := remote.Referrers(tag.Context().Digest(subjectDesc.Digest.String()),
		append(opts, remote.WithFilter("artifactType", "application/vnd.example.other"))...)
	if err != nil {
		t.Fatal(err)
	}
	if fm, _ := filtered.IndexManifest(); len(fm.Manifests) != 0 {
		t.Errorf("artifactType filter for another type returned %+v", fm.Manifests)
	}
}

func partialDescriptor(img v1.Image) (v1.Descriptor, error) {
	d, err := img.Digest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	size, err := img.Size()
	if err != nil {
		return v1.Descriptor{}, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: mt, Digest: d, Size: size}, nil
}
