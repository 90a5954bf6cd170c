package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/airlock-mirror/airlock/internal/registry"
	"github.com/airlock-mirror/airlock/internal/registry/htpasswd"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

// syncBuffer is a bytes.Buffer safe for the serve goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type servedRegistry struct {
	srv    *registry.Server
	out    *syncBuffer
	log    *syncBuffer
	stop   func() error
	caPool *x509.CertPool
}

// serveInProcess runs `registry serve` with o until the returned stop is
// called (what SIGINT does through the command context).
func serveInProcess(t *testing.T, o *RegistryServeOptions) *servedRegistry {
	t.Helper()
	out, logs := &syncBuffer{}, &syncBuffer{}
	o.streams = IOStreams{In: strings.NewReader(""), Out: out, ErrOut: logs}
	o.logger = slog.New(slog.NewTextHandler(logs, nil))
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = 5 * time.Second
	}
	ready := make(chan *registry.Server, 1)
	o.ready = func(s *registry.Server) { ready <- s }
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		if err := o.Complete(); err != nil {
			errc <- err
			return
		}
		if err := o.Validate(); err != nil {
			errc <- err
			return
		}
		errc <- o.Run(ctx)
	}()
	var srv *registry.Server
	select {
	case srv = <-ready:
	case err := <-errc:
		cancel()
		t.Fatalf("serve exited early: %v\nstdout:\n%s\nlog:\n%s", err, out, logs)
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("serve did not start")
	}
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-errc
	}
	t.Cleanup(func() { stop() })
	return &servedRegistry{srv: srv, out: out, log: logs, stop: stop}
}

func (s *servedRegistry) client(t *testing.T, caFile string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no certificate", caFile)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func status(t *testing.T, c *http.Client, url, user, pass string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func runRegistryCmd(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newRegistryCommand(IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut})
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	err := cmd.Execute()
	return out.String(), err
}

func TestRegistryServeTLSAuthAndCertReuse(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	hp := filepath.Join(dir, "htpasswd")
	if _, err := runRegistryCmd(t, "s3cret\n", "htpasswd", "add", "--file", hp, "--bcrypt-cost", "4", "--password-stdin", "alice"); err != nil {
		t.Fatal(err)
	}

	s := serveInProcess(t, &RegistryServeOptions{Root: root, Htpasswd: hp, Hostnames: []string{"mirror.example.com"}})
	caFile := filepath.Join(root, "certs", "ca.crt")
	out := s.out.String()
	for _, want := range []string{
		"listening on " + s.srv.Addr(),
		"CA certificate (generated): " + caFile,
		"/etc/containers/certs.d/mirror.example.com:",
		"oc create configmap registry-cas -n openshift-config --from-file=mirror.example.com..",
		"additionalTrustedCA",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("serve output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(s.log.String(), "NO AUTHENTICATION") {
		t.Error("anonymous warning printed although --htpasswd was given")
	}
	c := s.client(t, caFile)
	base := "https://" + s.srv.Host() + "/v2/"
	if got := status(t, c, base, "", ""); got != http.StatusUnauthorized {
		t.Errorf("anonymous: %d, want 401", got)
	}
	if got := status(t, c, base, "alice", "Wr0ngPassw0rd"); got != http.StatusUnauthorized {
		t.Errorf("wrong password: %d, want 401", got)
	}
	if logs := s.log.String(); !strings.Contains(logs, "authentication failed") || strings.Contains(logs, "Wr0ngPassw0rd") {
		t.Errorf("a failed login must be logged without the password:\n%s", logs)
	}
	if got := status(t, c, base, "alice", "s3cret"); got != http.StatusOK {
		t.Errorf("right password: %d, want 200", got)
	}

	// Push with credentials through the generated CA.
	img, _ := synth.Image(41)
	kc := authn.NewMultiKeychain(staticKeychain{host: s.srv.Host(), user: "alice", pass: "s3cret"})
	want, err := synth.Push(img, s.srv.Host()+"/serve/app:v1", remote.WithTransport(c.Transport), remote.WithAuthFromKeychain(kc))
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	if registry.ServeLockHolder(root) != os.Getpid() {
		t.Error("serve did not mark its root as in use")
	}
	caBefore, _ := os.ReadFile(caFile)
	if err := s.stop(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	if registry.ServeLockHolder(root) != 0 {
		t.Error("serve mark left behind after stop")
	}

	// Restart: same CA, the old client still trusts the server, content kept.
	s2 := serveInProcess(t, &RegistryServeOptions{Root: root, Htpasswd: hp, Hostnames: []string{"mirror.example.com"}})
	caAfter, _ := os.ReadFile(caFile)
	if !bytes.Equal(caBefore, caAfter) {
		t.Fatal("CA regenerated on restart")
	}
	if !strings.Contains(s2.out.String(), "CA certificate (reused)") {
		t.Errorf("restart output does not say the CA was reused:\n%s", s2.out)
	}
	resp, err := c.Do(mustReq(t, "https://"+s2.srv.Host()+"/v2/serve/app/manifests/v1", "alice", "s3cret"))
	if err != nil {
		t.Fatalf("old client against restarted server: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Docker-Content-Digest") != want {
		t.Fatalf("after restart: %d %s, want 200 %s", resp.StatusCode, resp.Header.Get("Docker-Content-Digest"), want)
	}
}

func mustReq(t *testing.T, url, user, pass string) *http.Request {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json")
	req.SetBasicAuth(user, pass)
	return req
}

type staticKeychain struct{ host, user, pass string }

func (k staticKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if r.RegistryStr() == k.host {
		return &authn.Basic{Username: k.user, Password: k.pass}, nil
	}
	return authn.Anonymous, nil
}

func TestRegistryServeAnonymousWarnsAndReadOnly(t *testing.T) {
	root := t.TempDir()
	s := serveInProcess(t, &RegistryServeOptions{Root: root, InsecureHTTP: true, ReadOnly: true})
	logs := s.log.String()
	if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "NO AUTHENTICATION") {
		t.Errorf("anonymous start is not loud:\n%s", logs)
	}
	if _, err := os.Stat(filepath.Join(root, "certs")); err == nil {
		t.Error("--insecure-http generated certificates")
	}
	img, _ := synth.Image(42)
	if _, err := synth.Push(img, s.srv.Host()+"/ro/app:v1"); err == nil {
		t.Fatal("push to --read-only registry succeeded")
	}
	if got := status(t, http.DefaultClient, "http://"+s.srv.Host()+"/v2/", "", ""); got != http.StatusOK {
		t.Fatalf("anonymous read: %d", got)
	}
}

func TestRegistryServeValidate(t *testing.T) {
	cases := []struct {
		name string
		o    RegistryServeOptions
		want string
	}{
		{"cert without key", RegistryServeOptions{Addr: ":0", Root: "r", TLSCert: "c.pem"}, "--tls-cert and --tls-key"},
		{"http and cert", RegistryServeOptions{Addr: ":0", Root: "r", TLSCert: "c", TLSKey: "k", InsecureHTTP: true}, "--insecure-http contradicts"},
		{"bad addr", RegistryServeOptions{Addr: "5000", Root: "r"}, "--addr"},
		{"missing htpasswd", RegistryServeOptions{Addr: ":0", Root: "r", Htpasswd: "/nonexistent/htpasswd"}, "airlock registry htpasswd add"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.o.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one mentioning %q", err, c.want)
			}
		})
	}
	bad := filepath.Join(t.TempDir(), "s3.yaml")
	os.WriteFile(bad, []byte("storage:\n  redirect:\n    disable: true\n"), 0o644)
	o := RegistryServeOptions{StorageConfig: bad}
	if err := o.Complete(); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("storage config without a driver: %v", err)
	}
}

func TestRegistryHtpasswdCommands(t *testing.T) {
	hp := filepath.Join(t.TempDir(), "sub", "htpasswd")
	if _, err := runRegistryCmd(t, "pw-one\n", "htpasswd", "add", "--file", hp, "--bcrypt-cost", "4", "--password-stdin", "alice"); err != nil {
		t.Fatal(err)
	}
	out, err := runRegistryCmd(t, "pw-two", "htpasswd", "add", "--file", hp, "--bcrypt-cost", "4", "--password-stdin", "alice")
	if err != nil || !strings.Contains(out, "updated password of user alice") {
		t.Fatalf("re-add: %q %v", out, err)
	}
	if _, err := runRegistryCmd(t, "pw-b\n", "htpasswd", "add", "--file", hp, "--bcrypt-cost", "4", "--password-stdin", "bob"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(hp)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	a, err := registryAuthn(hp)
	if err != nil {
		t.Fatal(err)
	}
	if a.Authenticate("alice", "pw-two") != nil || a.Authenticate("alice", "pw-one") == nil {
		t.Fatal("password update not effective")
	}
	out, err = runRegistryCmd(t, "", "htpasswd", "list", "--file", hp)
	if err != nil || out != "alice\nbob\n" {
		t.Fatalf("list: %q %v", out, err)
	}
	if _, err := runRegistryCmd(t, "", "htpasswd", "delete", "--file", hp, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := runRegistryCmd(t, "", "htpasswd", "delete", "--file", hp, "alice"); err == nil || !strings.Contains(err.Error(), "users: bob") {
		t.Fatalf("deleting a missing user: %v", err)
	}
	if _, err := runRegistryCmd(t, "", "htpasswd", "add", "--file", hp, "--password-stdin", "carol"); err == nil {
		t.Fatal("empty stdin password accepted")
	}
	if _, err := runRegistryCmd(t, "", "htpasswd", "add", "--file", hp, "carol"); err == nil || !strings.Contains(err.Error(), "--password-stdin") {
		t.Fatalf("no terminal: %v", err)
	}
	if _, err := runRegistryCmd(t, "x\n", "htpasswd", "add", "--file", hp, "--password-stdin", "bad:name"); err == nil {
		t.Fatal("user name with ':' accepted")
	}
	out, _ = runRegistryCmd(t, "", "htpasswd", "list", "--file", hp)
	if out != "bob\n" {
		t.Fatalf("failed commands changed the file: %q", out)
	}
}

func TestRegistryGCCommand(t *testing.T) {
	root := t.TempDir()
	s := serveInProcess(t, &RegistryServeOptions{Root: root, InsecureHTTP: true})
	img, _ := synth.Image(43)
	d, err := synth.Push(img, s.srv.Host()+"/gc/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runRegistryCmd(t, "", "gc", "--root", root); err == nil || !strings.Contains(err.Error(), "stop it first") {
		t.Fatalf("gc under a running server: %v", err)
	}
	req, _ := http.NewRequest(http.MethodDelete, "http://"+s.srv.Host()+"/v2/gc/app/manifests/"+d, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	// Manifest, config and every layer become garbage.
	layers, _ := img.Layers()
	n := fmt.Sprint(len(layers)+2, " blobs")
	out, err := runRegistryCmd(t, "", "gc", "--root", root, "--dry-run")
	if err != nil || !strings.Contains(out, "would delete "+n) || !strings.Contains(out, "blob "+d) {
		t.Fatalf("dry run: %q %v", out, err)
	}
	out, err = runRegistryCmd(t, "", "gc", "--root", root)
	if err != nil || !strings.Contains(out, "deleted "+n) {
		t.Fatalf("gc: %q %v", out, err)
	}
	out, err = runRegistryCmd(t, "", "gc", "--root", root)
	if err != nil || !strings.Contains(out, "deleted 0 blobs") {
		t.Fatalf("second gc: %q %v", out, err)
	}
}

func registryAuthn(path string) (interface{ Authenticate(u, p string) error }, error) {
	return htpasswd.NewAuthenticator(path)
}

// TestRegistryServeScaleOutS3 runs two `registry serve` instances with the
// same --storage-config (an in-process gofakes3 bucket): a push through one
// is pulled through the other.
func TestRegistryServeScaleOutS3(t *testing.T) {
	backend := s3mem.New()
	if err := backend.CreateBucket("mirror"); err != nil {
		t.Fatal(err)
	}
	s3 := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(s3.Close)
	cfg := filepath.Join(t.TempDir(), "s3.yaml")
	err := os.WriteFile(cfg, []byte(`storage:
  s3-aws:
    bucket: mirror
    region: us-east-1
    regionendpoint: `+s3.URL+`
    forcepathstyle: true
    accesskey: fake
    secretkey: fake
    secure: false
  redirect:
    disable: true
http:
  secret: same-on-every-instance
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	a := serveInProcess(t, &RegistryServeOptions{Root: t.TempDir(), StorageConfig: cfg, InsecureHTTP: true})
	b := serveInProcess(t, &RegistryServeOptions{Root: t.TempDir(), StorageConfig: cfg, InsecureHTTP: true, ReadOnly: true})
	if !strings.Contains(a.out.String(), "storage: s3") {
		t.Errorf("serve does not say it uses S3:\n%s", a.out)
	}
	idx, _ := synth.Index(44, []string{"linux/amd64", "linux/arm64"})
	want, err := synth.Push(idx, a.srv.Host()+"/scale/app:v1")
	if err != nil {
		t.Fatalf("push through A: %v", err)
	}
	ref, _ := name.ParseReference(b.srv.Host()+"/scale/app:v1", name.Insecure)
	got, err := remote.Index(ref)
	if err != nil {
		t.Fatalf("pull through B: %v", err)
	}
	if d, _ := got.Digest(); d.String() != want {
		t.Fatalf("B serves %s, pushed %s", d, want)
	}
	im, _ := got.IndexManifest()
	img, err := got.Image(im.Manifests[1].Digest)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatalf("layer through B: %v", err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			t.Fatalf("layer through B: %v", err)
		}
		rc.Close()
	}
}

// TestRegistryServeFromValidate: --from takes a file:// store, refuses a
// transfer set with what to do, and excludes --root / --storage-config.
func TestRegistryServeFromValidate(t *testing.T) {
	set := t.TempDir()
	if err := os.WriteFile(filepath.Join(set, "mirror_000001.tar"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		o    RegistryServeOptions
		want string
	}{
		{RegistryServeOptions{From: set}, "want file://DIR"},
		{RegistryServeOptions{From: "file://" + set}, "archive extract"},
		{RegistryServeOptions{From: "file://" + t.TempDir()}, "no index.json"},
		{RegistryServeOptions{From: "file://" + set, rootGiven: true}, "--root"},
		{RegistryServeOptions{From: "file://" + set, StorageConfig: "s3.yaml"}, "--storage-config"},
	} {
		o := c.o
		o.Addr, o.Root = ":5000", "./airlock-registry"
		err := o.Complete()
		if err == nil {
			err = o.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err = %v, want %q", c.o, err, c.want)
		}
	}
}
