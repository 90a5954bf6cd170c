package registry_test

import (
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

// BenchmarkManifestHEADAuthTLS measures the per-request cost of the
// registry over TLS with htpasswd auth: the HEAD probe mirroring tools send
// for every image. The credential cache keeps bcrypt out of this path.
func BenchmarkManifestHEADAuthTLS(b *testing.B) {
	reg := regtest.Start(b, regtest.WithTLS(), regtest.WithAuth("alice", "pw"))
	img, _ := synth.Image(81)
	d, err := synth.Push(img, reg.Ref("bench/app")+":v1", remote.WithTransport(reg.Transport), remote.WithAuthFromKeychain(reg.Keychain))
	if err != nil {
		b.Fatal(err)
	}
	c := reg.Client()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req, _ := reg.Request(http.MethodHead, "/v2/bench/app/manifests/"+d, nil)
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

// BenchmarkPushPull pushes and pulls a 4-layer, 4 MiB image per iteration
// (a new image each time, so no blob is skipped as already present).
func BenchmarkPushPull(b *testing.B) {
	reg := regtest.Start(b)
	opts := remote.WithTransport(reg.Transport)
	const layerSize = 1 << 20
	b.SetBytes(4 * layerSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		img, err := synth.Image(int64(1000+i), synth.WithLayers(4), synth.WithLayerSize(layerSize))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		ref := fmt.Sprintf("%s:v%d", reg.Ref("bench/pp"), i)
		if _, err := synth.Push(img, ref, opts); err != nil {
			b.Fatal(err)
		}
		r, _ := name.ParseReference(ref, name.Insecure)
		got, err := remote.Image(r, opts)
		if err != nil {
			b.Fatal(err)
		}
		layers, _ := got.Layers()
		for _, l := range layers {
			rc, err := l.Compressed()
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, rc)
			rc.Close()
		}
	}
}
