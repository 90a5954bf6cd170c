package registry_test

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/airlock-mirror/airlock/internal/registry"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

// blobsOnDisk lists the digests of the blob store under root.
func blobsOnDisk(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	base := filepath.Join(root, "docker", "registry", "v2", "blobs")
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Name() == "data" {
			dir := filepath.Dir(p)
			out = append(out, filepath.Base(filepath.Dir(filepath.Dir(dir)))+":"+filepath.Base(dir))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func TestGCRemovesUnreferencedBlobs(t *testing.T) {
	root := t.TempDir()
	reg := regtest.Start(t, regtest.WithRoot(root))
	opts := remote.WithTransport(reg.Transport)
	base := synth.Layer(1, 2048)
	keep, _ := synth.Image(31, synth.WithBase(base))
	drop, _ := synth.Image(32, synth.WithBase(base))
	if _, err := synth.Push(keep, reg.Ref("gc/app")+":keep", opts); err != nil {
		t.Fatal(err)
	}
	dropDigest, err := synth.Push(drop, reg.Ref("gc/app")+":drop", opts)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodDelete, reg.URL+"/v2/gc/app/manifests/"+dropDigest, nil)
	resp, err := reg.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("delete: %d", resp.StatusCode)
	}

	// What must go: drop's manifest, config and own layers; the shared
	// base layer stays.
	var wantGone []string
	dropLayers, _ := drop.Layers()
	for _, l := range dropLayers {
		d, _ := l.Digest()
		if bd, _ := base.Digest(); d != bd {
			wantGone = append(wantGone, d.String())
		}
	}
	cfg, _ := drop.ConfigName()
	wantGone = append(wantGone, cfg.String(), dropDigest)
	slices.Sort(wantGone)

	before := blobsOnDisk(t, root)
	dry, err := registry.GC(context.Background(), root, nil, registry.GCOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(dry.BlobDigests, wantGone) {
		t.Fatalf("dry run would delete %v, want %v", dry.BlobDigests, wantGone)
	}
	if after := blobsOnDisk(t, root); !slices.Equal(before, after) {
		t.Fatal("dry run deleted blobs")
	}

	res, err := registry.GC(context.Background(), root, nil, registry.GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.BlobDigests, wantGone) || res.BlobBytes <= 0 {
		t.Fatalf("deleted %v (%d bytes), want %v", res.BlobDigests, res.BlobBytes, wantGone)
	}
	after := blobsOnDisk(t, root)
	if len(after) != len(before)-len(wantGone) {
		t.Fatalf("%d blobs left, want %d", len(after), len(before)-len(wantGone))
	}
	for _, d := range wantGone {
		if slices.Contains(after, d) {
			t.Fatalf("blob %s still on disk", d)
		}
	}
	// The kept image still pulls completely.
	ref, _ := name.ParseReference(reg.Ref("gc/app")+":keep", name.Insecure)
	img, err := remote.Image(ref, opts)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatalf("kept layer: %v", err)
		}
		rc.Close()
	}
}

func TestGCMissingRoot(t *testing.T) {
	if _, err := registry.GC(context.Background(), filepath.Join(t.TempDir(), "nope"), nil, registry.GCOptions{}); err == nil {
		t.Fatal("gc of a directory without registry storage succeeded")
	}
}

// TestGCDeleteUntaggedReferrers: --delete-untagged keeps the signature of a
// tagged image (referrers are untagged by nature; deleting them would strip
// signatures from images still in use), but deletes an untagged image
// together with its signature, and the referrers API forgets the latter.
func TestGCDeleteUntaggedReferrers(t *testing.T) {
	root := t.TempDir()
	reg := regtest.Start(t, regtest.WithRoot(root))
	opts := remote.WithTransport(reg.Transport)
	// sign pushes subject (by tag when tag != "", else by digest) and a
	// signature of it by digest; it returns the subject digest.
	sign := func(seed int64, tag string) string {
		t.Helper()
		subject, _ := synth.Image(seed, synth.WithOCI())
		target := reg.Ref("gc/ref")
		if tag != "" {
			target += ":" + tag
		}
		sd, err := synth.Push(subject, target, opts)
		if err != nil {
			t.Fatal(err)
		}
		desc, err := partial.Descriptor(subject)
		if err != nil {
			t.Fatal(err)
		}
		sig, _ := synth.Image(seed+1000, synth.WithOCI(), synth.WithLayers(1), synth.WithLayerSize(64))
		sig = mutate.Subject(sig, *desc).(v1.Image)
		if _, err := synth.Push(sig, reg.Ref("gc/ref"), opts); err != nil {
			t.Fatal(err)
		}
		return sd
	}
	referrers := func(subject string) int {
		t.Helper()
		resp, err := reg.Client().Get(reg.URL + "/v2/gc/ref/referrers/" + subject)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var idx v1.IndexManifest
		if err := json.NewDecoder(resp.Body).Decode(&idx); err != nil {
			t.Fatalf("referrers response: %v", err)
		}
		return len(idx.Manifests)
	}
	kept := sign(51, "v1")
	dropped := sign(61, "")
	if referrers(kept) != 1 || referrers(dropped) != 1 {
		t.Fatalf("before gc: %d and %d referrers, want 1 and 1", referrers(kept), referrers(dropped))
	}
	res, err := registry.GC(context.Background(), root, nil, registry.GCOptions{DeleteUntagged: true})
	if err != nil {
		t.Fatal(err)
	}
	// The untagged image and its signature; nothing of the tagged one.
	if res.Manifests != 2 || res.ReferrersPruned != 1 {
		t.Fatalf("gc removed %d manifests, pruned %d referrers; want 2 and 1", res.Manifests, res.ReferrersPruned)
	}
	if n := referrers(kept); n != 1 {
		t.Fatalf("signature of the tagged image: %d referrers after gc, want 1", n)
	}
	if n := referrers(dropped); n != 0 {
		t.Fatalf("signature of the deleted image: %d referrers after gc, want 0", n)
	}
	ref, _ := name.ParseReference(reg.Ref("gc/ref")+":v1", name.Insecure)
	img, err := remote.Image(ref, opts)
	if err != nil {
		t.Fatalf("tagged subject gone: %v", err)
	}
	// The kept signature is whole: its blobs were marked too.
	idxRef, _ := name.ParseReference(reg.Ref("gc/ref")+"@"+kept, name.Insecure)
	sigs, err := remote.Referrers(idxRef.Context().Digest(kept), opts)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := sigs.IndexManifest()
	sigRef := idxRef.Context().Digest(im.Manifests[0].Digest.String())
	sigImg, err := remote.Image(sigRef, opts)
	if err != nil {
		t.Fatalf("kept signature unreadable: %v", err)
	}
	layers, err := sigImg.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err == nil {
			_, err = io.Copy(io.Discard, rc)
			rc.Close()
		}
		if err != nil {
			t.Fatalf("kept signature lost a layer in gc: %v", err)
		}
	}
	if _, err := img.ConfigFile(); err != nil {
		t.Fatalf("tagged subject lost its config in gc: %v", err)
	}
}

// TestGCKeepsSHA512Content: content pushed by sha512 is stored by its
// canonical sha256 with sha512 aliases (the OCI layer); gc marks the sha512
// names, so it must not sweep the sha256 blobs behind them.
func TestGCKeepsSHA512Content(t *testing.T) {
	root := t.TempDir()
	reg := regtest.Start(t, regtest.WithRoot(root))
	c := reg.Client()
	put := func(content []byte) string {
		t.Helper()
		sum := sha512.Sum512(content)
		d := "sha512:" + hex.EncodeToString(sum[:])
		resp, err := c.Post(reg.URL+"/v2/gc/s512/blobs/uploads/", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusAccepted || loc == "" {
			t.Fatalf("start upload: %d", resp.StatusCode)
		}
		u, _ := url.Parse(loc)
		if !u.IsAbs() {
			u, _ = url.Parse(reg.URL + loc)
		}
		q := u.Query()
		q.Set("digest", d)
		u.RawQuery = q.Encode()
		req, _ := http.NewRequest(http.MethodPut, u.String(), bytes.NewReader(content))
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err = c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("upload %s: %d", d, resp.StatusCode)
		}
		return d
	}
	layer := synth.LayerBytes(61, 4096)
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	ld, cd := put(layer), put(config)
	manifest := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
		cd, len(config), ld, len(layer))
	req, _ := http.NewRequest(http.MethodPut, reg.URL+"/v2/gc/s512/manifests/v1", strings.NewReader(manifest))
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("manifest put: %d", resp.StatusCode)
	}

	res, err := registry.GC(context.Background(), root, nil, registry.GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Blobs != 0 {
		t.Errorf("gc deleted %d blobs of a tagged image pushed by sha512: %v", res.Blobs, res.BlobDigests)
	}
	for d, want := range map[string][]byte{ld: layer, cd: config} {
		resp, err := c.Get(reg.URL + "/v2/gc/s512/blobs/" + d)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Equal(got, want) {
			t.Fatalf("after gc, GET %s: %d, %d bytes", d[:20], resp.StatusCode, len(got))
		}
	}
}
