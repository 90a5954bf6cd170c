package ocicompat

import (
	"net/http"
	"testing"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestReferrerEntryNameRoundTrip(t *testing.T) {
	subject := digest.FromString("subject")
	for _, ref := range []digest.Digest{digest.FromString("a"), digest.SHA512.FromString("b")} {
		got, ok := parseReferrerEntryName(referrerEntry("a/b", subject, ref))
		if !ok || got != ref {
			t.Errorf("round trip of %s: got %s %v", ref, got, ok)
		}
	}
	for _, name := range []string{
		"/x/sha256_" + digest.FromString("a").Encoded() + ".6f1c.tmp", // filesystem driver's in-flight write
		"/x/sha256_nothex",
		"/x/sha256",
		"/x/md5_" + digest.FromString("a").Encoded(),
	} {
		if d, ok := parseReferrerEntryName(name); ok {
			t.Errorf("%s parsed as %s; want rejected", name, d)
		}
	}
}

func TestReferrerDescriptor(t *testing.T) {
	d := digest.FromString("m")
	cases := []struct {
		name        string
		m           manifestFields
		contentType string
		wantMT      string
		wantAT      string
	}{
		{"artifactType wins", manifestFields{MediaType: v1.MediaTypeImageManifest, ArtifactType: "a/b", Config: &struct {
			MediaType string `json:"mediaType"`
		}{"c/d"}}, "", v1.MediaTypeImageManifest, "a/b"},
		{"config media type stands in", manifestFields{MediaType: v1.MediaTypeImageManifest, Config: &struct {
			MediaType string `json:"mediaType"`
		}{"c/d"}}, "", v1.MediaTypeImageManifest, "c/d"},
		{"index without artifactType", manifestFields{MediaType: v1.MediaTypeImageIndex}, "", v1.MediaTypeImageIndex, ""},
		{"mediaType from Content-Type", manifestFields{ArtifactType: "x/y"}, v1.MediaTypeImageIndex, v1.MediaTypeImageIndex, "x/y"},
	}
	for _, c := range cases {
		got := referrerDescriptor(c.m, c.contentType, d, 42)
		if got.MediaType != c.wantMT || got.ArtifactType != c.wantAT || got.Digest != d || got.Size != 42 {
			t.Errorf("%s: got %+v", c.name, got)
		}
	}
}

func TestRewriteDigestHeaders(t *testing.T) {
	canonical := digest.FromString("x")
	pushed := digest.SHA512.FromString("x")
	h := http.Header{}
	h.Set("Docker-Content-Digest", canonical.String())
	h.Set("Location", "https://r.example/v2/a/b/blobs/"+canonical.String())
	h.Set("Etag", `"`+canonical.String()+`"`)
	h.Set("Content-Length", "0")
	rewriteDigestHeaders(h, canonical, pushed)
	if h.Get("Docker-Content-Digest") != pushed.String() ||
		h.Get("Location") != "https://r.example/v2/a/b/blobs/"+pushed.String() ||
		h.Get("Etag") != `"`+pushed.String()+`"` || h.Get("Content-Length") != "0" {
		t.Errorf("rewritten headers: %v", h)
	}
	same := http.Header{"Docker-Content-Digest": {canonical.String()}}
	rewriteDigestHeaders(same, canonical, canonical)
	if same.Get("Docker-Content-Digest") != canonical.String() {
		t.Errorf("identical digests must leave headers alone: %v", same)
	}
}

func TestNonCanonical(t *testing.T) {
	if _, ok := nonCanonical(digest.FromString("a").String()); ok {
		t.Error("sha256 reported as non-canonical")
	}
	if d, ok := nonCanonical(digest.SHA512.FromString("a").String()); !ok || d.Algorithm() != digest.SHA512 {
		t.Error("sha512 not reported as non-canonical")
	}
	for _, s := range []string{"latest", "sha512:short", ""} {
		if _, ok := nonCanonical(s); ok {
			t.Errorf("%q reported as a non-canonical digest", s)
		}
	}
}
