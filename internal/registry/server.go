// Package registry runs airlock's embedded mirror registry: the
// distribution/v3 registry application (handlers.NewApp) served on a
// listener we own, so that "127.0.0.1:0" works and the chosen address is
// known, with filesystem (or any distribution) storage, deletes enabled,
// sparse manifest lists accepted (platform-filtered mirrors push an index
// whose other children are deliberately absent), optional TLS and htpasswd
// basic auth with a cache of verified credentials.
package registry

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"

	"github.com/airlock-mirror/airlock/internal/registry/ocicompat"

	"github.com/airlock-mirror/airlock/internal/registry/storeview"

	// Storage drivers selectable with Options.Storage / --storage-config.
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/s3-aws"
)

// Options configure a registry server.
type Options struct {
	// Addr is the TCP address to listen on, e.g. ":5000" or "127.0.0.1:0".
	Addr string
	// Root is the filesystem storage directory. Ignored when Storage names
	// another driver.
	Root string
	// FromStore, when set, serves this airlock store (an OCI layout
	// written by mirror or archive extract) read-only and in place through
	// the storeview driver; Root and Storage must then be empty and
	// ReadOnly is implied.
	FromStore string
	// Storage, when set, replaces the filesystem storage section, e.g. an
	// s3-aws section read from --storage-config. airlock still forces
	// delete.enabled and, with ReadOnly, maintenance.readonly.
	Storage configuration.Storage
	// TLS, when non-nil, serves HTTPS with this configuration.
	TLS *tls.Config
	// HtpasswdFile, when set, requires HTTP basic auth checked against this
	// bcrypt htpasswd file. Empty means anonymous read/write.
	HtpasswdFile string
	// Realm is the basic-auth realm; default "airlock".
	Realm string
	// ReadOnly refuses pushes and deletes (405 with UNSUPPORTED).
	ReadOnly bool
	// HTTPSecret signs upload-session state. Several instances behind one
	// load balancer over shared storage need the same secret, because a
	// blob upload started on one may continue on another. Empty: random.
	HTTPSecret string
	// Logger receives airlock's own log lines; nil means slog.Default().
	Logger *slog.Logger
	// PlainDistribution serves distribution alone, without the OCI v1.1
	// compatibility layer (for comparisons and debugging only).
	PlainDistribution bool
	// Wrap, when set, wraps the complete registry handler (OCI layer
	// included), e.g. to inject faults in tests; it receives the server to
	// reach storage.
	Wrap func(s *Server, next http.Handler) http.Handler

	// UI, when set, builds the read-only web view served under /ui/ with
	// the same TLS and users as the registry (see package webui).
	UI func(s *Server) http.Handler

	gcOnly bool // storageConfig for GC: do not create the root

	layout *storeview.Layout // built from FromStore by New
}

// Server is a running registry.
type Server struct {
	opts     Options
	app      *handlers.App
	auth     *htpasswdController
	handler  http.Handler
	listener net.Listener
	http     *http.Server
	storage  configuration.Storage
	driver   storagedriver.StorageDriver

	// fresh holds connections that have not sent a request yet (see
	// Shutdown).
	fresh sync.Map // net.Conn -> struct{}

	writes atomic.Uint64 // write requests served (see Writes)

	done    chan struct{}
	serveMu sync.Mutex
	err     error
}

// Start builds the registry and starts serving in the background. Stop it
// with Shutdown or Close.
func Start(ctx context.Context, opts Options) (*Server, error) {
	s, err := New(ctx, opts)
	if err != nil {
		return nil, err
	}
	if err := s.Listen(); err != nil {
		s.app.Shutdown()
		return nil, err
	}
	go s.Serve()
	return s, nil
}

// New builds the registry application without listening; see Listen and
// Serve, or use Start.
func New(ctx context.Context, opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Realm == "" {
		opts.Realm = "airlock"
	}
	quietDistributionLogs(opts.Logger)

	if opts.FromStore != "" {
		if opts.Root != "" || len(opts.Storage) > 0 {
			return nil, errors.New("registry storage: serving a store (FromStore) excludes a root directory or storage configuration")
		}
		l, err := storeview.Build(opts.FromStore)
		if err != nil {
			return nil, fmt.Errorf("serving store: %w", err)
		}
		reportLayout(opts.Logger, l)
		opts.layout = l
		// A store served in place is never written: distribution's
		// read-only mode refuses pushes with 405 UNSUPPORTED before they
		// reach the driver (which would refuse them too, as a 500).
		opts.ReadOnly = true
	}

	storage, err := storageConfig(opts)
	if err != nil {
		return nil, err
	}
	if storage.Type() == "inmemory" && !opts.PlainDistribution {
		// Fail before starting anything: see ocicompat.NewDriver.
		return nil, errors.New("inmemory storage cannot be shared with the OCI compatibility layer: use filesystem storage (a temporary --root)")
	}
	config := &configuration.Configuration{Storage: storage}
	config.Log.AccessLog.Disabled = true
	// distribution applies its catalog default (1000) only when it parses a
	// YAML file; a config built in code has 0, and /v2/_catalog then lists
	// nothing at all.
	config.Catalog.MaxEntries = 1000
	config.HTTP.Addr = opts.Addr
	config.HTTP.Secret = opts.HTTPSecret
	if config.HTTP.Secret == "" {
		// Our own random secret: distribution would make one too, but warns.
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("generating HTTP secret: %w", err)
		}
		config.HTTP.Secret = hex.EncodeToString(b[:])
	}
	// Sparse indexes: a platform-filtered mirror pushes a manifest list
	// whose filtered-out children are absent; distribution's default
	// ("all") would reject it and the index digest could not be kept.
	config.Validation.Manifests.Indexes.Platforms = "none"
	// Non-distributable (foreign) layers carry URLs, which distribution
	// rejects unless allowed; the OCI layer says which (http and https).
	ocicompat.ConfigureDistribution(config)

	s := &Server{opts: opts, storage: storage, done: make(chan struct{})}
	if opts.HtpasswdFile != "" {
		ac, err := newHtpasswdController(opts.HtpasswdFile, opts.Realm, opts.Logger)
		if err != nil {
			return nil, err
		}
		s.auth = ac
		config.Auth = configuration.Auth{authName: configuration.Parameters{controllerKey: ac}}
	}

	// OTel: distribution's tracing setup reads this; we never call it, but a
	// library inside the app may, and an exporter trying to reach
	// localhost:4318 in an air-gapped site only produces noise.
	if os.Getenv("OTEL_TRACES_EXPORTER") == "" {
		os.Setenv("OTEL_TRACES_EXPORTER", "none")
	}

	app, err := newApp(ctx, config)
	if err != nil {
		return nil, err
	}
	s.app = app
	s.handler = app
	if !opts.PlainDistribution {
		// The OCI v1.1 layer (referrers, OCI-Subject, sha512) keeps its state
		// in the same storage, through a second driver over the same root or
		// bucket: distribution does not expose the one inside the App.
		drv, err := ocicompat.NewDriver(ctx, storage)
		if err != nil {
			app.Shutdown()
			return nil, err
		}
		s.driver = drv
		h, err := ocicompat.Wrap(app, ocicompat.Options{Driver: drv, Logger: opts.Logger})
		if err != nil {
			app.Shutdown()
			return nil, fmt.Errorf("configuring OCI compatibility layer: %w", err)
		}
		s.handler = h
		if opts.layout == nil {
			// The pull log is a write; a store served in place has none.
			s.handler = s.recordPulls(h)
		}
	}
	if opts.ReadOnly {
		msg := "the registry is read-only (--read-only): pushes and deletes are refused"
		if opts.layout != nil {
			msg = fmt.Sprintf("the registry serves the store %s read-only, in place (registry serve --from): pushes and deletes are refused; push to a registry started with --root", opts.layout.Dir())
		}
		s.handler = s.refuseWrites(s.handler, msg)
	}
	if opts.UI != nil {
		s.mountUI(opts.UI)
	}
	if opts.Wrap != nil {
		s.handler = opts.Wrap(s, s.handler)
	}
	return s, nil
}

// newApp calls handlers.NewApp, which reports configuration errors by
// panicking, and turns such a panic into an error.
func newApp(ctx context.Context, config *configuration.Configuration) (app *handlers.App, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("configuring registry storage %q: %v", config.Storage.Type(), r)
		}
	}()
	return handlers.NewApp(ctx, config), nil
}

// storageConfig builds the distribution storage section.
func storageConfig(opts Options) (configuration.Storage, error) {
	st := configuration.Storage{}
	for k, v := range opts.Storage {
		p := configuration.Parameters{}
		for pk, pv := range v {
			p[pk] = pv
		}
		if k == "s3-aws" {
			// The driver lives in distribution's s3-aws package but registers
			// as "s3" (and "s3aws"); accept the package name people read.
			k = "s3"
		}
		st[k] = p
	}
	if opts.layout != nil {
		st[storeview.DriverName] = configuration.Parameters{storeview.ParamLayout: opts.layout}
	}
	typ, err := storageType(st)
	if err != nil {
		return nil, fmt.Errorf("registry storage: %w", err)
	}
	if typ == "" {
		if opts.Root == "" {
			return nil, errors.New("registry storage: set a root directory (--root) or a storage configuration (--storage-config)")
		}
		root, err := filepath.Abs(opts.Root)
		if err != nil {
			return nil, fmt.Errorf("registry root %s: %w", opts.Root, err)
		}
		if opts.gcOnly {
			if _, err := os.Stat(filepath.Join(root, "docker", "registry", "v2")); err != nil {
				return nil, fmt.Errorf("registry root %s: no registry storage found (want %s/docker/registry/v2): %w", root, root, err)
			}
		} else if err := os.MkdirAll(root, 0o755); err != nil {
			return nil, fmt.Errorf("creating registry root %s: %w", root, err)
		}
		st["filesystem"] = configuration.Parameters{"rootdirectory": root}
	}
	// Mirrors must be able to delete (gc, retries that replace content).
	st["delete"] = configuration.Parameters{"enabled": true}
	if _, ok := st["cache"]; !ok {
		// Blob descriptor cache: saves a storage stat per HEAD, which
		// mirroring tools issue for every layer before deciding to push.
		st["cache"] = configuration.Parameters{"blobdescriptor": "inmemory"}
	}
	maint := st["maintenance"]
	if maint == nil {
		maint = configuration.Parameters{}
	}
	if opts.ReadOnly {
		maint["readonly"] = map[any]any{"enabled": true}
		// Purging uploads writes to storage; distribution's docs require it
		// off in read-only mode.
		maint["uploadpurging"] = map[any]any{"enabled": false}
	}
	st["maintenance"] = maint
	return st, nil
}

// Listen opens the listener on Options.Addr (TLS when configured).
func (s *Server) Listen() error {
	addr := s.opts.Addr
	if addr == "" {
		addr = ":5000"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	if s.opts.TLS != nil {
		cfg := s.opts.TLS.Clone()
		if cfg.MinVersion == 0 {
			cfg.MinVersion = tls.VersionTLS12
		}
		if len(cfg.NextProtos) == 0 {
			cfg.NextProtos = []string{"h2", "http/1.1"}
		}
		l = tls.NewListener(l, cfg)
	}
	s.listener = l
	s.http = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 30 * time.Second,
		// No write timeout: a multi-GiB layer download takes as long as it takes.
		IdleTimeout: 2 * time.Minute,
		ErrorLog:    slog.NewLogLogger(s.opts.Logger.Handler(), slog.LevelDebug),
		ConnState:   s.trackConn,
	}
	return nil
}

// Serve serves until Shutdown or Close; it returns nil after a clean stop.
func (s *Server) Serve() error {
	defer close(s.done)
	err := s.http.Serve(s.listener)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	s.serveMu.Lock()
	s.err = err
	s.serveMu.Unlock()
	return err
}

func (s *Server) trackConn(c net.Conn, st http.ConnState) {
	if st == http.StateNew {
		s.fresh.Store(c, struct{}{})
	} else {
		s.fresh.Delete(c)
	}
}

// Done is closed when Serve returns.
func (s *Server) Done() <-chan struct{} { return s.done }

// Err returns Serve's error once Done is closed.
func (s *Server) Err() error {
	s.serveMu.Lock()
	defer s.serveMu.Unlock()
	return s.err
}

// Shutdown stops accepting connections and waits for in-flight requests
// (uploads included) until ctx expires, then stops the registry app.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	if s.http != nil {
		// http.Server.Shutdown waits up to 5 s for connections that were
		// opened but never sent a request (clients open spare ones); they
		// carry no work, so close them as shutdown goes.
		stop := make(chan struct{})
		go func() {
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for {
				s.fresh.Range(func(c, _ any) bool {
					c.(net.Conn).Close()
					return true
				})
				select {
				case <-stop:
					return
				case <-t.C:
				}
			}
		}()
		err = s.http.Shutdown(ctx)
		close(stop)
	}
	if aerr := s.app.Shutdown(); aerr != nil && err == nil {
		err = aerr
	}
	return err
}

// Close stops the server immediately.
func (s *Server) Close() error {
	var err error
	if s.http != nil {
		err = s.http.Close()
	}
	s.app.Shutdown()
	return err
}

// Addr returns the address the server listens on, e.g. "127.0.0.1:41234".
func (s *Server) Addr() string {
	if s.listener == nil {
		return ""
	}
	return s.listener.Addr().String()
}

// Host returns a host:port clients can use: the listen address, with an
// unspecified IP (":5000", "[::]:5000") replaced by 127.0.0.1.
func (s *Server) Host() string {
	host, port, err := net.SplitHostPort(s.Addr())
	if err != nil {
		return s.Addr()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// URL returns the base URL, e.g. "https://127.0.0.1:41234".
func (s *Server) URL() string {
	scheme := "http"
	if s.opts.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + s.Host()
}

// Handler returns the complete HTTP handler (auth, registry API, wrappers).
func (s *Server) Handler() http.Handler { return s.handler }

// StorageConfig returns the effective distribution storage section; other
// layers (OCI compatibility, gc) open the same storage with it.
func (s *Server) StorageConfig() configuration.Storage { return s.storage }

// Driver returns a storage driver over the registry's storage (nil with
// PlainDistribution).
func (s *Server) Driver() storagedriver.StorageDriver { return s.driver }

// Store returns the layout of the store served with FromStore, or nil.
func (s *Server) Store() *storeview.Layout { return s.opts.layout }

// reportLayout logs, by name, what index.json references but the store
// lacks, so a damaged or partly extracted store is known at start and not
// discovered as failed pulls later.
func reportLayout(log *slog.Logger, l *storeview.Layout) {
	const maxLines = 100
	for i, w := range l.Warnings {
		if i == maxLines {
			log.Warn("more store problems not listed", "count", len(l.Warnings)-maxLines)
			break
		}
		log.Warn("store: " + w)
	}
	if len(l.Warnings) > 0 {
		log.Warn("serving the rest of the store; re-run the mirror or the extraction to complete it", "store", l.Dir(), "problems", len(l.Warnings))
	}
	if l.AbsentChildren > 0 {
		log.Info("store: index children not in the store are not served (a platform-filtered mirror keeps only its platforms)", "count", l.AbsentChildren)
	}
}

// Root returns the filesystem storage root, or "" for other drivers.
func (s *Server) Root() string {
	if fs, ok := s.storage["filesystem"]; ok {
		if r, ok := fs["rootdirectory"].(string); ok {
			return r
		}
	}
	return ""
}

// Authenticator returns the credential checker, or nil when anonymous.
func (s *Server) Authenticator() interface {
	Authenticate(user, password string) error
	BcryptCalls() int64
} {
	if s.auth == nil {
		return nil
	}
	return s.auth.authn
}

// Anonymous reports whether the registry accepts unauthenticated requests.
func (s *Server) Anonymous() bool { return s.auth == nil }

func (s *Server) String() string {
	return strings.TrimSpace(fmt.Sprintf("registry %s storage=%s", s.URL(), s.storage.Type()))
}

// refuseWrites answers writes to the registry API (uploads, manifest PUTs,
// deletes) with 405 and the distribution-spec error code UNSUPPORTED.
// distribution's read-only mode alone does not register those handlers, so
// clients get a bare "405 Method Not Allowed" text body that they report as
// an unknown error; the code and message tell the user what is going on.
// Unauthenticated requests still go to distribution, which challenges them
// (401) first, as for any other request.
func (s *Server) refuseWrites(next http.Handler, message string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			next.ServeHTTP(w, r)
			return
		}
		if !strings.HasPrefix(r.URL.Path, "/v2/") {
			next.ServeHTTP(w, r)
			return
		}
		if s.auth != nil {
			user, pass, ok := r.BasicAuth()
			if !ok || s.auth.authn.Authenticate(user, pass) != nil {
				next.ServeHTTP(w, r)
				return
			}
		}
		body, _ := json.Marshal(map[string]any{
			"errors": []map[string]string{{"code": "UNSUPPORTED", "message": message}},
		})
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Header().Set("Docker-Distribution-Api-Version", "registry/2.0")
		w.Header().Set("Allow", "GET, HEAD")
		w.WriteHeader(http.StatusMethodNotAllowed)
		_, _ = w.Write(body)
	})
}
