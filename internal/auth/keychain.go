// Package auth finds registry credentials the way podman, skopeo and docker
// do, so that one `podman login` / `docker login` / `airlock login` works for
// every airlock command.
//
// Files are searched in order, the first one holding a credential for the
// registry wins:
//
//  1. Options.AuthFile (--authfile/-a): when given, ONLY this file is read.
//  2. $REGISTRY_AUTH_FILE
//  3. ${XDG_RUNTIME_DIR}/containers/auth.json (podman's primary file)
//  4. ${XDG_CONFIG_HOME:-~/.config}/containers/auth.json
//  5. ${DOCKER_CONFIG:-~/.docker}/config.json
//  6. ~/.dockercfg (docker's legacy format, a bare map of keys)
//
// Those files are one source of credentials, "containers-auth.json"; as in
// podman, the top-level credential-helpers list of registries.conf may put
// docker-credential-NAME helpers before or after them (default: the files
// only).
//
// Inside one file, keys are matched most specific first:
// host[:port]/ns/sub/repo, host[:port]/ns/sub, host[:port]/ns, host[:port].
// go-containerregistry's DefaultKeychain is not used because it picks among
// namespace-scoped keys in random order, so a pull could use the wrong
// account depending on map iteration.
//
// Credentials never appear in logs or in error messages of this package.
package auth

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
)

// Options selects where credentials come from.
type Options struct {
	// AuthFile, when set, is the only auth file read (like podman's --authfile).
	AuthFile string
	// RegistriesConf is the registries.conf whose top-level
	// credential-helpers list orders the credential sources, and
	// RegistriesConfDir its drop-in directory. When both are empty:
	// $CONTAINERS_REGISTRIES_CONF, else ~/.config/containers/registries.conf
	// if it exists, else /etc/containers/registries.conf (with ".d").
	RegistriesConf    string
	RegistriesConfDir string
}

// Credential is one resolved credential. The zero value means anonymous.
type Credential struct {
	Username      string
	Password      string
	IdentityToken string // OAuth2 refresh token (docker "identitytoken")
}

// IsAnonymous reports whether c carries nothing to authenticate with.
func (c Credential) IsAnonymous() bool {
	return c.Username == "" && c.Password == "" && c.IdentityToken == ""
}

// Keychain is an authn.Keychain reading podman/docker credential files and
// credential helpers. It is safe for concurrent use; answers are cached for
// the life of the keychain because credential helpers are slow executables.
type Keychain struct {
	files   []authFile
	helpers credentialHelpers
	// helpersErr is a registries.conf that could not be read; reported on
	// lookup so NewKeychain stays error-free for callers.
	helpersErr error

	mu    sync.Mutex
	cache map[string]lookupResult
}

type lookupResult struct {
	cred   Credential
	source string
	err    error
}

// authFile is one candidate file; legacy is the ~/.dockercfg format.
type authFile struct {
	path   string
	legacy bool
}

var _ authn.Keychain = (*Keychain)(nil)

// NewKeychain returns a keychain searching the files described in the
// package documentation. Environment variables are read now, once.
func NewKeychain(opts Options) *Keychain {
	k := &Keychain{files: searchFiles(opts), cache: map[string]lookupResult{}}
	conf, dir := opts.RegistriesConf, opts.RegistriesConfDir
	if conf == "" && dir == "" {
		conf, dir = defaultRegistriesConf()
	}
	k.helpers, k.helpersErr = loadCredentialHelpers(conf, dir)
	return k
}

// SearchPaths returns the credential files NewKeychain reads, in order.
func SearchPaths(opts Options) []string {
	var out []string
	for _, f := range searchFiles(opts) {
		out = append(out, f.path)
	}
	return out
}

func searchFiles(opts Options) []authFile {
	if opts.AuthFile != "" {
		return []authFile{{path: opts.AuthFile}}
	}
	var files []authFile
	if p := os.Getenv("REGISTRY_AUTH_FILE"); p != "" {
		files = append(files, authFile{path: p})
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		files = append(files, authFile{path: filepath.Join(d, "containers", "auth.json")})
	} else {
		files = append(files, authFile{path: runtimeDirFallback()})
	}
	home, _ := os.UserHomeDir()
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" {
		files = append(files, authFile{path: filepath.Join(d, "containers", "auth.json")})
	} else if home != "" {
		files = append(files, authFile{path: filepath.Join(home, ".config", "containers", "auth.json")})
	}
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		files = append(files, authFile{path: filepath.Join(d, "config.json")})
	} else if home != "" {
		files = append(files, authFile{path: filepath.Join(home, ".docker", "config.json")})
	}
	if home != "" {
		files = append(files, authFile{path: filepath.Join(home, ".dockercfg"), legacy: true})
	}
	return files
}

// runtimeDirFallback is where podman keeps auth.json when XDG_RUNTIME_DIR is
// unset (typically root in CI or a container): /run/containers/$UID.
func runtimeDirFallback() string {
	return filepath.Join("/run", "containers", strconv.Itoa(os.Getuid()), "auth.json")
}

// DefaultAuthFile is the file `airlock login` writes when --authfile is not
// given: $REGISTRY_AUTH_FILE, else podman's primary
// ${XDG_RUNTIME_DIR}/containers/auth.json (or /run/containers/$UID/auth.json).
func DefaultAuthFile() string {
	if p := os.Getenv("REGISTRY_AUTH_FILE"); p != "" {
		return p
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "containers", "auth.json")
	}
	return runtimeDirFallback()
}

// Resolve implements authn.Keychain. res.String() is a registry
// ("host[:port]") or a repository ("host[:port]/path/repo").
func (k *Keychain) Resolve(res authn.Resource) (authn.Authenticator, error) {
	cred, _, err := k.Lookup(res.String())
	if err != nil {
		return nil, err
	}
	if cred.IsAnonymous() {
		return authn.Anonymous, nil
	}
	return authn.FromConfig(authn.AuthConfig{
		Username:      cred.Username,
		Password:      cred.Password,
		IdentityToken: cred.IdentityToken,
	}), nil
}

// Lookup finds the credential for target, a registry "host[:port]" or a
// repository "host[:port]/ns/repo" (an optional docker:// prefix, tag or
// digest is ignored). It returns the zero Credential when none is
// configured, and where the credential came from (a file path, or
// "docker-credential-NAME") for logs.
func (k *Keychain) Lookup(target string) (Credential, string, error) {
	key := canonicalTarget(target)
	k.mu.Lock()
	if r, ok := k.cache[key]; ok {
		k.mu.Unlock()
		return r.cred, r.source, r.err
	}
	k.mu.Unlock()

	cred, source, err := k.lookup(key)

	k.mu.Lock()
	k.cache[key] = lookupResult{cred, source, err}
	k.mu.Unlock()
	if err == nil && !cred.IsAnonymous() {
		slog.Debug("using registry credentials", "target", key, "source", source)
	}
	return cred, source, err
}

// lookup asks each credential source in registries.conf order: the auth
// files (AuthFilesHelper), or a docker-credential-NAME helper. As in
// podman, a failing source does not hide a credential a later one has; its
// error is reported only when no source has one.
func (k *Keychain) lookup(target string) (Credential, string, error) {
	if k.helpersErr != nil {
		return Credential{}, "", k.helpersErr
	}
	host, _, _ := strings.Cut(target, "/")
	var errs []error
	for _, h := range k.helpers.helpers {
		if h == AuthFilesHelper {
			cred, source, found, err := k.lookupFiles(target)
			if err != nil {
				errs = append(errs, err)
			} else if found {
				return cred, source, nil
			}
			continue
		}
		cred, found, err := runHelper(h, helperServerURL(host), "registries configuration "+k.helpers.source, true)
		if err != nil {
			errs = append(errs, err)
		} else if found {
			return cred, "docker-credential-" + h, nil
		}
	}
	return Credential{}, "", errors.Join(errs...)
}

// lookupFiles searches the auth files in order.
func (k *Keychain) lookupFiles(target string) (Credential, string, bool, error) {
	for _, f := range k.files {
		cfg, err := readConfigFile(f)
		if err != nil {
			return Credential{}, "", false, err
		}
		if cfg == nil {
			continue
		}
		cred, source, found, err := cfg.find(target)
		if err != nil || found {
			return cred, source, found, err
		}
	}
	return Credential{}, "", false, nil
}

// canonicalTarget strips a transport prefix, tag and digest and spells
// Docker Hub as "docker.io", the form podman writes in auth.json.
func canonicalTarget(s string) string {
	s = strings.TrimPrefix(s, "docker://")
	if i := strings.Index(s, "@"); i >= 0 {
		s = s[:i]
	}
	if i := strings.LastIndex(s, ":"); i >= 0 && i > strings.LastIndex(s, "/") && strings.Contains(s, "/") {
		s = s[:i]
	}
	s = strings.TrimSuffix(s, "/")
	host, rest, hasRest := strings.Cut(s, "/")
	host = canonicalRegistry(host)
	if hasRest {
		return host + "/" + rest
	}
	return host
}

// canonicalRegistry maps the spellings of Docker Hub to "docker.io".
func canonicalRegistry(host string) string {
	switch host {
	case "docker.io", "index.docker.io", "registry-1.docker.io":
		return "docker.io"
	}
	return host
}
