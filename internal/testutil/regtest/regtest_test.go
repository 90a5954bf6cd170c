package regtest_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

func pushPull(t *testing.T, reg *regtest.Registry, repo string) {
	t.Helper()
	idx, err := synth.Index(1, []string{"linux/amd64", "linux/arm64", "linux/ppc64le"})
	if err != nil {
		t.Fatal(err)
	}
	opts := []remote.Option{remote.WithTransport(reg.Transport), remote.WithAuthFromKeychain(reg.Keychain)}
	want, err := synth.Push(idx, reg.Ref(repo)+":v1", opts...)
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	ref, err := name.ParseReference(reg.Ref(repo)+":v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(ref, opts...)
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	if desc.Digest.String() != want {
		t.Fatalf("pulled digest %s, pushed %s", desc.Digest, want)
	}
	got, err := desc.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := got.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 3 {
		t.Fatalf("pulled index has %d manifests, want 3", len(im.Manifests))
	}
	// Pull every layer of one child to prove blobs round-trip.
	img, err := got.Image(im.Manifests[1].Digest)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatalf("layer: %v", err)
		}
		var b bytes.Buffer
		if _, err := b.ReadFrom(rc); err != nil {
			t.Fatalf("reading layer: %v", err)
		}
		rc.Close()
		d, _ := l.Digest()
		if h, _, _ := v1.SHA256(&b); h != d {
			t.Fatalf("layer content hashes to %s, want %s", h, d)
		}
	}
}

func TestPlainHTTPPushPull(t *testing.T) {
	reg := regtest.Start(t)
	if reg.TLS || reg.CAFile != "" || reg.CAPool != nil {
		t.Fatalf("default registry must be plain HTTP: %+v", reg)
	}
	if reg.URL != "http://"+reg.Host {
		t.Fatalf("URL %q, Host %q", reg.URL, reg.Host)
	}
	pushPull(t, reg, "plain/app")

	// The catalog lists it (distribution's catalog page size defaults to 0,
	// "list nothing", when the configuration is built in code).
	resp, err := reg.Client().Get(reg.URL + "/v2/_catalog")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var cat struct{ Repositories []string }
	if err := json.NewDecoder(resp.Body).Decode(&cat); err != nil {
		t.Fatal(err)
	}
	if len(cat.Repositories) != 1 || cat.Repositories[0] != "plain/app" {
		t.Fatalf("catalog %v, want [plain/app]", cat.Repositories)
	}
}

func TestTLSAuthPushPull(t *testing.T) {
	reg := regtest.Start(t, regtest.WithTLS(), regtest.WithAuth("alice", "s3cret"))
	if reg.URL != "https://"+reg.Host || reg.CAFile == "" {
		t.Fatalf("URL %q CAFile %q", reg.URL, reg.CAFile)
	}
	pushPull(t, reg, "secure/app")

	cases := []struct {
		name       string
		user, pass string
		want       int
	}{
		{"anonymous", "", "", http.StatusUnauthorized},
		{"wrong password", "alice", "nope", http.StatusUnauthorized},
		{"unknown user", "bob", "s3cret", http.StatusUnauthorized},
		{"right password", "alice", "s3cret", http.StatusOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, reg.URL+"/v2/secure/app/tags/list", nil)
			if c.user != "" {
				req.SetBasicAuth(c.user, c.pass)
			}
			resp, err := reg.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.want)
			}
			if c.want == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate challenge")
			}
		})
	}

	// An anonymous push must be refused too.
	img, err := synth.Image(7)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := synth.Push(img, reg.Ref("secure/anon")+":x", remote.WithTransport(reg.Transport)); err == nil {
		t.Fatal("anonymous push succeeded")
	}
}

// TestSparseIndexByDigest pushes, by digest and without any tag, a
// manifest list whose children are partly absent: what a platform-filtered
// mirror does to keep the original index digest.
func TestSparseIndexByDigest(t *testing.T) {
	reg := regtest.Start(t)
	idx, err := synth.Index(3, []string{"linux/amd64", "linux/arm64", "linux/s390x"})
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	repo, _ := name.NewRepository(reg.Ref("sparse/app"), name.Insecure)
	opts := []remote.Option{remote.WithTransport(reg.Transport)}
	child, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(repo.Digest(im.Manifests[0].Digest.String()), child, opts...); err != nil {
		t.Fatalf("pushing one child: %v", err)
	}
	raw, err := idx.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	req, _ := http.NewRequest(http.MethodPut, reg.URL+"/v2/sparse/app/manifests/"+d.String(), bytes.NewReader(raw))
	req.Header.Set("Content-Type", string(types.DockerManifestList))
	resp, err := reg.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("sparse index push by digest: status %d, want 201", resp.StatusCode)
	}
	desc, err := remote.Get(repo.Digest(d.String()), opts...)
	if err != nil {
		t.Fatalf("pulling sparse index: %v", err)
	}
	if !bytes.Equal(desc.Manifest, raw) {
		t.Fatal("sparse index bytes changed")
	}
}

// TestOCILayerWired: the default registry (as `airlock registry serve`)
// answers the OCI v1.1 referrers API; distribution alone does not.
func TestOCILayerWired(t *testing.T) {
	img, _ := synth.Image(9, synth.WithOCI())
	for _, c := range []struct {
		name string
		opts []regtest.Option
		want int
	}{
		{"default", nil, http.StatusOK},
		{"plain distribution", []regtest.Option{regtest.WithPlainDistribution()}, http.StatusNotFound},
	} {
		t.Run(c.name, func(t *testing.T) {
			reg := regtest.Start(t, c.opts...)
			d, err := synth.Push(img, reg.Ref("oci/app")+":v1", remote.WithTransport(reg.Transport))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := reg.Client().Get(reg.URL + "/v2/oci/app/referrers/" + d)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Fatalf("referrers API: %d, want %d", resp.StatusCode, c.want)
			}
		})
	}
}
