// Package regtest starts airlock's embedded registry (the real
// distribution/v3 server, same code as `airlock registry serve`) inside a
// test, on 127.0.0.1 with a random port, optionally with TLS and htpasswd
// auth, and hands back everything a client needs to talk to it.
//
//	reg := regtest.Start(t, regtest.WithTLS(), regtest.WithAuth("alice", "s3cret"))
//	remote.Write(ref, img, remote.WithTransport(reg.Transport), remote.WithAuthFromKeychain(reg.Keychain))
package regtest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"

	"github.com/airlock-mirror/airlock/internal/registry"
	"github.com/airlock-mirror/airlock/internal/registry/htpasswd"
)

// Registry is a running test registry.
type Registry struct {
	// Host is "127.0.0.1:PORT", the registry part of image references.
	Host string
	// URL is "http://127.0.0.1:PORT" or "https://127.0.0.1:PORT".
	URL string
	// TLS reports whether the registry serves HTTPS.
	TLS bool
	// CAFile is the PEM CA certificate that signed the server certificate
	// (empty without TLS); pass it to skopeo --cert-dir / --ca-file flags.
	CAFile string
	// CertDir holds only ca.crt (empty without TLS): the layout skopeo's
	// --cert-dir/--src-cert-dir/--dest-cert-dir and podman's
	// /etc/containers/certs.d/HOST:PORT/ expect.
	CertDir string
	// CAPool trusts CAFile (nil without TLS).
	CAPool *x509.CertPool
	// Username and Password are the credentials (empty when anonymous).
	Username, Password string
	// HtpasswdFile is the htpasswd file (empty when anonymous).
	HtpasswdFile string
	// Root is the filesystem storage directory.
	Root string
	// Transport trusts CAPool; use it for every client request.
	Transport http.RoundTripper
	// Keychain returns Username/Password for Host, anonymous otherwise.
	Keychain authn.Keychain
	// Server is the underlying server.
	Server *registry.Server
}

// Option configures Start.
type Option func(*config)

type config struct {
	tls        bool
	user, pass string
	root       string
	readOnly   bool
	storage    configuration.Storage
	httpSecret string
	logger     *slog.Logger
	wrap       func(*registry.Server, http.Handler) http.Handler
	plain      bool
	server     []func(*registry.Options)
}

// WithTLS serves HTTPS with a freshly generated CA.
func WithTLS() Option { return func(c *config) { c.tls = true } }

// WithAuth requires HTTP basic auth with this user and password.
func WithAuth(user, pass string) Option {
	return func(c *config) { c.user, c.pass = user, pass }
}

// WithRoot stores content in dir instead of a new t.TempDir(); use it to
// restart a registry over the same content.
func WithRoot(dir string) Option { return func(c *config) { c.root = dir } }

// WithReadOnly refuses pushes and deletes.
func WithReadOnly() Option { return func(c *config) { c.readOnly = true } }

// WithStorage uses a distribution storage section (e.g. s3-aws) instead of
// the filesystem; see registry.Options.Storage.
func WithStorage(storage configuration.Storage, httpSecret string) Option {
	return func(c *config) { c.storage, c.httpSecret = storage, httpSecret }
}

// WithLogger sends the registry's logs to logger (default: discarded, so
// test output stays readable; set REGTEST_DEBUG=1 to see them).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithPlainDistribution serves distribution alone, without the OCI v1.1
// layer `airlock registry serve` puts in front (to compare behaviours).
func WithPlainDistribution() Option { return func(c *config) { c.plain = true } }

// WithWrap wraps the registry handler, as registry.Options.Wrap.
func WithWrap(wrap func(*registry.Server, http.Handler) http.Handler) Option {
	return func(c *config) { c.wrap = wrap }
}

// WithServerOptions edits the registry options before the server starts,
// e.g. to mount the web view (Options.UI).
func WithServerOptions(f func(*registry.Options)) Option {
	return func(c *config) { c.server = append(c.server, f) }
}

// Start starts a registry on 127.0.0.1:0 and stops it with t.Cleanup.
func Start(t testing.TB, opts ...Option) *Registry {
	t.Helper()
	var c config
	for _, o := range opts {
		o(&c)
	}
	if c.root == "" {
		c.root = t.TempDir()
	}
	if c.logger == nil {
		if os.Getenv("REGTEST_DEBUG") != "" {
			c.logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		} else {
			c.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		}
	}
	r := &Registry{Root: c.root, Username: c.user, Password: c.pass, TLS: c.tls}
	ro := registry.Options{
		Addr:       "127.0.0.1:0",
		Root:       c.root,
		ReadOnly:   c.readOnly,
		HTTPSecret: c.httpSecret,
		Logger:     c.logger,
		Wrap:       c.wrap,

		PlainDistribution: c.plain,
	}
	ro.Storage = c.storage

	transport := http.DefaultTransport.(*http.Transport).Clone()
	if c.tls {
		// Certificates live outside the storage root so that two
		// registries over the same root get separate, valid certs.
		dir := filepath.Join(t.TempDir(), "certs")
		cf, err := registry.EnsureCerts(dir, []string{"127.0.0.1", "localhost"})
		if err != nil {
			t.Fatalf("regtest: %v", err)
		}
		pair, err := tls.LoadX509KeyPair(cf.Cert, cf.Key)
		if err != nil {
			t.Fatalf("regtest: loading server certificate: %v", err)
		}
		pem, err := os.ReadFile(cf.CACert)
		if err != nil {
			t.Fatalf("regtest: %v", err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		caDir := filepath.Join(t.TempDir(), "ca")
		if err := os.MkdirAll(caDir, 0o755); err != nil {
			t.Fatalf("regtest: %v", err)
		}
		if err := os.WriteFile(filepath.Join(caDir, "ca.crt"), pem, 0o644); err != nil {
			t.Fatalf("regtest: %v", err)
		}
		r.CAFile, r.CertDir, r.CAPool = filepath.Join(caDir, "ca.crt"), caDir, pool
		ro.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	if c.user != "" {
		f := &htpasswd.File{Path: filepath.Join(t.TempDir(), "htpasswd")}
		// MinCost keeps the test fast; the cache makes it matter little.
		if _, err := f.Set(c.user, c.pass, bcrypt.MinCost); err != nil {
			t.Fatalf("regtest: %v", err)
		}
		if err := f.Write(); err != nil {
			t.Fatalf("regtest: %v", err)
		}
		ro.HtpasswdFile = f.Path
		r.HtpasswdFile = f.Path
	}

	for _, f := range c.server {
		f(&ro)
	}
	srv, err := registry.Start(context.Background(), ro)
	if err != nil {
		t.Fatalf("regtest: starting registry: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
		transport.CloseIdleConnections()
	})
	r.Server = srv
	r.Host = srv.Host()
	r.URL = srv.URL()
	r.Transport = transport
	r.Keychain = keychain{host: r.Host, user: c.user, pass: c.pass}
	return r
}

// Ref returns "HOST/repo" (append ":tag" or "@digest" yourself).
func (r *Registry) Ref(repo string) string { return fmt.Sprintf("%s/%s", r.Host, repo) }

// Client returns an http.Client using Transport.
func (r *Registry) Client() *http.Client { return &http.Client{Transport: r.Transport} }

// DigestOf returns the digest reference ("host/repo:tag" or "@digest")
// resolves to at this registry, or "" when it does not resolve.
func (r *Registry) DigestOf(t testing.TB, reference string) string {
	t.Helper()
	n, err := name.ParseReference(reference, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	d, err := remote.Head(n, remote.WithTransport(r.Transport), remote.WithAuthFromKeychain(r.Keychain))
	if err != nil {
		return ""
	}
	return d.Digest.String()
}

// Request builds a request to URL+path carrying the credentials (if any).
func (r *Registry) Request(method, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequest(method, r.URL+path, body)
	if err != nil {
		return nil, err
	}
	if r.Username != "" {
		req.SetBasicAuth(r.Username, r.Password)
	}
	return req, nil
}

type keychain struct{ host, user, pass string }

func (k keychain) Resolve(res authn.Resource) (authn.Authenticator, error) {
	if k.user == "" || res.RegistryStr() != k.host {
		return authn.Anonymous, nil
	}
	return &authn.Basic{Username: k.user, Password: k.pass}, nil
}
