package synth

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestDeterministic(t *testing.T) {
	a, err := Workload(3, 9, 1024)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Workload(3, 9, 1024)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i := range a {
		da, _ := a[i].Digest()
		db, _ := b[i].Digest()
		if da != db {
			t.Fatalf("entry %d: digests differ between runs: %s vs %s", i, da, db)
		}
		if seen[da] {
			t.Fatalf("entry %d: digest %s repeats", i, da)
		}
		seen[da] = true
	}
	c, _ := Workload(4, 9, 1024)
	dc, _ := c[0].Digest()
	da, _ := a[0].Digest()
	if dc == da {
		t.Fatal("different seeds gave the same digest")
	}
}

func TestIndexPlatformsAndSharedBase(t *testing.T) {
	base := Layer(1, 2048)
	idx, err := Index(5, []string{"linux/amd64", "linux/arm64/v8", "linux/s390x"}, WithBase(base), WithOCI())
	if err != nil {
		t.Fatal(err)
	}
	mt, _ := idx.MediaType()
	if mt != types.OCIImageIndex {
		t.Fatalf("media type %s", mt)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 3 {
		t.Fatalf("got %d children", len(im.Manifests))
	}
	raw, _ := idx.RawManifest()
	if strings.Contains(string(raw), "artifactType") {
		t.Errorf("index carries artifactType, which real indexes do not: %s", raw)
	}
	if d, _ := idx.Digest(); d.String() != "sha256:"+sha256hex(raw) {
		t.Errorf("digest %s is not the sha256 of the raw manifest", d)
	}
	bd, _ := base.Digest()
	for _, m := range im.Manifests {
		img, err := idx.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, _ := img.ConfigFile()
		got := cf.OS + "/" + cf.Architecture
		if cf.Variant != "" {
			got += "/" + cf.Variant
		}
		want := m.Platform.OS + "/" + m.Platform.Architecture
		if m.Platform.Variant != "" {
			want += "/" + m.Platform.Variant
		}
		if got != want {
			t.Errorf("config platform %s, descriptor %s", got, want)
		}
		ls, _ := img.Layers()
		if d, _ := ls[0].Digest(); d != bd {
			t.Errorf("first layer %s, want shared base %s", d, bd)
		}
		mf, _ := img.Manifest()
		for _, l := range mf.Layers {
			if l.MediaType != types.OCILayer {
				t.Errorf("manifest layer media type %s, want OCI", l.MediaType)
			}
		}
	}
}

// TestPushRoundTrip pushes to go-containerregistry's in-memory registry to
// check Push alone; the real registry is exercised by every user of synth.
func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestPushRoundTrip(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	nested, err := NestedIndex(9, []string{"linux/amd64", "linux/arm64"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := Push(nested, host+"/a/nested")
	if err != nil {
		t.Fatal(err)
	}
	r, _ := name.ParseReference(host+"/a/nested@"+d, name.Insecure)
	desc, err := remote.Get(r)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest.String() != d {
		t.Fatalf("pulled %s, pushed %s", desc.Digest, d)
	}
	// A bare repository is pushed by digest only: no tag appears.
	tags, err := remote.List(r.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(tags) != 0 {
		t.Fatalf("bare repository push created tags %v", tags)
	}
}
