package engine

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

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
