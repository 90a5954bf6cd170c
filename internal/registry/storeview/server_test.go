package storeview_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/airlock-mirror/airlock/internal/registry"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

// serveStore starts the embedded registry over dir with FromStore, TLS and
// a user, logging into log.
func serveStore(t *testing.T, dir string, log *bytes.Buffer) *regtest.Registry {
	t.Helper()
	return regtest.Start(t, regtest.WithTLS(), regtest.WithAuth("alice", "pw"),
		regtest.WithLogger(slog.New(slog.NewTextHandler(log, nil))),
		regtest.WithServerOptions(func(o *registry.Options) {
			o.Root = ""
			o.FromStore = dir
		}))
}

// TestRegistryServesStoreInPlace: the real registry (distribution + the OCI
// layer) over the view answers pulls with the store's digests and bytes,
// lists tags, catalog and referrers, names the missing blob at start, and
// refuses pushes and deletes with distribution's read-only error while the
// store stays byte-for-byte unchanged.
func TestRegistryServesStoreInPlace(t *testing.T) {
	f := newFixture(t)
	before := snapshot(t, f.dir)
	var log bytes.Buffer
	reg := serveStore(t, f.dir, &log)
	opts := []remote.Option{remote.WithTransport(reg.Transport), remote.WithAuth(&authn.Basic{Username: "alice", Password: "pw"})}

	if !strings.Contains(log.String(), f.brokenLayer.String()) {
		t.Errorf("start log does not name the missing blob %s:\n%s", f.brokenLayer, log.String())
	}

	for ref, want := range map[string]string{
		"mirror/ns/multi:v1":                        f.multi.String(),
		"mirror/ns/multi@" + f.children[0].String(): f.children[0].String(),
		"mirror/ns/app:v1":                          f.app.String(),
		"mirror/ns/app:" + f.sigTag:                 f.sig.String(),
		"mirror/ns/app@" + f.referrer.String():      f.referrer.String(),
	} {
		r, err := name.ParseReference(reg.Host + "/" + ref)
		if err != nil {
			t.Fatal(err)
		}
		desc, err := remote.Get(r, opts...)
		if err != nil {
			t.Errorf("GET %s: %v", ref, err)
			continue
		}
		pool, _ := os.ReadFile(filepath.Join(f.dir, "blobs", "sha256", strings.TrimPrefix(want, "sha256:")))
		if desc.Digest.String() != want || !bytes.Equal(desc.Manifest, pool) {
			t.Errorf("GET %s: digest %s, want %s (bytes equal: %v)", ref, desc.Digest, want, bytes.Equal(desc.Manifest, pool))
		}
	}

	// A whole image, layers verified by digest by the client.
	app, err := remote.Image(mustRef(t, reg.Host+"/mirror/ns/app:v1"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := app.Layers()
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			t.Errorf("layer read: %v", err)
		}
		if err := rc.Close(); err != nil {
			t.Errorf("layer verification: %v", err)
		}
	}
	// The missing layer is a 404, not a 500.
	resp := get(t, reg, http.MethodGet, "/v2/mirror/ns/broken/blobs/"+f.brokenLayer.String(), nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET of the missing layer: %s, want 404", resp.Status)
	}

	tags, err := remote.List(mustRepo(t, reg.Host+"/mirror/ns/app"), opts...)
	if err != nil || strings.Join(tags, ",") != f.sigTag+",v1" {
		t.Errorf("tags of app = %v (%v)", tags, err)
	}
	repos, err := remote.Catalog(t.Context(), mustRegistry(t, reg.Host), opts...)
	if err != nil || strings.Join(repos, ",") != "mirror/ns/app,mirror/ns/broken,mirror/ns/multi,mirror/ns/sparse" {
		t.Errorf("catalog = %v (%v)", repos, err)
	}
	idx, err := remote.Referrers(mustDigest(t, reg.Host+"/mirror/ns/app@"+f.app.String()), opts...)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	if len(im.Manifests) != 1 || im.Manifests[0].Digest != f.referrer || im.Manifests[0].ArtifactType != referrerType {
		t.Errorf("referrers of app = %+v", im.Manifests)
	}

	// Pushes and deletes: distribution's read-only answer.
	img, _ := synth.Image(99)
	if err := remote.Write(mustRef(t, reg.Host+"/mirror/ns/app:pushed"), img, opts...); err == nil {
		t.Error("push into the served store succeeded")
	}
	for _, c := range []struct{ method, path string }{
		{http.MethodPost, "/v2/mirror/ns/app/blobs/uploads/"},
		{http.MethodPut, "/v2/mirror/ns/app/manifests/v2"},
		{http.MethodDelete, "/v2/mirror/ns/app/manifests/" + f.app.String()},
	} {
		resp := get(t, reg, c.method, c.path, strings.NewReader("{}"))
		var body struct {
			Errors []struct{ Code string }
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		if resp.StatusCode != http.StatusMethodNotAllowed || len(body.Errors) == 0 || body.Errors[0].Code != "UNSUPPORTED" {
			t.Errorf("%s %s: %s %+v, want 405 UNSUPPORTED", c.method, c.path, resp.Status, body)
		}
	}
	// Without credentials a write is challenged like any request.
	req, _ := http.NewRequest(http.MethodDelete, reg.URL+"/v2/mirror/ns/app/manifests/"+f.app.String(), nil)
	anon, err := (&http.Client{Transport: reg.Transport}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	anon.Body.Close()
	if anon.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous DELETE: %s, want 401", anon.Status)
	}
	if after := snapshot(t, f.dir); after != before {
		t.Errorf("serving changed the store:\nbefore %s\nafter  %s", before, after)
	}
}

func get(t *testing.T, reg *regtest.Registry, method, p string, body io.Reader) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, reg.URL+p, body)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("alice", "pw")
	if method == http.MethodPut {
		req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	}
	resp, err := (&http.Client{Transport: reg.Transport}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustDigest(t *testing.T, s string) name.Digest {
	t.Helper()
	r, err := name.NewDigest(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustRepo(t *testing.T, s string) name.Repository {
	t.Helper()
	r, err := name.NewRepository(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustRegistry(t *testing.T, s string) name.Registry {
	t.Helper()
	r, err := name.NewRegistry(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
