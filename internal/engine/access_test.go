package engine

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

// TestWriteAndReadOnEveryTransport is what catalog and release code does:
// write a built image and index, read them back, resolve them, on a
// registry, in the store and in a plain OCI layout.
func TestWriteAndReadOnEveryTransport(t *testing.T) {
	reg := regtest.Start(t)
	tmp := t.TempDir()
	e := newTestEngine(t, nil, func(o *Options) { o.StoreDir = filepath.Join(tmp, "store") })
	ctx := context.Background()
	img, _ := synth.Image(131, synth.WithLayers(2))
	idx, _ := synth.Index(132, []string{"linux/amd64", "linux/arm64"})
	imgDigest, _ := img.Digest()
	idxDigest, _ := idx.Digest()

	for _, base := range []string{reg.Host + "/built/", "file://built/", "oci://" + filepath.Join(tmp, "layout") + ":"} {
		imgRef := mustRef(t, base+map[bool]string{true: "img", false: "app:img"}[base[:3] == "oci"])
		idxRef := mustRef(t, base+map[bool]string{true: "idx", false: "app:idx"}[base[:3] == "oci"])
		t.Run(string(imgRef.Transport), func(t *testing.T) {
			if err := e.WriteImage(ctx, imgRef, img); err != nil {
				t.Fatal(err)
			}
			if err := e.WriteIndex(ctx, idxRef, idx); err != nil {
				t.Fatal(err)
			}
			d, err := e.Resolve(ctx, imgRef)
			if err != nil || d.Digest != imgDigest || !d.MediaType.IsImage() || d.Size <= 0 {
				t.Errorf("Resolve(%s) = %+v, %v; want %s", imgRef, d, err, imgDigest)
			}
			d, err = e.Resolve(ctx, idxRef)
			if err != nil || d.Digest != idxDigest || !d.MediaType.IsIndex() {
				t.Errorf("Resolve(%s) = %+v, %v; want %s", idxRef, d, err, idxDigest)
			}
			got, err := e.Image(ctx, imgRef)
			if err != nil {
				t.Fatal(err)
			}
			if h, _ := got.Digest(); h != imgDigest {
				t.Errorf("Image(%s) digest %s", imgRef, h)
			}
			layers, _ := got.Layers()
			for _, l := range layers {
				rc, err := l.Compressed()
				if err != nil {
					t.Fatal(err)
				}
				rc.Close()
			}
			gi, err := e.Index(ctx, idxRef)
			if err != nil {
				t.Fatal(err)
			}
			if h, _ := gi.Digest(); h != idxDigest {
				t.Errorf("Index(%s) digest %s", idxRef, h)
			}
			missing := imgRef.WithTag("nope")
			if _, err := e.Resolve(ctx, missing); !errors.Is(err, ErrNotFound) {
				t.Errorf("Resolve(%s) = %v, want ErrNotFound", missing, err)
			}
		})
	}
}

// TestCopyOverTLSWithCredentials: the blob path (own HTTP client) and the
// go-containerregistry path both authenticate and trust the CA given.
func TestCopyOverTLSWithCredentials(t *testing.T) {
	src := regtest.Start(t, regtest.WithTLS(), regtest.WithAuth("alice", "s3cret"))
	dst := regtest.Start(t, regtest.WithTLS(), regtest.WithAuth("bob", "hunter22"))
	img, _ := synth.Index(161, []string{"linux/amd64", "linux/arm64"})
	want, _ := img.Digest()
	kc := authn.NewMultiKeychain(src.Keychain, dst.Keychain)
	ctx := context.Background()
	// Each test registry has its own CA: trust both.
	pool := x509.NewCertPool()
	for _, f := range []string{src.CAFile, dst.CAFile} {
		pem, err := os.ReadFile(f)
		if err != nil || !pool.AppendCertsFromPEM(pem) {
			t.Fatalf("CA %s: %v", f, err)
		}
	}
	tr := defaultTransport().(*http.Transport)
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	// Push with the engine's own write path.
	e := newTestEngine(t, tr, func(o *Options) { o.Keychain = kc })
	if err := e.WriteIndex(ctx, mustRef(t, src.Host+"/sec/app:v1"), img); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Run(ctx, plan.Plan{Items: []plan.Item{
		{Source: mustRef(t, src.Host+"/sec/app:v1"), Dests: []ref.Ref{mustRef(t, dst.Host+"/sec/app:v1")}}}}); err != nil {
		t.Fatal(err)
	}
	d, err := e.Resolve(ctx, mustRef(t, dst.Host+"/sec/app:v1"))
	if err != nil || d.Digest != want {
		t.Fatalf("Resolve = %v, %v; want %s", d.Digest, err, want)
	}
	// Without credentials the destination refuses.
	anon := newTestEngine(t, tr, nil)
	if _, err := anon.Resolve(ctx, mustRef(t, dst.Host+"/sec/app:v1")); err == nil {
		t.Error("anonymous Resolve succeeded against an auth registry")
	}
}
