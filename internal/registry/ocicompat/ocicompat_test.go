package ocicompat_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/airlock-mirror/airlock/internal/registry/ocicompat"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
)

// client is a minimal distribution-API client over a regtest registry,
// speaking raw HTTP so each test sees exactly the status and headers the
// layer produces.
type client struct {
	t   testing.TB
	reg *regtest.Registry
}

func (c client) do(method, path string, body []byte, hdr map[string]string) (*http.Response, []byte) {
	c.t.Helper()
	req, err := c.reg.Request(method, path, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.reg.Client().Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp, b
}

// pushBlob uploads content with POST + PUT, addressed by alg (sha256 or
// sha512), and returns its digest.
func (c client) pushBlob(repo string, content []byte, alg digest.Algorithm) digest.Digest {
	c.t.Helper()
	d := alg.FromBytes(content)
	resp, body := c.do(http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil, nil)
	if resp.StatusCode != http.StatusAccepted {
		c.t.Fatalf("starting upload to %s: %s %s", repo, resp.Status, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		c.t.Fatal(err)
	}
	q := loc.Query()
	q.Set("digest", d.String())
	loc.RawQuery = q.Encode()
	resp, body = c.do(http.MethodPut, loc.RequestURI(), content, map[string]string{"Content-Type": "application/octet-stream"})
	if resp.StatusCode != http.StatusCreated {
		c.t.Fatalf("finishing upload of %s to %s: %s %s", d, repo, resp.Status, body)
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != d.String() {
		c.t.Errorf("blob PUT of %s: Docker-Content-Digest %q", d, got)
	}
	return d
}

// pushManifest PUTs a manifest by ref (tag or digest) and returns the response.
func (c client) pushManifest(repo, ref, mediaType string, body []byte) *http.Response {
	c.t.Helper()
	resp, b := c.do(http.MethodPut, "/v2/"+repo+"/manifests/"+ref, body, map[string]string{"Content-Type": mediaType})
	if resp.StatusCode != http.StatusCreated {
		c.t.Fatalf("pushing manifest %s:%s: %s %s", repo, ref, resp.Status, b)
	}
	return resp
}

// referrers GETs the referrers index of subject.
func (c client) referrers(repo string, subject digest.Digest, query string) (*http.Response, v1.Index) {
	c.t.Helper()
	p := "/v2/" + repo + "/referrers/" + subject.String()
	if query != "" {
		p += "?" + query
	}
	resp, body := c.do(http.MethodGet, p, nil, nil)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("GET %s: %s %s", p, resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != v1.MediaTypeImageIndex {
		c.t.Errorf("GET %s: Content-Type %q, want %q", p, ct, v1.MediaTypeImageIndex)
	}
	var idx v1.Index
	if err := json.Unmarshal(body, &idx); err != nil {
		c.t.Fatalf("GET %s: body is not an image index: %v: %s", p, err, body)
	}
	if idx.SchemaVersion != 2 || idx.MediaType != v1.MediaTypeImageIndex {
		c.t.Errorf("GET %s: schemaVersion %d mediaType %q", p, idx.SchemaVersion, idx.MediaType)
	}
	if !bytes.Contains(body, []byte(`"manifests":[`)) {
		c.t.Errorf("GET %s: manifests must be a JSON array, even when empty: %s", p, body)
	}
	return resp, idx
}

// image pushes a one-layer image to repo:tag and returns its manifest digest.
func (c client) image(repo, tag string, seed string) (digest.Digest, int64) {
	c.t.Helper()
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"seed":"` + seed + `"}`)
	layer := []byte("layer " + seed)
	cd := c.pushBlob(repo, cfg, digest.SHA256)
	ld := c.pushBlob(repo, layer, digest.SHA256)
	m := v1.Manifest{
		MediaType: v1.MediaTypeImageManifest,
		Config:    v1.Descriptor{MediaType: v1.MediaTypeImageConfig, Digest: cd, Size: int64(len(cfg))},
		Layers:    []v1.Descriptor{{MediaType: v1.MediaTypeImageLayer, Digest: ld, Size: int64(len(layer))}},
	}
	m.SchemaVersion = 2
	b, _ := json.Marshal(m)
	c.pushManifest(repo, tag, v1.MediaTypeImageManifest, b)
	return digest.FromBytes(b), int64(len(b))
}

// artifact builds (does not push) an artifact manifest referring to subject.
// With artifactType empty, the config media type carries the type, as in
// images signed by older tools.
func (c client) artifact(repo string, subject v1.Descriptor, artifactType, configType, note string) []byte {
	c.t.Helper()
	empty := []byte("{}")
	ed := c.pushBlob(repo, empty, digest.SHA256)
	if configType == "" {
		configType = v1.MediaTypeEmptyJSON
	}
	m := v1.Manifest{
		MediaType:    v1.MediaTypeImageManifest,
		ArtifactType: artifactType,
		Config:       v1.Descriptor{MediaType: configType, Digest: ed, Size: 2},
		Layers:       []v1.Descriptor{{MediaType: v1.MediaTypeEmptyJSON, Digest: ed, Size: 2}},
		Subject:      &subject,
		Annotations:  map[string]string{"note": note},
	}
	m.SchemaVersion = 2
	b, err := json.Marshal(m)
	if err != nil {
		c.t.Fatal(err)
	}
	return b
}

func digests(idx v1.Index) []digest.Digest {
	var out []digest.Digest
	for _, d := range idx.Manifests {
		out = append(out, d.Digest)
	}
	slices.Sort(out)
	return out
}

func sorted(ds ...digest.Digest) []digest.Digest {
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return ds
}

func TestReferrersEmptyForUnknownSubject(t *testing.T) {
	c := client{t, regtest.Start(t)}
	// Neither the repository nor the subject exist: still 200 and an empty
	// index, never 404 (clients would take 404 as "API unsupported").
	_, idx := c.referrers("nothing/here", digest.FromString("no such manifest"), "")
	if len(idx.Manifests) != 0 {
		t.Fatalf("want no referrers, got %v", idx.Manifests)
	}
}

func TestReferrersRejectsInvalidDigest(t *testing.T) {
	c := client{t, regtest.Start(t)}
	resp, body := c.do(http.MethodGet, "/v2/repo/referrers/sha256:nothex", nil, nil)
	if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(body, []byte("DIGEST_INVALID")) {
		t.Fatalf("want 400 DIGEST_INVALID, got %s %s", resp.Status, body)
	}
}

func TestReferrersListFilterAndSubjectHeader(t *testing.T) {
	c := client{t, regtest.Start(t)}
	const repo = "apps/web"
	subj, size := c.image(repo, "v1", "subject")
	subject := v1.Descriptor{MediaType: v1.MediaTypeImageManifest, Digest: subj, Size: size}

	sig := c.artifact(repo, subject, "application/vnd.example.signature", "", "sig")
	resp := c.pushManifest(repo, digest.FromBytes(sig).String(), v1.MediaTypeImageManifest, sig)
	if got := resp.Header.Get("OCI-Subject"); got != subj.String() {
		t.Errorf("PUT of a manifest with a subject: OCI-Subject %q, want %q", got, subj)
	}
	// No artifactType: the config media type stands in for it. Pushed by tag.
	sbom := c.artifact(repo, subject, "", "application/vnd.example.sbom.config", "sbom")
	c.pushManifest(repo, "sbom", v1.MediaTypeImageManifest, sbom)
	// An index can be a referrer too.
	idxRef := v1.Index{MediaType: v1.MediaTypeImageIndex, ArtifactType: "application/vnd.example.bundle", Manifests: []v1.Descriptor{}, Subject: &subject}
	idxRef.SchemaVersion = 2
	ib, _ := json.Marshal(idxRef)
	c.pushManifest(repo, digest.FromBytes(ib).String(), v1.MediaTypeImageIndex, ib)
	// A manifest without subject must not get the header nor be listed.
	_, plainSize := c.image(repo, "v2", "other")
	_ = plainSize

	_, idx := c.referrers(repo, subj, "")
	want := sorted(digest.FromBytes(sig), digest.FromBytes(sbom), digest.FromBytes(ib))
	if got := digests(idx); !slices.Equal(got, want) {
		t.Fatalf("referrers: got %v, want %v", got, want)
	}
	byDigest := map[digest.Digest]v1.Descriptor{}
	for _, d := range idx.Manifests {
		byDigest[d.Digest] = d
	}
	if d := byDigest[digest.FromBytes(sig)]; d.ArtifactType != "application/vnd.example.signature" || d.MediaType != v1.MediaTypeImageManifest ||
		d.Size != int64(len(sig)) || d.Annotations["note"] != "sig" {
		t.Errorf("signature descriptor: %+v", d)
	}
	if d := byDigest[digest.FromBytes(sbom)]; d.ArtifactType != "application/vnd.example.sbom.config" {
		t.Errorf("artifactType must fall back to config.mediaType: %+v", d)
	}
	if d := byDigest[digest.FromBytes(ib)]; d.ArtifactType != "application/vnd.example.bundle" || d.MediaType != v1.MediaTypeImageIndex {
		t.Errorf("index referrer descriptor: %+v", d)
	}

	resp, idx = c.referrers(repo, subj, "artifactType="+url.QueryEscape("application/vnd.example.signature"))
	if got := resp.Header.Get("OCI-Filters-Applied"); got != "artifactType" {
		t.Errorf("filtered response: OCI-Filters-Applied %q", got)
	}
	if got := digests(idx); !slices.Equal(got, []digest.Digest{digest.FromBytes(sig)}) {
		t.Errorf("filtered referrers: got %v", got)
	}
	resp, _ = c.referrers(repo, subj, "")
	if got := resp.Header.Get("OCI-Filters-Applied"); got != "" {
		t.Errorf("unfiltered response must not claim a filter: %q", got)
	}
	// Referrers are per repository.
	if _, idx := c.referrers("apps/other", subj, ""); len(idx.Manifests) != 0 {
		t.Errorf("another repository must not see these referrers: %v", idx.Manifests)
	}
}

func TestReferrersSurviveRestartAndFollowDeletes(t *testing.T) {
	root := t.TempDir()
	reg := regtest.Start(t, regtest.WithRoot(root))
	c := client{t, reg}
	const repo = "restart/me"
	subj, size := c.image(repo, "v1", "s")
	subject := v1.Descriptor{MediaType: v1.MediaTypeImageManifest, Digest: subj, Size: size}
	a := c.artifact(repo, subject, "application/vnd.example.a", "", "a")
	b := c.artifact(repo, subject, "application/vnd.example.b", "", "b")
	ad, bd := digest.FromBytes(a), digest.FromBytes(b)
	c.pushManifest(repo, ad.String(), v1.MediaTypeImageManifest, a)
	c.pushManifest(repo, bd.String(), v1.MediaTypeImageManifest, b)

	// A second registry process over the same storage (a restart, or
	// another instance of a scaled-out registry) sees the same index.
	c2 := client{t, regtest.Start(t, regtest.WithRoot(root))}
	if _, idx := c2.referrers(repo, subj, ""); !slices.Equal(digests(idx), sorted(ad, bd)) {
		t.Fatalf("after restart: got %v, want %v", digests(idx), sorted(ad, bd))
	}

	resp, body := c2.do(http.MethodDelete, "/v2/"+repo+"/manifests/"+ad.String(), nil, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("deleting %s: %s %s", ad, resp.Status, body)
	}
	for name, cl := range map[string]client{"deleting instance": c2, "other instance": c} {
		if _, idx := cl.referrers(repo, subj, ""); !slices.Equal(digests(idx), []digest.Digest{bd}) {
			t.Errorf("%s after delete: got %v, want [%s]", name, digests(idx), bd)
		}
	}
	// Pushing it again brings it back.
	c.pushManifest(repo, ad.String(), v1.MediaTypeImageManifest, a)
	if _, idx := c2.referrers(repo, subj, ""); !slices.Equal(digests(idx), sorted(ad, bd)) {
		t.Errorf("after re-push: got %v, want %v", digests(idx), sorted(ad, bd))
	}
}

func TestReferrersConcurrentPushesAllListed(t *testing.T) {
	c := client{t, regtest.Start(t)}
	const repo = "busy/repo"
	subj, size := c.image(repo, "v1", "s")
	subject := v1.Descriptor{MediaType: v1.MediaTypeImageManifest, Digest: subj, Size: size}
	const n = 24
	bodies := make([][]byte, n)
	var want []digest.Digest
	for i := range bodies {
		bodies[i] = c.artifact(repo, subject, "application/vnd.example.sig", "", fmt.Sprint(i))
		want = append(want, digest.FromBytes(bodies[i]))
	}
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := c.reg.Request(http.MethodPut, "/v2/"+repo+"/manifests/"+want[i].String(), bytes.NewReader(bodies[i]))
			req.Header.Set("Content-Type", v1.MediaTypeImageManifest)
			resp, err := c.reg.Client().Do(req)
			if err != nil {
				errs <- err.Error()
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				errs <- resp.Status
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("concurrent push: %s", e)
	}
	if _, idx := c.referrers(repo, subj, ""); !slices.Equal(digests(idx), sorted(want...)) {
		t.Fatalf("got %d referrers, want all %d", len(idx.Manifests), n)
	}
}

func TestReferrersRequireTheRegistrysAuth(t *testing.T) {
	reg := regtest.Start(t, regtest.WithTLS(), regtest.WithAuth("alice", "wonder land"))
	c := client{t, reg}
	subj, _ := c.image("private/repo", "v1", "s")
	p := "/v2/private/repo/referrers/" + subj.String()

	anon, _ := http.NewRequest(http.MethodGet, reg.URL+p, nil)
	resp, err := reg.Client().Do(anon)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" || !bytes.Contains(body, []byte("UNAUTHORIZED")) {
		t.Fatalf("anonymous referrers request: want 401 with WWW-Authenticate, got %s %v %s", resp.Status, resp.Header, body)
	}
	wrong, _ := http.NewRequest(http.MethodGet, reg.URL+p, nil)
	wrong.SetBasicAuth("alice", "wrong")
	if resp, err := reg.Client().Do(wrong); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong password: want 401, got %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	c.referrers("private/repo", subj, "") // with credentials: 200
}

func TestSHA512ManifestsAndBlobs(t *testing.T) {
	c := client{t, regtest.Start(t)}
	const repo = "algo/sha512"
	cfg := []byte(`{"architecture":"arm64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	layer := []byte("a layer addressed by sha512")
	cd := c.pushBlob(repo, cfg, digest.SHA512)
	ld := c.pushBlob(repo, layer, digest.SHA512)

	resp, _ := c.do(http.MethodHead, "/v2/"+repo+"/blobs/"+ld.String(), nil, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Docker-Content-Digest") != ld.String() {
		t.Errorf("HEAD blob by sha512: %s, Docker-Content-Digest %q", resp.Status, resp.Header.Get("Docker-Content-Digest"))
	}
	resp, body := c.do(http.MethodGet, "/v2/"+repo+"/blobs/"+ld.String(), nil, nil)
	if !bytes.Equal(body, layer) || resp.Header.Get("Docker-Content-Digest") != ld.String() {
		t.Errorf("GET blob by sha512: %s %q, Docker-Content-Digest %q", resp.Status, body, resp.Header.Get("Docker-Content-Digest"))
	}

	m := v1.Manifest{
		MediaType: v1.MediaTypeImageManifest,
		Config:    v1.Descriptor{MediaType: v1.MediaTypeImageConfig, Digest: cd, Size: int64(len(cfg))},
		Layers:    []v1.Descriptor{{MediaType: v1.MediaTypeImageLayer, Digest: ld, Size: int64(len(layer))}},
	}
	m.SchemaVersion = 2
	mb, _ := json.Marshal(m)
	md := digest.SHA512.FromBytes(mb)

	// A body that does not match the sha512 in the URL is refused.
	resp, body = c.do(http.MethodPut, "/v2/"+repo+"/manifests/"+md.String(), append(slices.Clone(mb), ' '), map[string]string{"Content-Type": v1.MediaTypeImageManifest})
	if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(body, []byte("DIGEST_INVALID")) {
		t.Errorf("mismatched sha512 manifest: want 400 DIGEST_INVALID, got %s %s", resp.Status, body)
	}

	resp = c.pushManifest(repo, md.String(), v1.MediaTypeImageManifest, mb)
	if got := resp.Header.Get("Docker-Content-Digest"); got != md.String() {
		t.Errorf("PUT manifest by sha512: Docker-Content-Digest %q, want %q", got, md)
	}
	if loc := resp.Header.Get("Location"); !bytes.HasSuffix([]byte(loc), []byte(md.String())) {
		t.Errorf("PUT manifest by sha512: Location %q does not name %s", loc, md)
	}
	for _, method := range []string{http.MethodHead, http.MethodGet} {
		resp, body = c.do(method, "/v2/"+repo+"/manifests/"+md.String(), nil, map[string]string{"Accept": v1.MediaTypeImageManifest})
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Docker-Content-Digest") != md.String() {
			t.Errorf("%s manifest by sha512: %s, Docker-Content-Digest %q", method, resp.Status, resp.Header.Get("Docker-Content-Digest"))
		}
		if method == http.MethodGet && !bytes.Equal(body, mb) {
			t.Errorf("GET manifest by sha512 returned other bytes: %s", body)
		}
	}
	// An index may list the sha512 manifest as a child.
	ix := v1.Index{MediaType: v1.MediaTypeImageIndex, Manifests: []v1.Descriptor{{MediaType: v1.MediaTypeImageManifest, Digest: md, Size: int64(len(mb))}}}
	ix.SchemaVersion = 2
	ib, _ := json.Marshal(ix)
	c.pushManifest(repo, digest.SHA512.FromBytes(ib).String(), v1.MediaTypeImageIndex, ib)

	// distribution stores it under sha256 as well.
	if resp, _ = c.do(http.MethodHead, "/v2/"+repo+"/manifests/"+digest.FromBytes(mb).String(), nil, map[string]string{"Accept": v1.MediaTypeImageManifest}); resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD by the canonical sha256 before the delete: %s", resp.Status)
	}
	resp, body = c.do(http.MethodDelete, "/v2/"+repo+"/manifests/"+md.String(), nil, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("DELETE manifest by sha512: %s %s", resp.Status, body)
	}
	// Gone under both names: the sha512 the client used and the sha256
	// distribution stored it under.
	for _, d := range []digest.Digest{md, digest.FromBytes(mb)} {
		resp, _ = c.do(http.MethodHead, "/v2/"+repo+"/manifests/"+d.String(), nil, map[string]string{"Accept": v1.MediaTypeImageManifest})
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("HEAD %s after DELETE by sha512: %s, want 404", d.Algorithm(), resp.Status)
		}
	}

	// Cross-repository mount by sha512.
	resp, body = c.do(http.MethodPost, "/v2/algo/other/blobs/uploads/?mount="+url.QueryEscape(ld.String())+"&from="+url.QueryEscape(repo), nil, nil)
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Docker-Content-Digest") != ld.String() {
		t.Fatalf("mount by sha512: %s %s, Docker-Content-Digest %q", resp.Status, body, resp.Header.Get("Docker-Content-Digest"))
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp, body = c.do(http.MethodGet, loc.Path, nil, nil); resp.StatusCode != http.StatusOK || !bytes.Equal(body, layer) {
		t.Errorf("GET of the mounted sha512 blob at %s: %s %q", loc.Path, resp.Status, body)
	}
}

func TestMonolithicBlobPost(t *testing.T) {
	c := client{t, regtest.Start(t, regtest.WithAuth("bob", "builder"))}
	const repo = "mono/post"
	for _, alg := range []digest.Algorithm{digest.SHA256, digest.SHA512} {
		content := []byte("one request upload " + alg.String())
		d := alg.FromBytes(content)
		resp, body := c.do(http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+url.QueryEscape(d.String()), content,
			map[string]string{"Content-Type": "application/octet-stream"})
		if resp.StatusCode != http.StatusCreated || resp.Header.Get("Docker-Content-Digest") != d.String() {
			t.Fatalf("POST with %s body: %s %s, Docker-Content-Digest %q", alg, resp.Status, body, resp.Header.Get("Docker-Content-Digest"))
		}
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp, body = c.do(http.MethodGet, loc.Path, nil, nil); resp.StatusCode != http.StatusOK || !bytes.Equal(body, content) {
			t.Errorf("GET %s after monolithic POST: %s %q", loc.Path, resp.Status, body)
		}
	}
	// A body that does not match the digest is refused and not stored.
	wrong := digest.FromString("something else")
	resp, body := c.do(http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+url.QueryEscape(wrong.String()), []byte("actual bytes"), nil)
	if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(body, []byte("DIGEST_INVALID")) {
		t.Errorf("POST with mismatched digest: want 400 DIGEST_INVALID, got %s %s", resp.Status, body)
	}
	if resp, _ = c.do(http.MethodHead, "/v2/"+repo+"/blobs/"+digest.FromString("actual bytes").String(), nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("rejected monolithic upload left a blob behind: HEAD %s", resp.Status)
	}
	// Without credentials the registry's auth answers, as for any upload.
	req, _ := http.NewRequest(http.MethodPost, c.reg.URL+"/v2/"+repo+"/blobs/uploads/?digest="+url.QueryEscape(digest.FromString("x").String()), bytes.NewReader([]byte("x")))
	if resp, err := c.reg.Client().Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous monolithic POST: want 401, got %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

func TestReindexRebuildsMissingAndPrunesStaleEntries(t *testing.T) {
	root := t.TempDir()
	c := client{t, regtest.Start(t, regtest.WithRoot(root))}
	const repo = "team/app"
	subj, size := c.image(repo, "v1", "s")
	subject := v1.Descriptor{MediaType: v1.MediaTypeImageManifest, Digest: subj, Size: size}
	kept := c.artifact(repo, subject, "application/vnd.example.kept", "", "kept")
	gone := c.artifact(repo, subject, "application/vnd.example.gone", "", "gone")
	keptD, goneD := digest.FromBytes(kept), digest.FromBytes(gone)
	c.pushManifest(repo, keptD.String(), v1.MediaTypeImageManifest, kept)
	c.pushManifest(repo, goneD.String(), v1.MediaTypeImageManifest, gone)

	// Lose the index entirely, as for content pushed to plain distribution
	// (or a crash right after distribution stored the manifest).
	indexDir := filepath.Join(root, "docker", "registry", "v2", "repositories", "team", "app", "_referrers")
	if _, err := os.Stat(indexDir); err != nil {
		t.Fatalf("the referrers index is not where the layout says: %v", err)
	}
	if err := os.RemoveAll(indexDir); err != nil {
		t.Fatal(err)
	}
	if _, idx := c.referrers(repo, subj, ""); len(idx.Manifests) != 0 {
		t.Fatalf("index removed, yet referrers listed: %v", digests(idx))
	}

	drv, err := ocicompat.NewDriver(context.Background(), configuration.Storage{"filesystem": {"rootdirectory": root}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := ocicompat.Reindex(context.Background(), drv, nil)
	if err != nil {
		t.Fatalf("Reindex: %v", err)
	}
	if res.Added != 2 || res.Pruned != 0 || res.Repositories != 1 {
		t.Errorf("first Reindex: %+v, want 2 added in 1 repository", res)
	}
	_, idx := c.referrers(repo, subj, "")
	if !slices.Equal(digests(idx), sorted(keptD, goneD)) {
		t.Fatalf("after Reindex: got %v, want %v", digests(idx), sorted(keptD, goneD))
	}
	for _, d := range idx.Manifests {
		if d.MediaType != v1.MediaTypeImageManifest || d.ArtifactType == "" || d.Annotations["note"] == "" {
			t.Errorf("rebuilt descriptor lacks fields: %+v", d)
		}
	}

	if resp, body := c.do(http.MethodDelete, "/v2/"+repo+"/manifests/"+goneD.String(), nil, nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("delete: %s %s", resp.Status, body)
	}
	res, err = ocicompat.Reindex(context.Background(), drv, nil)
	if err != nil {
		t.Fatalf("second Reindex: %v", err)
	}
	if res.Added != 0 || res.Pruned != 1 {
		t.Errorf("second Reindex: %+v, want 0 added and the deleted referrer pruned", res)
	}
	if _, err := os.Stat(filepath.Join(indexDir, "sha256", subj.Encoded(), "sha256_"+goneD.Encoded())); !os.IsNotExist(err) {
		t.Errorf("stale entry still on disk: %v", err)
	}
	if _, idx := c.referrers(repo, subj, ""); !slices.Equal(digests(idx), []digest.Digest{keptD}) {
		t.Errorf("after prune: got %v, want [%s]", digests(idx), keptD)
	}
}

func TestAnonymousMount(t *testing.T) {
	c := client{t, regtest.Start(t)}
	for _, alg := range []digest.Algorithm{digest.SHA256, digest.SHA512} {
		content := []byte("shared base layer " + alg.String())
		d := c.pushBlob("source/"+alg.String(), content, alg)
		target := "target/" + alg.String()
		resp, body := c.do(http.MethodPost, "/v2/"+target+"/blobs/uploads/?mount="+url.QueryEscape(d.String()), nil, nil)
		if resp.StatusCode != http.StatusCreated || resp.Header.Get("Docker-Content-Digest") != d.String() {
			t.Fatalf("mount of %s without from: %s %s, Docker-Content-Digest %q", d, resp.Status, body, resp.Header.Get("Docker-Content-Digest"))
		}
		if resp, body = c.do(http.MethodGet, "/v2/"+target+"/blobs/"+d.String(), nil, nil); resp.StatusCode != http.StatusOK || !bytes.Equal(body, content) {
			t.Errorf("GET mounted %s: %s %q", d, resp.Status, body)
		}
	}
	// A blob nobody has: the registry opens an upload session instead.
	resp, body := c.do(http.MethodPost, "/v2/target/x/blobs/uploads/?mount="+url.QueryEscape(digest.FromString("absent").String()), nil, nil)
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Location") == "" {
		t.Errorf("mount of an absent blob: want 202 with an upload Location, got %s %s", resp.Status, body)
	}
}

func TestSHA512Referrer(t *testing.T) {
	reg := regtest.Start(t)
	c := client{t, reg}
	const repo = "algo/referrers"
	subj, size := c.image(repo, "v1", "s")
	subject := v1.Descriptor{MediaType: v1.MediaTypeImageManifest, Digest: subj, Size: size}
	body := c.artifact(repo, subject, "application/vnd.example.sig", "", "512")
	rd := digest.SHA512.FromBytes(body)
	if resp := c.pushManifest(repo, rd.String(), v1.MediaTypeImageManifest, body); resp.Header.Get("OCI-Subject") != subj.String() {
		t.Errorf("sha512 referrer push: OCI-Subject %q", resp.Header.Get("OCI-Subject"))
	}
	if _, idx := c.referrers(repo, subj, ""); !slices.Equal(digests(idx), []digest.Digest{rd}) {
		t.Fatalf("referrers: got %v, want [%s]", digests(idx), rd)
	}
	// Reindex must not add the sha256 revision distribution keeps for it.
	drv, err := ocicompat.NewDriver(context.Background(), configuration.Storage{"filesystem": {"rootdirectory": reg.Root}})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := ocicompat.Reindex(context.Background(), drv, nil); err != nil || res.Added != 0 {
		t.Fatalf("Reindex: %+v %v, want nothing added", res, err)
	}
	if _, idx := c.referrers(repo, subj, ""); !slices.Equal(digests(idx), []digest.Digest{rd}) {
		t.Fatalf("referrers after Reindex: got %v, want [%s]", digests(idx), rd)
	}
	if resp, b := c.do(http.MethodDelete, "/v2/"+repo+"/manifests/"+rd.String(), nil, nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("delete: %s %s", resp.Status, b)
	}
	if res, err := ocicompat.Reindex(context.Background(), drv, nil); err != nil || res.Added != 0 || res.Pruned != 1 {
		t.Fatalf("Reindex after delete: %+v %v, want the entry pruned and nothing added", res, err)
	}
	if _, idx := c.referrers(repo, subj, ""); len(idx.Manifests) != 0 {
		t.Errorf("referrers after delete: %v", digests(idx))
	}
}
