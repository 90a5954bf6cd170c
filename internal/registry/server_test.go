package registry_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/airlock-mirror/airlock/internal/registry"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

func TestReadOnlyRefusesPushes(t *testing.T) {
	root := t.TempDir()
	// Fill the storage through a writable instance first.
	rw := regtest.Start(t, regtest.WithRoot(root))
	img, err := synth.Image(11)
	if err != nil {
		t.Fatal(err)
	}
	want, err := synth.Push(img, rw.Ref("ro/app")+":v1", remote.WithTransport(rw.Transport))
	if err != nil {
		t.Fatal(err)
	}

	ro := regtest.Start(t, regtest.WithRoot(root), regtest.WithReadOnly())
	ref, _ := name.ParseReference(ro.Ref("ro/app")+":v1", name.Insecure)
	desc, err := remote.Get(ref, remote.WithTransport(ro.Transport))
	if err != nil {
		t.Fatalf("read-only registry must serve pulls: %v", err)
	}
	if desc.Digest.String() != want {
		t.Fatalf("pulled %s, pushed %s", desc.Digest, want)
	}
	other, _ := synth.Image(12)
	if _, err := synth.Push(other, ro.Ref("ro/app")+":v2", remote.WithTransport(ro.Transport)); err == nil {
		t.Fatal("push to read-only registry succeeded")
	}
	// Deleting is refused too.
	req, _ := http.NewRequest(http.MethodDelete, ro.URL+"/v2/ro/app/manifests/"+want, nil)
	resp, err := ro.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 400 {
		t.Fatalf("delete on read-only registry: status %d", resp.StatusCode)
	}
	if _, err := remote.Get(ref, remote.WithTransport(ro.Transport)); err != nil {
		t.Fatalf("image gone after refused delete: %v", err)
	}
}

func TestDeleteEnabled(t *testing.T) {
	reg := regtest.Start(t)
	img, _ := synth.Image(21)
	d, err := synth.Push(img, reg.Ref("del/app")+":v1", remote.WithTransport(reg.Transport))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodDelete, reg.URL+"/v2/del/app/manifests/"+d, nil)
	resp, err := reg.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("delete manifest: status %d, want 202", resp.StatusCode)
	}
}

func TestEnsureCertsReuse(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	first, err := registry.EnsureCerts(dir, []string{"localhost", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if !first.Created {
		t.Fatal("first call must create the CA")
	}
	ca1, _ := os.ReadFile(first.CACert)
	srv1, _ := os.ReadFile(first.Cert)

	again, err := registry.EnsureCerts(dir, []string{"127.0.0.1", "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	ca2, _ := os.ReadFile(again.CACert)
	srv2, _ := os.ReadFile(again.Cert)
	if again.Created || !bytes.Equal(ca1, ca2) || !bytes.Equal(srv1, srv2) {
		t.Fatal("restart with the same names must reuse CA and server certificate")
	}

	// A new name re-issues the server certificate from the same CA.
	more, err := registry.EnsureCerts(dir, []string{"127.0.0.1", "localhost", "mirror.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	ca3, _ := os.ReadFile(more.CACert)
	srv3, _ := os.ReadFile(more.Cert)
	if !bytes.Equal(ca1, ca3) {
		t.Fatal("adding a name must keep the CA")
	}
	if bytes.Equal(srv1, srv3) {
		t.Fatal("adding a name must re-issue the server certificate")
	}
	block, _ := pem.Decode(srv3)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca1)
	for _, h := range []string{"mirror.example.com", "localhost", "127.0.0.1"} {
		if _, err := cert.Verify(x509.VerifyOptions{DNSName: h, Roots: pool}); err != nil {
			t.Errorf("certificate not valid for %s: %v", h, err)
		}
	}
	if fi, _ := os.Stat(more.CAKey); fi.Mode().Perm() != 0o600 {
		t.Errorf("ca.key mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestStartErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := registry.Start(ctx, registry.Options{Addr: "127.0.0.1:0", Root: t.TempDir(), HtpasswdFile: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("missing htpasswd file accepted")
	}
	bad := filepath.Join(t.TempDir(), "htpasswd")
	os.WriteFile(bad, []byte("alice:plaintext\n"), 0o600)
	if _, err := registry.Start(ctx, registry.Options{Addr: "127.0.0.1:0", Root: t.TempDir(), HtpasswdFile: bad}); err == nil {
		t.Error("non-bcrypt htpasswd accepted")
	}
	if _, err := registry.Start(ctx, registry.Options{Addr: "127.0.0.1:0"}); err == nil {
		t.Error("no storage accepted")
	}
	// A driver configuration distribution rejects becomes an error, not a panic.
	st := map[string]map[string]any{"s3-aws": {"bucket": ""}}
	if _, err := registry.Start(ctx, registry.Options{Addr: "127.0.0.1:0", Storage: toStorage(st)}); err == nil {
		t.Error("invalid s3 configuration accepted")
	}
}

// TestScaleOutS3 runs two registries over one S3 bucket (an in-process
// gofakes3 server): an image pushed through one is pulled through the
// other, as behind a load balancer.
func TestScaleOutS3(t *testing.T) {
	backend := s3mem.New()
	if err := backend.CreateBucket("mirror"); err != nil {
		t.Fatal(err)
	}
	s3 := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(s3.Close)

	sf, err := registry.ParseStorageFile("s3.yaml", []byte(`
storage:
  s3-aws:
    bucket: mirror
    region: us-east-1
    regionendpoint: `+s3.URL+`
    forcepathstyle: true
    accesskey: fake
    secretkey: fake
    secure: false
    rootdirectory: /airlock
  redirect:
    disable: true
http:
  secret: shared-between-instances
`))
	if err != nil {
		t.Fatal(err)
	}
	a := regtest.Start(t, regtest.WithStorage(sf.Storage, sf.HTTPSecret))
	b := regtest.Start(t, regtest.WithStorage(sf.Storage, sf.HTTPSecret), regtest.WithTLS(), regtest.WithAuth("u", "p"))

	idx, err := synth.Index(5, []string{"linux/amd64", "linux/arm64"})
	if err != nil {
		t.Fatal(err)
	}
	want, err := synth.Push(idx, a.Ref("scale/app")+":v1", remote.WithTransport(a.Transport))
	if err != nil {
		t.Fatalf("push through instance A: %v", err)
	}
	ref, _ := name.ParseReference(b.Ref("scale/app")+":v1", name.Insecure)
	opts := []remote.Option{remote.WithTransport(b.Transport), remote.WithAuthFromKeychain(b.Keychain)}
	desc, err := remote.Get(ref, opts...)
	if err != nil {
		t.Fatalf("pull through instance B: %v", err)
	}
	if desc.Digest.String() != want {
		t.Fatalf("B serves %s, A was pushed %s", desc.Digest, want)
	}
	got, _ := desc.ImageIndex()
	im, _ := got.IndexManifest()
	img, err := got.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatalf("layer through B: %v", err)
		}
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(rc); err != nil {
			t.Fatalf("reading layer through B: %v", err)
		}
		rc.Close()
	}
	// Nothing was written to local disk under either root.
	if entries, _ := os.ReadDir(a.Root); len(entries) != 0 {
		t.Errorf("S3-backed registry wrote to its local root: %v", entries)
	}
}
