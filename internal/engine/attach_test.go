package engine

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

const (
	sbomType   = "application/spdx+json"
	bundleType = "application/vnd.dev.sigstore.bundle.v0.3+json"
)

// signedFixture is an image with what cosign and oras leave beside it: a
// tag-style signature (sha256-<hex>.sig), an SBOM referrer and a signature
// of that SBOM (a referrer of the referrer); and an unsigned image.
type signedFixture struct {
	app, plain  string // repo:tag at the source
	appD        string
	sig         string // the .sig tag
	sigD        string
	sbomD, sbSD string // the SBOM and its signature
}

func pushSigned(t *testing.T, src *regtest.Registry) signedFixture {
	t.Helper()
	opt := remote.WithTransport(src.Transport)
	var f signedFixture
	f.app, f.plain = src.Ref("apps/app")+":v1", src.Ref("apps/plain")+":v1"
	push := func(x synth.Pushable, reference string) string {
		t.Helper()
		d, err := synth.Push(x, reference, opt)
		if err != nil {
			t.Fatalf("pushing %s: %v", reference, err)
		}
		return d
	}
	img, err := synth.Image(301)
	if err != nil {
		t.Fatal(err)
	}
	f.appD = push(img, f.app)
	plain, err := synth.Image(302)
	if err != nil {
		t.Fatal(err)
	}
	push(plain, f.plain)
	sig, err := synth.Image(303, synth.WithOCI())
	if err != nil {
		t.Fatal(err)
	}
	f.sig = strings.Replace(f.appD, ":", "-", 1) + ".sig"
	f.sigD = push(sig, src.Ref("apps/app")+":"+f.sig)
	desc, err := remote.Head(mustDigestRef(t, src.Ref("apps/app")+"@"+f.appD), opt)
	if err != nil {
		t.Fatal(err)
	}
	f.sbomD = pushReferrer(t, src, "apps/app", *desc, sbomType, 304)
	sbomDesc, err := remote.Head(mustDigestRef(t, src.Ref("apps/app")+"@"+f.sbomD), opt)
	if err != nil {
		t.Fatal(err)
	}
	f.sbSD = pushReferrer(t, src, "apps/app", *sbomDesc, bundleType, 305)
	return f
}

// pushReferrer pushes, by digest, an OCI artifact of artifactType whose
// subject is subject.
func pushReferrer(t *testing.T, reg *regtest.Registry, repo string, subject v1.Descriptor, artifactType string, seed int64) string {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.MediaType(artifactType))
	img, err := mutate.AppendLayers(img, synth.OCILayer(seed, 300))
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.Subject(img, v1.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}).(v1.Image)
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(mustDigestRef(t, reg.Ref(repo)+"@"+d.String()), img, remote.WithTransport(reg.Transport)); err != nil {
		t.Fatalf("pushing a %s referrer: %v", artifactType, err)
	}
	return d.String()
}

func mustDigestRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// referrersAt lists "artifactType digest" of subject's referrers at reg as
// a client sees them: go-containerregistry asks the referrers API and
// falls back to the referrers tag, as cosign does.
func referrersAt(t *testing.T, reg *regtest.Registry, repo, subject string) []string {
	t.Helper()
	idx, err := remote.Referrers(mustDigestRef(t, reg.Ref(repo)+"@"+subject).(name.Digest), remote.WithTransport(reg.Transport))
	if err != nil {
		t.Fatalf("referrers of %s at %s: %v", subject, reg.Host, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range im.Manifests {
		out = append(out, m.ArtifactType+" "+m.Digest.String())
	}
	sort.Strings(out)
	return out
}

func attachPlan(t *testing.T, f signedFixture, dst string) plan.Plan {
	var p plan.Plan
	p.Add(plan.Item{Source: mustRef(t, f.app), Dests: []ref.Ref{mustRef(t, dst+"/m/app:v1")}})
	p.Add(plan.Item{Source: mustRef(t, f.plain), Dests: []ref.Ref{mustRef(t, dst+"/m/plain:v1")}})
	return p
}

// TestAttachmentsTravel: the tag-style signature, the SBOM referrer and the
// SBOM's signature reach the destination with the image and the report
// says which image is signed, into a registry with the referrers API and
// into one without (distribution: the engine writes the referrers tag,
// which clients and a further airlock hop read); strict fails only the
// unsigned image, remove carries nothing, a referrers filter only the
// matching artifact type.
func TestAttachmentsTravel(t *testing.T) {
	src := regtest.Start(t)
	f := pushSigned(t, src)
	wantApp := []string{sbomType + " " + f.sbomD}
	wantSBOM := []string{bundleType + " " + f.sbSD}
	run := func(t *testing.T, o Options, p plan.Plan) (*Report, error) {
		t.Helper()
		o.Insecure = true
		e, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		return e.Run(context.Background(), p)
	}
	carried := func(t *testing.T, dst *regtest.Registry) {
		t.Helper()
		if d := dst.DigestOf(t, dst.Ref("m/app")+":"+f.sig); d != f.sigD {
			t.Errorf("signature tag %s at the destination: %q, want %s", f.sig, d, f.sigD)
		}
		if got := referrersAt(t, dst, "m/app", f.appD); strings.Join(got, ",") != strings.Join(wantApp, ",") {
			t.Errorf("referrers of the image at %s: %q, want %q", dst.Host, got, wantApp)
		}
		if got := referrersAt(t, dst, "m/app", f.sbomD); strings.Join(got, ",") != strings.Join(wantSBOM, ",") {
			t.Errorf("referrers of the SBOM at %s: %q, want %q", dst.Host, got, wantSBOM)
		}
	}

	t.Run("registry with referrers API", func(t *testing.T) {
		dst := regtest.Start(t)
		rep, err := run(t, Options{}, attachPlan(t, f, dst.Host))
		if err != nil {
			t.Fatal(err)
		}
		app, plain := rep.Items[0], rep.Items[1]
		if !app.Signed || plain.Signed || !app.SignaturesChecked || !plain.SignaturesChecked {
			t.Errorf("signed: app %v (checked %v), plain %v (checked %v)", app.Signed, app.SignaturesChecked, plain.Signed, plain.SignaturesChecked)
		}
		var kinds []string
		for _, a := range app.Attachments {
			if a.Status != StatusCopied {
				t.Errorf("attachment %+v not copied", a)
			}
			kinds = append(kinds, a.Kind+"@"+string(rune('0'+a.Depth)))
		}
		sort.Strings(kinds)
		if got := strings.Join(kinds, " "); got != "referrer@1 referrer@2 sig@1" {
			t.Errorf("attachments of the image: %s", got)
		}
		carried(t, dst)
		if d := dst.DigestOf(t, dst.Ref("m/app")+":"+strings.Replace(f.appD, ":", "-", 1)); d != "" {
			t.Errorf("a registry with the referrers API got a referrers tag (%s)", d)
		}
	})

	t.Run("registry without referrers API, then one more hop", func(t *testing.T) {
		plainDst := regtest.Start(t, regtest.WithPlainDistribution())
		if _, err := run(t, Options{}, attachPlan(t, f, plainDst.Host)); err != nil {
			t.Fatal(err)
		}
		carried(t, plainDst)
		raw := fetchManifest(t, plainDst, "m/app", strings.Replace(f.appD, ":", "-", 1))
		var im v1.IndexManifest
		if err := json.Unmarshal(raw, &im); err != nil || len(im.Manifests) != 1 || im.Manifests[0].Digest.String() != f.sbomD || im.Manifests[0].ArtifactType != sbomType {
			t.Fatalf("referrers tag at distribution (%v): %s", err, raw)
		}
		// The referrers tag is read back as the source of the next hop.
		var p plan.Plan
		next := regtest.Start(t)
		p.Add(plan.Item{Source: mustRef(t, plainDst.Ref("m/app")+":v1"), Dests: []ref.Ref{mustRef(t, next.Ref("m/app")+":v1")}})
		if _, err := run(t, Options{}, p); err != nil {
			t.Fatal(err)
		}
		carried(t, next)
		// A re-run adds nothing twice to the referrers tag.
		if _, err := run(t, Options{}, attachPlan(t, f, plainDst.Host)); err != nil {
			t.Fatal(err)
		}
		if again := fetchManifest(t, plainDst, "m/app", strings.Replace(f.appD, ":", "-", 1)); string(again) != string(raw) {
			t.Errorf("re-run changed the referrers tag:\n%s\n%s", raw, again)
		}
	})

	t.Run("strict", func(t *testing.T) {
		dst := regtest.Start(t)
		rep, err := run(t, Options{Signatures: SignaturesStrict}, attachPlan(t, f, dst.Host))
		if err == nil && len(rep.Failed()) == 0 {
			t.Fatal("strict: the unsigned image did not fail")
		}
		failed := rep.Failed()
		if len(failed) != 1 || !strings.Contains(failed[0].Source.String(), "apps/plain") || !strings.Contains(failed[0].Err.Error(), "signature") {
			t.Fatalf("strict failed %+v", failed)
		}
		if d := dst.DigestOf(t, dst.Ref("m/plain")+":v1"); d != "" {
			t.Errorf("strict copied the unsigned image")
		}
		carried(t, dst)
	})

	t.Run("remove", func(t *testing.T) {
		dst := regtest.Start(t)
		rep, err := run(t, Options{Signatures: SignaturesRemove}, attachPlan(t, f, dst.Host))
		if err != nil {
			t.Fatal(err)
		}
		if n := len(rep.Items[0].Attachments); n != 0 || rep.Items[0].SignaturesChecked {
			t.Errorf("remove: %d attachments, checked %v", n, rep.Items[0].SignaturesChecked)
		}
		if d := dst.DigestOf(t, dst.Ref("m/app")+":"+f.sig); d != "" {
			t.Errorf("remove copied the signature tag")
		}
		if got := referrersAt(t, dst, "m/app", f.appD); len(got) != 0 {
			t.Errorf("remove copied referrers %q", got)
		}
	})

	t.Run("referrers filter", func(t *testing.T) {
		dst := regtest.Start(t)
		if _, err := run(t, Options{ReferrersFilter: []string{sbomType}}, attachPlan(t, f, dst.Host)); err != nil {
			t.Fatal(err)
		}
		if got := referrersAt(t, dst, "m/app", f.appD); strings.Join(got, ",") != strings.Join(wantApp, ",") {
			t.Errorf("filtered referrers of the image: %q", got)
		}
		if got := referrersAt(t, dst, "m/app", f.sbomD); len(got) != 0 {
			t.Errorf("the filter let %q through", got)
		}
		if d := dst.DigestOf(t, dst.Ref("m/app")+":"+f.sig); d != f.sigD {
			t.Errorf("the filter dropped the tag-style signature (%q)", d)
		}
	})
}

func fetchManifest(t *testing.T, reg *regtest.Registry, repo, reference string) []byte {
	t.Helper()
	desc, err := remote.Get(mustDigestRef(t, reg.Ref(repo)+":"+reference), remote.WithTransport(reg.Transport))
	if err != nil {
		t.Fatalf("GET %s/%s:%s: %v", reg.Host, repo, reference, err)
	}
	return desc.Manifest
}

// TestSignatureAddedAfterMirror: an image mirrored unsigned and signed
// upstream afterwards gets its signature and SBOM on the next (otherwise
// no-op) run, which copies nothing else.
func TestSignatureAddedAfterMirror(t *testing.T) {
	src, dst := regtest.Start(t), regtest.Start(t)
	opt := remote.WithTransport(src.Transport)
	img, err := synth.Image(401)
	if err != nil {
		t.Fatal(err)
	}
	d, err := synth.Push(img, src.Ref("apps/late")+":v1", opt)
	if err != nil {
		t.Fatal(err)
	}
	var p plan.Plan
	p.Add(plan.Item{Source: mustRef(t, src.Ref("apps/late")+":v1").ByDigest(d), Dests: []ref.Ref{mustRef(t, dst.Ref("m/late")+":v1")}})
	e, err := New(Options{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Run(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	sig, err := synth.Image(402, synth.WithOCI())
	if err != nil {
		t.Fatal(err)
	}
	sigTag := strings.Replace(d, ":", "-", 1) + ".sig"
	sigD, err := synth.Push(sig, src.Ref("apps/late")+":"+sigTag, opt)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Head(mustDigestRef(t, src.Ref("apps/late")+"@"+d), opt)
	if err != nil {
		t.Fatal(err)
	}
	sbom := pushReferrer(t, src, "apps/late", *desc, sbomType, 403)

	e2, err := New(Options{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := e2.Run(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	it := rep.Items[0]
	if it.Status != StatusSkipped || !it.Signed || len(it.Attachments) != 2 {
		t.Errorf("re-run: status %s, signed %v, %d attachments", it.Status, it.Signed, len(it.Attachments))
	}
	if got := dst.DigestOf(t, dst.Ref("m/late")+":"+sigTag); got != sigD {
		t.Errorf("signature added upstream not carried by the re-run: %q", got)
	}
	if got := referrersAt(t, dst, "m/late", d); len(got) != 1 || !strings.HasSuffix(got[0], sbom) {
		t.Errorf("SBOM added upstream not carried: %q", got)
	}
}
