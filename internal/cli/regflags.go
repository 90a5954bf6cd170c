package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/pflag"

	"github.com/airlock-mirror/airlock/internal/auth"
	"github.com/airlock-mirror/airlock/internal/engine"
	"github.com/airlock-mirror/airlock/internal/sigpolicy"
)

// RegistryFlags are the flags of every command that talks to registries:
// where credentials come from and how TLS is verified. Embed it in a
// command's Options and call AddFlags on the command's flag set.
type RegistryFlags struct {
	// AuthFile, when set, is the only credentials file read (-a/--authfile).
	AuthFile string
	// Insecure allows plain HTTP and skips TLS verification.
	Insecure bool
	// CAFile holds extra PEM CA certificates trusted on top of the system
	// pool; a directory means every *.crt in it (podman's certs.d layout).
	CAFile string
	// BlobCache is the file remembering which destination repositories hold
	// which blobs across runs (engine.Options.BlobCacheFile), so a mirror
	// restarted after an interruption mounts what the earlier run uploaded
	// instead of uploading it again; "" disables it (--blob-cache).
	BlobCache string

	// Signatures, NoReferrers and ReferrersFilter are the signature flags
	// of the commands that copy (AddSignatureFlags).
	Signatures      string
	NoReferrers     bool
	ReferrersFilter []string
	// Policy and RegistriesD are --policy and --registries.d: signatures
	// checked before an image is copied.
	Policy      string
	RegistriesD string
}

// AddSignatureFlags registers --signatures, --no-referrers and
// --referrers-filter (commands that copy images).
func (f *RegistryFlags) AddSignatureFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.Signatures, "signatures", string(engine.SignaturesBestEffort),
		"signatures of each image: best-effort copies every cosign signature/attestation/SBOM (sha256-<hex>.sig/.att/.sbom) and OCI referrer found and lists unsigned images; strict fails an unsigned image; remove copies none")
	fs.BoolVar(&f.NoReferrers, "no-referrers", false, "do not copy OCI 1.1 referrers (cosign tag-style signatures are still copied)")
	fs.StringSliceVar(&f.ReferrersFilter, "referrers-filter", nil, "copy only referrers of these artifact types (artifactType=TYPE or TYPE, repeatable)")
	fs.StringVar(&f.Policy, "policy", "", "containers-policy.json: every image must satisfy its scope's requirements (sigstoreSigned with public keys, signedBy OpenPGP keys, reject, insecureAcceptAnything) before it is copied; one that does not is named and not mirrored")
	fs.StringVar(&f.RegistriesD, "registries.d", "", "containers-registries.d directory: lookaside locations of the OpenPGP signatures --policy signedBy requirements read")
}

// BlobCacheEnv names the environment variable that sets the default of
// --blob-cache.
const BlobCacheEnv = "AIRLOCK_BLOB_CACHE"

// defaultBlobCacheFile is where --blob-cache points by default:
// blob-locations.json in airlock's directory of the user cache directory
// ($XDG_CACHE_HOME or ~/.cache on Linux), unless the environment variable
// AIRLOCK_BLOB_CACHE names another file ("" disables the cache; test
// packages point it at a temporary directory in their TestMain). It is ""
// when there is no user cache directory.
func defaultBlobCacheFile() string {
	if v, ok := os.LookupEnv(BlobCacheEnv); ok {
		return v
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "airlock", "blob-locations.json")
}

// AddFlags registers -a/--authfile, --insecure, --ca-file and --blob-cache.
func (f *RegistryFlags) AddFlags(fs *pflag.FlagSet) {
	fs.StringVarP(&f.AuthFile, "authfile", "a", "",
		"registry credentials file (podman auth.json or docker config.json); when set, the only file read "+
			"(default: $REGISTRY_AUTH_FILE, ${XDG_RUNTIME_DIR}/containers/auth.json, ~/.config/containers/auth.json, ~/.docker/config.json)")
	fs.BoolVar(&f.Insecure, "insecure", false,
		"allow plain HTTP and skip TLS certificate verification (only for registries you trust; prefer --ca-file)")
	fs.StringVar(&f.CAFile, "ca-file", "",
		"PEM file of CA certificates to trust in addition to the system ones (e.g. a mirror registry's ROOT/certs/ca.crt), or a certs.d directory whose *.crt files are read")
	fs.StringVar(&f.BlobCache, "blob-cache", defaultBlobCacheFile(),
		"file remembering which destination repositories hold which blobs, so a run restarted after an interruption mounts "+
			`them instead of uploading them again (may be shared by concurrent runs); $AIRLOCK_BLOB_CACHE sets the default; --blob-cache="" disables it`)
}

// Keychain returns the credential keychain for these flags.
func (f *RegistryFlags) Keychain() (authn.Keychain, error) {
	if f.AuthFile != "" {
		// A typo in --authfile would otherwise silently mean "anonymous".
		if _, err := os.Stat(f.AuthFile); err != nil {
			return nil, fmt.Errorf("--authfile: %w", err)
		}
	}
	return auth.NewKeychain(auth.Options{AuthFile: f.AuthFile}), nil
}

// RootCAs returns the system certificate pool plus the certificates of
// --ca-file.
func (f *RegistryFlags) RootCAs() (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if f.CAFile == "" {
		return pool, nil
	}
	files := []string{f.CAFile}
	if fi, err := os.Stat(f.CAFile); err == nil && fi.IsDir() {
		// A certs.d directory as podman reads it: every *.crt in it.
		files, err = filepath.Glob(filepath.Join(f.CAFile, "*.crt"))
		if err != nil || len(files) == 0 {
			return nil, fmt.Errorf("--ca-file %s: directory holds no *.crt file", f.CAFile)
		}
	}
	for _, file := range files {
		pem, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca-file %s: no PEM certificate found (want a file with -----BEGIN CERTIFICATE----- blocks)", file)
		}
	}
	return pool, nil
}

// Transport returns an HTTP transport configured from the flags: the
// trusted CAs, TLS verification off with --insecure, and connection limits
// sized for many parallel blob copies to the same registry.
func (f *RegistryFlags) Transport() (http.RoundTripper, error) {
	pool, err := f.RootCAs()
	if err != nil {
		return nil, err
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSClientConfig = &tls.Config{
		RootCAs:            pool,
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: f.Insecure, //nolint:gosec // only with --insecure, which the user asked for
	}
	t.TLSHandshakeTimeout = 15 * time.Second
	// A registry that accepted the connection but never answers must not
	// hang a run; large blob bodies are not affected (this is time to headers).
	t.ResponseHeaderTimeout = 2 * time.Minute
	t.ExpectContinueTimeout = 1 * time.Second
	t.IdleConnTimeout = 90 * time.Second
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 64
	t.ForceAttemptHTTP2 = true
	return t, nil
}

// NameOptions are the go-containerregistry reference-parsing options for
// the flags: with --insecure, references may be reached over plain HTTP.
func (f *RegistryFlags) NameOptions() []name.Option {
	if f.Insecure {
		return []name.Option{name.Insecure}
	}
	return nil
}

// RemoteOptions bundles keychain, transport and ctx as go-containerregistry
// remote options, the usual way a command uses these flags.
func (f *RegistryFlags) RemoteOptions(ctx context.Context) ([]remote.Option, error) {
	kc, err := f.Keychain()
	if err != nil {
		return nil, err
	}
	tr, err := f.Transport()
	if err != nil {
		return nil, err
	}
	return []remote.Option{remote.WithAuthFromKeychain(kc), remote.WithTransport(tr), remote.WithContext(ctx)}, nil
}

// EngineOptions is the copy engine's configuration for these flags:
// keychain, TLS transport and --insecure, with file:// references in
// storeDir. Commands add their own knobs (parallelism, filters, dry run).
func (f *RegistryFlags) EngineOptions(storeDir string) (engine.Options, error) {
	kc, err := f.Keychain()
	if err != nil {
		return engine.Options{}, err
	}
	tr, err := f.Transport()
	if err != nil {
		return engine.Options{}, err
	}
	sm, err := engine.ParseSignatureMode(f.Signatures)
	if err != nil {
		return engine.Options{}, fmt.Errorf("--signatures: %w", err)
	}
	var filter []string
	for _, t := range f.ReferrersFilter {
		filter = append(filter, strings.TrimPrefix(t, "artifactType="))
	}
	policy, err := f.loadPolicy()
	if err != nil {
		return engine.Options{}, err
	}
	return engine.Options{Keychain: kc, Transport: tr, Insecure: f.Insecure, StoreDir: storeDir, BlobCacheFile: f.BlobCache,
		Signatures: sm, NoReferrers: f.NoReferrers, ReferrersFilter: filter, Policy: policy}, nil
}

// loadPolicy reads --policy (and --registries.d); nil without --policy.
func (f *RegistryFlags) loadPolicy() (*sigpolicy.Policy, error) {
	if f.Policy == "" {
		if f.RegistriesD != "" {
			return nil, fmt.Errorf("--registries.d is read for --policy signedBy requirements: give --policy too")
		}
		return nil, nil
	}
	p, err := sigpolicy.Load(f.Policy)
	if err != nil {
		return nil, fmt.Errorf("--policy: %w", err)
	}
	if f.RegistriesD != "" {
		if p.Lookaside, err = sigpolicy.LoadRegistriesD(f.RegistriesD); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// NewEngine is a copy engine configured with EngineOptions(storeDir).
func (f *RegistryFlags) NewEngine(storeDir string) (*engine.Engine, error) {
	opts, err := f.EngineOptions(storeDir)
	if err != nil {
		return nil, err
	}
	eng, err := engine.New(opts)
	if err != nil {
		return nil, fmt.Errorf("configuring the copy engine: %w", err)
	}
	return eng, nil
}
