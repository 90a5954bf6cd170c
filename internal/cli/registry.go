package cli

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/term"

	"github.com/airlock-mirror/airlock/internal/registry"
	"github.com/airlock-mirror/airlock/internal/registry/htpasswd"
	"github.com/airlock-mirror/airlock/internal/registry/storeview"
	"github.com/airlock-mirror/airlock/internal/regscan"
	"github.com/airlock-mirror/airlock/internal/report"
	"github.com/airlock-mirror/airlock/internal/webui"
)

func newRegistryCommand(streams IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "registry",
		Short: "Run and manage airlock's embedded mirror registry",
		Long: `The embedded mirror registry: a distribution/v3 registry with TLS by
default, htpasswd authentication, deletes and sparse manifest lists enabled,
and the OCI distribution-spec v1.1 additions (referrers API, sha512).`,
		Example: `  # Serve a registry with a generated CA and password authentication
  airlock registry htpasswd add --file ./htpasswd alice
  airlock registry serve --root ./airlock-registry --htpasswd ./htpasswd

  # Remove blobs nothing references any more (stop the registry first)
  airlock registry gc --root ./airlock-registry`,
	}
	cmd.AddCommand(newRegistryServeCommand(streams))
	cmd.AddCommand(newRegistryHtpasswdCommand(streams))
	cmd.AddCommand(newRegistryGCCommand(streams))
	cmd.AddCommand(newRegistryPruneCommand(streams))
	cmd.AddCommand(newRegistryLsCommand(streams))
	return cmd
}

// RegistryServeOptions holds `airlock registry serve` flags.
type RegistryServeOptions struct {
	Addr          string
	Root          string
	Htpasswd      string
	TLSCert       string
	TLSKey        string
	InsecureHTTP  bool
	ReadOnly      bool
	StorageConfig string
	Hostnames     []string
	// From is file://DIR: serve that store read-only in place instead of
	// a registry under Root (see package storeview).
	From string
	// CertDir holds the generated certificate; default ROOT/certs, or
	// ./airlock-registry/certs with --from (the store is never written).
	CertDir string
	// UI serves the read-only web view under /ui/ (webui); UIRefresh is
	// how often it rescans the registry.
	UI        bool
	UIRefresh time.Duration
	// ShutdownTimeout bounds how long in-flight requests may finish after
	// SIGINT/SIGTERM.
	ShutdownTimeout time.Duration

	storage   registry.StorageFile
	storeDir  string // From without file://
	rootGiven bool   // --root was set explicitly
	streams   IOStreams
	// ready, when set (tests), receives the server once it listens.
	ready func(*registry.Server)
	// logger, when set (tests), replaces slog.Default().
	logger *slog.Logger
}

func newRegistryServeCommand(streams IOStreams) *cobra.Command {
	o := &RegistryServeOptions{streams: streams}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the embedded mirror registry",
		Long: `Serve a container registry for mirrored content.

TLS is on by default: without --tls-cert, a CA and a server certificate are
generated once under ROOT/certs/ (names: this host, localhost, 127.0.0.1,
every local IP and each --hostname), reused on restart, and the commands to
trust the CA are printed. --insecure-http serves plain HTTP instead.

Without --htpasswd anyone who can reach the port may push and delete: the
registry says so at start. Create the file with 'airlock registry htpasswd'.

--storage-config takes a distribution storage section (YAML), e.g. for
several instances over one S3 bucket behind a load balancer:

  storage:
    s3:                  # distribution's s3-aws driver ("s3-aws:" works too)
      bucket: mirror
      region: us-east-1
      regionendpoint: https://s3.example.com
      forcepathstyle: true
    redirect:
      disable: true      # clients cannot reach S3 directly
  http:
    secret: <same random string on every instance>

The http.secret (or $REGISTRY_HTTP_SECRET) must be identical on every
instance so an upload started on one can finish on another.

--from file://DIR serves an airlock store read-only, in place: the OCI
layout that 'airlock mirror' writes, or that 'airlock archive extract'
unpacks from a transfer set. Nothing is copied: tags, digests, index
children, layers, cosign .sig tags and referrers are served from the
store's index.json and blob pool as they are, so clients get the digests
the store holds. Pushes and deletes are refused (405 UNSUPPORTED) and the
store is never written; the generated certificate goes to --cert-dir.
Blobs the index references but the store lacks are named at start; the
rest is served. --from excludes --root and --storage-config.`,
		Example: `  # TLS with a generated CA, password auth, port 5000
  airlock registry serve --root /srv/mirror --htpasswd /srv/mirror/htpasswd --hostname mirror.example.com

  # A throw-away plain-HTTP registry on a random local port
  airlock registry serve --addr 127.0.0.1:0 --root /tmp/reg --insecure-http

  # A read-only replica over the same S3 bucket
  airlock registry serve --storage-config s3.yaml --read-only --htpasswd htpasswd

  # Serve an unpacked transfer set on the disconnected side, without pushing
  airlock archive extract /media/usb file:///srv/store
  airlock registry serve --from file:///srv/store --htpasswd ./htpasswd --hostname mirror.example.com
  skopeo inspect docker://mirror.example.com:5000/mirror/ns/app:v1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.rootGiven = cmd.Flags().Changed("root")
			if err := o.Complete(); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.From, "from", "", "serve this store read-only in place, file://DIR (a mirror's store or an extracted transfer set); excludes --root and --storage-config")
	f.StringVar(&o.CertDir, "cert-dir", "", "directory of the generated CA and certificate (default ROOT/certs; with --from ./airlock-registry/certs)")
	f.StringVar(&o.Addr, "addr", ":5000", "address to listen on (HOST:PORT; port 0 picks a free port and prints it)")
	f.StringVar(&o.Root, "root", "./airlock-registry", "registry directory: filesystem storage and generated certificates (certs/)")
	f.StringVar(&o.Htpasswd, "htpasswd", "", "bcrypt htpasswd file; requests need HTTP basic auth (default: anonymous, read-write)")
	f.StringVar(&o.TLSCert, "tls-cert", "", "PEM server certificate (with --tls-key); default: generate one under ROOT/certs/")
	f.StringVar(&o.TLSKey, "tls-key", "", "PEM private key of --tls-cert")
	f.BoolVar(&o.InsecureHTTP, "insecure-http", false, "serve plain HTTP instead of TLS (clients need --insecure / --tls-verify=false)")
	f.BoolVar(&o.ReadOnly, "read-only", false, "refuse pushes and deletes")
	f.StringVar(&o.StorageConfig, "storage-config", "", "YAML file with a distribution storage section (e.g. s3) replacing filesystem storage under --root")
	f.StringArrayVar(&o.Hostnames, "hostname", nil, "extra DNS name or IP for the generated certificate (repeatable)")
	f.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "how long in-flight requests may finish after SIGINT/SIGTERM")
	f.BoolVar(&o.UI, "ui", true, "serve the read-only web view of releases, catalogs, images and runs at /ui/ (same TLS and users)")
	f.DurationVar(&o.UIRefresh, "ui-refresh", time.Minute, "how often the web view rescans the registry when something was pushed or deleted")
	return cmd
}

// Complete reads the storage configuration and the --from directory.
func (o *RegistryServeOptions) Complete() error {
	if o.From != "" {
		dir, err := fileDir("--from", o.From)
		if err != nil {
			return fmt.Errorf("%w (the store to serve, e.g. file:///srv/store)", err)
		}
		o.storeDir = dir
	}
	if o.CertDir == "" {
		o.CertDir = filepath.Join(o.Root, "certs")
	}
	if o.StorageConfig != "" {
		sf, err := registry.LoadStorageFile(o.StorageConfig)
		if err != nil {
			return fmt.Errorf("--storage-config: %w", err)
		}
		o.storage = sf
	}
	if o.storage.HTTPSecret == "" {
		o.storage.HTTPSecret = os.Getenv("REGISTRY_HTTP_SECRET")
	}
	return nil
}

// Validate rejects contradictory flags.
func (o *RegistryServeOptions) Validate() error {
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together: give both, or neither to use a generated certificate")
	}
	if o.InsecureHTTP && o.TLSCert != "" {
		return errors.New("--insecure-http contradicts --tls-cert: choose plain HTTP or TLS")
	}
	if len(o.Hostnames) > 0 && (o.InsecureHTTP || o.TLSCert != "") {
		return errors.New("--hostname adds names to the generated certificate; it has no effect with --insecure-http or --tls-cert")
	}
	if _, _, err := net.SplitHostPort(o.Addr); err != nil {
		return fmt.Errorf("--addr %q: want HOST:PORT or :PORT (%v)", o.Addr, err)
	}
	if o.Root == "" {
		return errors.New("--root must not be empty")
	}
	if o.From != "" {
		if o.rootGiven {
			return errors.New("--from serves a store in place; --root names a registry directory to serve instead: give one of them")
		}
		if o.StorageConfig != "" {
			return errors.New("--from serves a store in place; --storage-config names other storage to serve instead: give one of them")
		}
		// A store served in place is always read-only (--read-only is
		// accepted and redundant).
		o.ReadOnly = true
		if err := storeview.CheckDir(o.storeDir); err != nil {
			return fmt.Errorf("--from: %w", err)
		}
	}
	if o.Htpasswd != "" {
		if _, err := htpasswd.NewAuthenticator(o.Htpasswd); err != nil {
			return fmt.Errorf("--htpasswd: %w", err)
		}
	}
	return nil
}

// Run serves until the command context is cancelled (SIGINT/SIGTERM).
func (o *RegistryServeOptions) Run(ctx context.Context) error {
	log := o.logger
	if log == nil {
		log = slog.Default()
	}
	out := o.streams.Out
	root := o.Root
	if o.storeDir != "" {
		root = ""
	}
	opts := registry.Options{
		Addr:         o.Addr,
		Root:         root,
		FromStore:    o.storeDir,
		Storage:      o.storage.Storage,
		HtpasswdFile: o.Htpasswd,
		ReadOnly:     o.ReadOnly,
		HTTPSecret:   o.storage.HTTPSecret,
		Logger:       log,
	}
	var view *webui.UI
	if o.UI {
		opts.UI = func(s *registry.Server) http.Handler {
			// New only fails on a broken embedded template, caught by tests.
			v, err := webui.New(webui.Options{
				Scanner:    &regscan.Scanner{Transport: s.InProcessTransport()},
				Refresh:    o.UIRefresh,
				Generation: s.Writes,
				Logger:     log,
			})
			if err != nil {
				panic(err)
			}
			view = v
			return v
		}
	}
	var certs *registry.CertFiles
	switch {
	case o.InsecureHTTP:
	case o.TLSCert != "":
		pair, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey)
		if err != nil {
			return fmt.Errorf("loading --tls-cert %s / --tls-key %s: %w", o.TLSCert, o.TLSKey, err)
		}
		opts.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	default:
		cf, err := registry.EnsureCerts(o.CertDir, certHosts(o.Addr, o.Hostnames))
		if err != nil {
			return err
		}
		pair, err := tls.LoadX509KeyPair(cf.Cert, cf.Key)
		if err != nil {
			return fmt.Errorf("loading generated certificate %s: %w", cf.Cert, err)
		}
		opts.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
		certs = &cf
	}

	srv, err := registry.Start(ctx, opts)
	if err != nil {
		return err
	}
	if root := srv.Root(); root != "" {
		// Tells `registry gc` not to sweep under a running server.
		unlock, err := registry.WriteServeLock(root)
		if err != nil {
			srv.Close()
			return err
		}
		defer unlock()
	}
	fmt.Fprintf(out, "listening on %s\n", srv.Addr())
	host := advertisedHost(srv.Addr(), o.Hostnames)
	fmt.Fprintf(out, "registry: %s://%s (storage: %s)\n", map[bool]string{true: "https", false: "http"}[opts.TLS != nil], host, storageDesc(srv))
	if certs != nil {
		printTrust(out, *certs, host)
	}
	if srv.Anonymous() && srv.Store() != nil {
		log.Warn("NO AUTHENTICATION: anyone who can reach this port can pull every image of the store; use --htpasswd FILE (create it with `airlock registry htpasswd add`)", "addr", srv.Addr())
	} else if srv.Anonymous() {
		log.Warn("NO AUTHENTICATION: anyone who can reach this port can push, overwrite and delete images; use --htpasswd FILE (create it with `airlock registry htpasswd add`)", "addr", srv.Addr())
	}
	if o.InsecureHTTP {
		log.Warn("plain HTTP: credentials and content cross the network unencrypted; clients need --tls-verify=false / --insecure")
	}
	if o.ReadOnly {
		log.Info("read-only: pushes and deletes are refused")
	}
	if l := srv.Store(); l != nil {
		st := l.Stats
		fmt.Fprintf(out, "serving store %s read-only: %d repositories, %d tags, %d manifests, %d blobs (%s), %d referrers\n",
			l.Dir(), st.Repositories, st.Tags, st.Manifests, st.Blobs, report.Bytes(st.Bytes), st.Referrers)
		if len(l.Warnings) > 0 {
			fmt.Fprintf(out, "WARNING: %d problems in the store (see the log); the images they name will fail to pull\n", len(l.Warnings))
		}
	}
	if srv.Root() == "" && o.storage.HTTPSecret == "" && !o.ReadOnly {
		log.Warn("shared storage without an HTTP secret: behind a load balancer, an upload started on one instance fails on another; set http.secret in --storage-config (or REGISTRY_HTTP_SECRET) to the same value on every instance")
	}
	if view != nil {
		go view.Run(ctx)
		fmt.Fprintf(out, "web view: %s://%s/ui/\n", map[bool]string{true: "https", false: "http"}[opts.TLS != nil], host)
	}
	if o.ready != nil {
		o.ready(srv)
	}

	select {
	case <-srv.Done():
		return fmt.Errorf("registry stopped: %w", srv.Err())
	case <-ctx.Done():
	}
	log.Info("shutting down: waiting for in-flight requests", "timeout", o.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), o.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		return fmt.Errorf("shutting down registry: %w", err)
	}
	<-srv.Done()
	return nil
}

func storageDesc(srv *registry.Server) string {
	if l := srv.Store(); l != nil {
		return "store " + l.Dir() + ", read-only"
	}
	if r := srv.Root(); r != "" {
		return r
	}
	return srv.StorageConfig().Type()
}

// certHosts lists the names the generated certificate covers: the host
// name, localhost, loopback, every local IP, the listen host and --hostname.
func certHosts(addr string, extra []string) []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if h, err := os.Hostname(); err == nil && h != "" {
		hosts = append(hosts, h)
	}
	if h, _, err := net.SplitHostPort(addr); err == nil && h != "" {
		if ip := net.ParseIP(h); ip == nil || !ip.IsUnspecified() {
			hosts = append(hosts, h)
		}
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLinkLocalUnicast() {
				hosts = append(hosts, n.IP.String())
			}
		}
	}
	hosts = append(hosts, extra...)
	slices.Sort(hosts)
	return slices.Compact(hosts)
}

// advertisedHost is the HOST:PORT to print for clients: the first
// --hostname, else the listen IP, else this machine's host name.
func advertisedHost(listen string, hostnames []string) string {
	h, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	switch {
	case len(hostnames) > 0:
		h = hostnames[0]
	case h == "" || net.ParseIP(h).IsUnspecified():
		if hn, err := os.Hostname(); err == nil && hn != "" {
			h = hn
		} else {
			h = "127.0.0.1"
		}
	}
	return net.JoinHostPort(h, port)
}

// printTrust prints the CA path and the commands that make podman, skopeo
// and an OpenShift cluster trust it.
func printTrust(w io.Writer, cf registry.CertFiles, host string) {
	ca, err := filepath.Abs(cf.CACert)
	if err != nil {
		ca = cf.CACert
	}
	h, port, _ := net.SplitHostPort(host)
	state := "reused"
	if cf.Created {
		state = "generated"
	}
	fmt.Fprintf(w, `CA certificate (%s): %s
Trust it on a podman/skopeo/crio host:
  sudo mkdir -p /etc/containers/certs.d/%[3]s && sudo cp %[2]s /etc/containers/certs.d/%[3]s/ca.crt
Trust it in an OpenShift cluster (key is HOST..PORT):
  oc create configmap registry-cas -n openshift-config --from-file=%[4]s..%[5]s=%[2]s
  oc patch image.config.openshift.io/cluster --type=merge -p '{"spec":{"additionalTrustedCA":{"name":"registry-cas"}}}'
`, state, ca, host, strings.Trim(h, "[]"), port)
}

// RegistryHtpasswdOptions holds `airlock registry htpasswd` flags.
type RegistryHtpasswdOptions struct {
	File          string
	PasswordStdin bool
	// Cost is the bcrypt cost (hidden flag; tests lower it).
	Cost int

	streams IOStreams
}

func newRegistryHtpasswdCommand(streams IOStreams) *cobra.Command {
	o := &RegistryHtpasswdOptions{streams: streams}
	cmd := &cobra.Command{
		Use:   "htpasswd",
		Short: "Manage the registry's htpasswd (bcrypt) user file",
		Example: `  airlock registry htpasswd add --file ./htpasswd alice
  echo "$PASS" | airlock registry htpasswd add --file ./htpasswd alice --password-stdin
  airlock registry htpasswd list --file ./htpasswd
  airlock registry htpasswd delete --file ./htpasswd alice`,
	}
	cmd.PersistentFlags().StringVar(&o.File, "file", "", "htpasswd file (required; created by add with mode 0600)")
	cmd.PersistentFlags().IntVar(&o.Cost, "bcrypt-cost", bcrypt.DefaultCost, "bcrypt cost")
	_ = cmd.PersistentFlags().MarkHidden("bcrypt-cost")

	add := &cobra.Command{
		Use:   "add --file FILE USER",
		Short: "Add a user or change its password",
		Example: `  airlock registry htpasswd add --file ./htpasswd alice
  printf '%s' "$PASS" | airlock registry htpasswd add --file ./htpasswd alice --password-stdin`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return o.Add(args[0]) },
	}
	add.Flags().BoolVar(&o.PasswordStdin, "password-stdin", false, "read the password from stdin (first line) instead of prompting")
	del := &cobra.Command{
		Use:     "delete --file FILE USER",
		Aliases: []string{"rm"},
		Short:   "Delete a user",
		Example: `  airlock registry htpasswd delete --file ./htpasswd alice`,
		Args:    cobra.ExactArgs(1),
		RunE:    func(cmd *cobra.Command, args []string) error { return o.Delete(args[0]) },
	}
	list := &cobra.Command{
		Use:     "list --file FILE",
		Aliases: []string{"ls"},
		Short:   "List users",
		Example: `  airlock registry htpasswd list --file ./htpasswd`,
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, args []string) error { return o.List() },
	}
	cmd.AddCommand(add, del, list)
	return cmd
}

func (o *RegistryHtpasswdOptions) validate() error {
	if o.File == "" {
		return errors.New("--file is required: the htpasswd file to edit")
	}
	if o.Cost < bcrypt.MinCost || o.Cost > bcrypt.MaxCost {
		return fmt.Errorf("--bcrypt-cost %d: want %d..%d", o.Cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	return nil
}

// Add sets user's password, reading it from stdin or a terminal prompt.
func (o *RegistryHtpasswdOptions) Add(user string) error {
	if err := o.validate(); err != nil {
		return err
	}
	if err := htpasswd.ValidateUser(user); err != nil {
		return err
	}
	f, err := htpasswd.Read(o.File)
	if err != nil {
		return err
	}
	pass, err := o.readPassword(user)
	if err != nil {
		return err
	}
	replaced, err := f.Set(user, pass, o.Cost)
	if err != nil {
		return err
	}
	if err := f.Write(); err != nil {
		return err
	}
	verb := "added"
	if replaced {
		verb = "updated password of"
	}
	fmt.Fprintf(o.streams.Out, "%s user %s in %s\n", verb, user, o.File)
	return nil
}

func (o *RegistryHtpasswdOptions) readPassword(user string) (string, error) {
	if o.PasswordStdin {
		r := bufio.NewReader(o.streams.In)
		line, err := r.ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("reading password from stdin: %w", err)
		}
		pass := strings.TrimRight(line, "\r\n")
		if pass == "" {
			return "", errors.New("--password-stdin: stdin was empty; pipe the password in, e.g. printf '%s' \"$PASS\" | airlock registry htpasswd add ...")
		}
		return pass, nil
	}
	in, ok := o.streams.In.(*os.File)
	if !ok || !term.IsTerminal(int(in.Fd())) {
		return "", errors.New("no terminal to prompt for the password: use --password-stdin")
	}
	fmt.Fprintf(o.streams.ErrOut, "Password for %s: ", user)
	p1, err := term.ReadPassword(int(in.Fd()))
	fmt.Fprintln(o.streams.ErrOut)
	if err != nil {
		return "", fmt.Errorf("reading password: %w", err)
	}
	fmt.Fprintf(o.streams.ErrOut, "Repeat password: ")
	p2, err := term.ReadPassword(int(in.Fd()))
	fmt.Fprintln(o.streams.ErrOut)
	if err != nil {
		return "", fmt.Errorf("reading password: %w", err)
	}
	if string(p1) != string(p2) {
		return "", errors.New("passwords do not match; nothing written")
	}
	if len(p1) == 0 {
		return "", errors.New("empty password; nothing written")
	}
	return string(p1), nil
}

// Delete removes user; a missing user is an error so typos are noticed.
func (o *RegistryHtpasswdOptions) Delete(user string) error {
	if err := o.validate(); err != nil {
		return err
	}
	if _, err := os.Stat(o.File); err != nil {
		return fmt.Errorf("htpasswd file %s: %w", o.File, err)
	}
	f, err := htpasswd.Read(o.File)
	if err != nil {
		return err
	}
	if !f.Delete(user) {
		return fmt.Errorf("user %q is not in %s (users: %s)", user, o.File, strings.Join(f.Users(), ", "))
	}
	if err := f.Write(); err != nil {
		return err
	}
	fmt.Fprintf(o.streams.Out, "deleted user %s from %s\n", user, o.File)
	return nil
}

// List prints the users, one per line.
func (o *RegistryHtpasswdOptions) List() error {
	if err := o.validate(); err != nil {
		return err
	}
	if _, err := os.Stat(o.File); err != nil {
		return fmt.Errorf("htpasswd file %s: %w", o.File, err)
	}
	f, err := htpasswd.Read(o.File)
	if err != nil {
		return err
	}
	for _, u := range f.Users() {
		fmt.Fprintln(o.streams.Out, u)
	}
	return nil
}

// RegistryGCOptions holds `airlock registry gc` flags.
type RegistryGCOptions struct {
	Root           string
	StorageConfig  string
	DryRun         bool
	DeleteUntagged bool
	Force          bool

	storage   registry.StorageFile
	storeDir  string // From without file://
	rootGiven bool   // --root was set explicitly
	streams   IOStreams
}

func newRegistryGCCommand(streams IOStreams) *cobra.Command {
	o := &RegistryGCOptions{streams: streams}
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Delete blobs no manifest references (distribution's garbage collector)",
		Long: `Run distribution's mark-and-sweep garbage collector over the registry
storage: blobs no manifest references are deleted, with the per-repository
links to them.

Stop 'airlock registry serve' on this storage first: a push in flight has
uploaded blobs no manifest references yet, and gc would delete them. gc
refuses to run while a serve process holds ROOT (see --force).

--delete-untagged also deletes manifests that no tag points to and no
tagged index references. Mirrors made by digest (oc-mirror, airlock's
digest-only images) are untagged: do not use it on such a registry.
Signatures, SBOMs and other referrers of a manifest that stays are kept.`,
		Example: `  # See what would be removed
  airlock registry gc --root ./airlock-registry --dry-run

  # Remove unreferenced blobs
  airlock registry gc --root ./airlock-registry`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Root, "root", "./airlock-registry", "registry directory (filesystem storage)")
	f.StringVar(&o.StorageConfig, "storage-config", "", "YAML storage section (as for serve) instead of --root")
	f.BoolVar(&o.DryRun, "dry-run", false, "report what would be deleted, delete nothing")
	f.BoolVar(&o.DeleteUntagged, "delete-untagged", false, "also delete manifests no tag points to (destroys digest-only mirrors)")
	f.BoolVar(&o.Force, "force", false, "run even though a serve process seems to be using --root")
	return cmd
}

// Complete reads the storage configuration and checks no server runs.
func (o *RegistryGCOptions) Complete() error {
	if o.StorageConfig != "" {
		sf, err := registry.LoadStorageFile(o.StorageConfig)
		if err != nil {
			return fmt.Errorf("--storage-config: %w", err)
		}
		o.storage = sf
		return nil
	}
	if o.Force || o.DryRun {
		return nil
	}
	return notServed(o.Root)
}

// storageFlag reads --storage-config FILE ("" means filesystem storage).
func storageFlag(path string) (registry.StorageFile, error) {
	if path == "" {
		return registry.StorageFile{}, nil
	}
	sf, err := registry.LoadStorageFile(path)
	if err != nil {
		return sf, fmt.Errorf("--storage-config: %w", err)
	}
	return sf, nil
}

// notServed refuses a storage directory an 'airlock registry serve' process
// holds: garbage collection beside a live registry would delete blobs a
// push in flight has uploaded but not yet referenced.
func notServed(root string) error {
	if pid := registry.ServeLockHolder(root); pid != 0 {
		return fmt.Errorf("%s is being served by process %d (airlock registry serve): stop it first, or use --force if that is wrong", root, pid)
	}
	return nil
}

// Run collects garbage and prints a summary.
func (o *RegistryGCOptions) Run(ctx context.Context) error {
	res, err := registry.GC(ctx, o.Root, o.storage.Storage, registry.GCOptions{DryRun: o.DryRun, DeleteUntagged: o.DeleteUntagged, Logger: slog.Default()})
	if err != nil {
		return err
	}
	verb := "deleted"
	if o.DryRun {
		verb = "would delete"
		for _, d := range res.BlobDigests {
			fmt.Fprintf(o.streams.Out, "blob %s\n", d)
		}
	}
	fmt.Fprintf(o.streams.Out, "%s %d blobs (%s), %d untagged manifests, %d repository blob links\n",
		verb, res.Blobs, report.Bytes(res.BlobBytes), res.Manifests, res.LayerLinks)
	if res.ReferrersPruned > 0 {
		fmt.Fprintf(o.streams.Out, "removed %d referrers-index entries of deleted manifests\n", res.ReferrersPruned)
	}
	return nil
}
