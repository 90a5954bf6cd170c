package auth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlock-mirror/airlock/internal/testutil/shared"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// sharedAuthTestdata is containers/image's auth-testdata, shared by the
// project at ../shared/testdata relative to the module root.
func sharedAuthTestdata(t *testing.T) string {
	t.Helper()
	dir := shared.Path(t, "config", "containers-image", "auth-testdata")
	shared.Path(t, "config", "containers-image", "auth-testdata", "full.json")
	return dir
}

// isolateEnv points every location the keychain reads at empty temporary
// directories, so the developer's own credentials never leak into a test.
func isolateEnv(t *testing.T) (home string) {
	t.Helper()
	home = t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_RUNTIME_DIR", filepath.Join(home, "run"))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, "config"))
	t.Setenv("DOCKER_CONFIG", filepath.Join(home, "docker"))
	t.Setenv("REGISTRY_AUTH_FILE", "")
	// Not the machine's /etc/containers/registries.conf.
	t.Setenv("CONTAINERS_REGISTRIES_CONF", filepath.Join(home, "no-registries.conf"))
	return home
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLookupAuthTestdata(t *testing.T) {
	td := sharedAuthTestdata(t)
	anon := Credential{}
	cases := []struct {
		file   string
		target string
		want   Credential
	}{
		{"example.json", "example.org", Credential{Username: "example", Password: "org"}},
		{"example.json", "example.org/ns/repo", Credential{Username: "example", Password: "org"}},
		{"example.json", "registry.example.org", anon},
		{"example.json", "example.org:5000", anon},
		{"empty.json", "localhost:5000", anon},

		{"full.json", "docker.io", Credential{Username: "docker", Password: "io"}},
		// go-containerregistry spells Docker Hub index.docker.io; the exact
		// "docker.io" key podman writes still wins.
		{"full.json", "index.docker.io/library/busybox", Credential{Username: "docker", Password: "io"}},
		{"full.json", "normalize.example.org", Credential{Username: "normalize", Password: "example"}},
		{"full.json", "normalize.example.org/a/b", Credential{Username: "normalize", Password: "example"}},
		{"full.json", "localhost", Credential{Username: "local", Password: "host"}},
		{"full.json", "localhost:5000/repo", Credential{Username: "local", Password: "host-5000"}},
		{"full.json", "10.10.30.45", Credential{Username: "10.10", Password: "30.45"}},
		{"full.json", "10.10.30.45:5000", Credential{Username: "10.10", Password: "30.45-5000"}},
		{"full.json", "10.10.30.46", anon},

		{"abnormal.json", "docker.io", Credential{Username: "index", Password: "docker.io"}},
		{"abnormal.json", "index.docker.io/library/alpine", Credential{Username: "index", Password: "docker.io"}},
		{"abnormal.json", "example.org", Credential{Username: "example", Password: "org"}},
		{"abnormal.json", "127.0.0.1:5000", Credential{Username: "127.0", Password: "0.1-5000"}},
		{"abnormal.json", "localhost", Credential{Username: "local", Password: "host"}},
		{"abnormal.json", "localhost:5000", Credential{Username: "local", Password: "host-5000"}},
		{"abnormal.json", "localhost:5001/x/y", Credential{Username: "local", Password: "host-5001"}},
		{"abnormal.json", "127.0.0.1", anon},

		{"example_identitytoken.json", "example.org", Credential{Username: "00000000-0000-0000-0000-000000000000", IdentityToken: "some very long identity token"}},

		{"refpath.json", "example.org/repo/image", Credential{Username: "example", Password: "org"}},
		{"refpath.json", "example.org/repo", Credential{Username: "example", Password: "org"}},
		{"refpath.json", "example.org/image", Credential{Username: "local", Password: "host"}},
		{"refpath.json", "example.org/repository", Credential{Username: "local", Password: "host"}},
		{"refpath.json", "docker.io/library/busybox", Credential{Username: "library", Password: "busybox"}},
		{"refpath.json", "index.docker.io/library/busybox:1.36", Credential{Username: "library", Password: "busybox"}},
		{"refpath.json", "docker.io/library/notbusybox", Credential{Username: "library", Password: "other"}},
		{"refpath.json", "docker.io/vendor/product", Credential{Username: "first", Password: "level"}},
		{"refpath.json", "docker.io/vendor", Credential{Username: "first", Password: "level"}},
		{"refpath.json", "docker.io/other-vendor/other-product", Credential{Username: "top", Password: "level"}},
		{"refpath.json", "docker://docker.io/library/busybox@sha256:" + strings.Repeat("a", 64), Credential{Username: "library", Password: "busybox"}},
	}
	for _, tc := range cases {
		t.Run(tc.file+"/"+tc.target, func(t *testing.T) {
			isolateEnv(t)
			kc := NewKeychain(Options{AuthFile: filepath.Join(td, tc.file)})
			got, _, err := kc.Lookup(tc.target)
			if err != nil {
				t.Fatalf("Lookup(%q): %v", tc.target, err)
			}
			if got != tc.want {
				t.Fatalf("Lookup(%q) = %+v, want %+v", tc.target, got, tc.want)
			}
		})
	}
}

// legacy.json is docker's old ~/.dockercfg format: a bare map whose URL keys
// are registry-wide.
func TestLookupLegacyDockercfg(t *testing.T) {
	td := sharedAuthTestdata(t)
	home := isolateEnv(t)
	copyFile(t, filepath.Join(td, "legacy.json"), filepath.Join(home, ".dockercfg"))
	kc := NewKeychain(Options{})
	for target, want := range map[string]Credential{
		"localhost":                      {Username: "local", Password: "host-legacy"},
		"docker.io":                      {Username: "docker", Password: "io-legacy"},
		"index.docker.io/library/ubuntu": {Username: "docker", Password: "io-legacy"},
		"quay.io":                        {},
	} {
		got, _, err := kc.Lookup(target)
		if err != nil {
			t.Fatalf("Lookup(%q): %v", target, err)
		}
		if got != want {
			t.Errorf("Lookup(%q) = %+v, want %+v", target, got, want)
		}
	}
}

// TestSearchOrder puts a different credential for the same registry in
// every location and removes them one by one, checking the next in line
// answers each time.
func TestSearchOrder(t *testing.T) {
	home := isolateEnv(t)
	write := func(path, user string) {
		t.Helper()
		if err := SetCredential(path, "reg.example:5000", user, "pw-"+user); err != nil {
			t.Fatal(err)
		}
	}
	regAuth := filepath.Join(home, "registry-auth.json")
	runtimeAuth := filepath.Join(home, "run", "containers", "auth.json")
	configAuth := filepath.Join(home, "config", "containers", "auth.json")
	dockerAuth := filepath.Join(home, "docker", "config.json")
	order := []struct{ path, user string }{
		{regAuth, "registry-auth-file"},
		{runtimeAuth, "xdg-runtime"},
		{configAuth, "xdg-config"},
		{dockerAuth, "docker-config"},
	}
	for _, o := range order {
		write(o.path, o.user)
	}
	t.Setenv("REGISTRY_AUTH_FILE", regAuth)

	for _, o := range order {
		kc := NewKeychain(Options{})
		got, source, err := kc.Lookup("reg.example:5000/a/b")
		if err != nil {
			t.Fatal(err)
		}
		if got.Username != o.user || got.Password != "pw-"+o.user || source != o.path {
			t.Fatalf("got user %q from %s, want %q from %s", got.Username, source, o.user, o.path)
		}
		if err := os.Remove(o.path); err != nil {
			t.Fatal(err)
		}
	}
	got, _, err := NewKeychain(Options{}).Lookup("reg.example:5000")
	if err != nil || !got.IsAnonymous() {
		t.Fatalf("with every file removed: got %+v, %v; want anonymous", got, err)
	}

	// An explicit --authfile is the only file read, even when it has no entry.
	write(dockerAuth, "docker-config")
	explicit := filepath.Join(home, "explicit.json")
	write(explicit, "explicit")
	kc := NewKeychain(Options{AuthFile: explicit})
	if got, _, _ := kc.Lookup("reg.example:5000"); got.Username != "explicit" {
		t.Fatalf("--authfile: got %q, want explicit", got.Username)
	}
	if got, _, _ := kc.Lookup("other.example"); !got.IsAnonymous() {
		t.Fatalf("--authfile must not fall back to other files, got %+v", got)
	}
	if paths := SearchPaths(Options{AuthFile: explicit}); len(paths) != 1 || paths[0] != explicit {
		t.Fatalf("SearchPaths with AuthFile = %v", paths)
	}
}

// writeHelper installs a docker-credential-NAME executable in a PATH
// directory. It speaks the helper protocol: server URL on stdin, JSON out.
func writeHelper(t *testing.T, dir, name string) {
	t.Helper()
	script := `#!/bin/sh
[ "$1" = get ] || { echo "unsupported $1"; exit 1; }
server=$(cat)
case "$server" in
  registry-no-creds.com) echo "credentials not found in native keychain"; exit 1 ;;
  registry-a.com) echo '{"ServerURL":"registry-a.com","Username":"foo","Secret":"bar"}' ;;
  registry-b.com) echo '{"ServerURL":"registry-b.com","Username":"<token>","Secret":"fizzbuzz"}' ;;
  helper.example) echo '{"ServerURL":"helper.example","Username":"hu","Secret":"hs"}' ;;
  token.example) echo '{"ServerURL":"token.example","Username":"<token>","Secret":"refresh-123"}' ;;
  https://index.docker.io/v1/) echo '{"ServerURL":"x","Username":"hub","Secret":"hubpw"}' ;;
  store.example) echo '{"ServerURL":"store.example","Username":"su","Secret":"ss"}' ;;
  broken.example) echo "keychain locked" >&2; exit 3 ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
`
	if err := os.WriteFile(filepath.Join(dir, "docker-credential-"+name), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestCredentialHelpers(t *testing.T) {
	td := sharedAuthTestdata(t)
	home := isolateEnv(t)
	bin := filepath.Join(home, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	writeHelper(t, bin, "helper-registry")
	writeHelper(t, bin, "teststore")
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))

	// containers/image's config.json: a helper with no credential for the
	// registry means anonymous, not an error.
	kc := NewKeychain(Options{AuthFile: filepath.Join(td, "config.json")})
	got, _, err := kc.Lookup("registry-no-creds.com/repo")
	if err != nil || !got.IsAnonymous() {
		t.Fatalf("registry-no-creds.com: got %+v, %v; want anonymous", got, err)
	}

	cfg := filepath.Join(home, "helpers.json")
	if err := os.WriteFile(cfg, []byte(`{
  "auths": {"empty.example": {}, "plain.example": {"auth": "cGxhaW46cHc="}},
  "credHelpers": {"helper.example": "helper-registry", "https://token.example": "helper-registry",
                  "docker.io": "helper-registry", "broken.example": "helper-registry",
                  "missing.example": "does-not-exist"},
  "credsStore": "teststore"
}`), 0o600); err != nil {
		t.Fatal(err)
	}
	kc = NewKeychain(Options{AuthFile: cfg})
	for target, want := range map[string]Credential{
		"helper.example/a/b":             {Username: "hu", Password: "hs"},
		"token.example":                  {IdentityToken: "refresh-123"},
		"index.docker.io/library/alpine": {Username: "hub", Password: "hubpw"},
		"plain.example":                  {Username: "plain", Password: "pw"},
		"store.example":                  {Username: "su", Password: "ss"}, // credsStore
		"empty.example":                  {},                               // empty entry, store has nothing
		"nowhere.example":                {},
	} {
		got, _, err := kc.Lookup(target)
		if err != nil {
			t.Fatalf("Lookup(%q): %v", target, err)
		}
		if got != want {
			t.Errorf("Lookup(%q) = %+v, want %+v", target, got, want)
		}
	}

	_, _, err = kc.Lookup("broken.example")
	if err == nil || !strings.Contains(err.Error(), "keychain locked") || !strings.Contains(err.Error(), "docker-credential-helper-registry") {
		t.Fatalf("failing helper: err = %v, want the helper's message", err)
	}
	_, _, err = kc.Lookup("missing.example")
	if err == nil || !strings.Contains(err.Error(), "docker-credential-does-not-exist") || !strings.Contains(err.Error(), cfg) {
		t.Fatalf("missing helper: err = %v, want it named with the file", err)
	}
}

func TestBadFilesNameTheFileNotTheSecret(t *testing.T) {
	isolateEnv(t)
	dir := t.TempDir()
	cases := map[string]string{
		"garbage.json":   `Json rocks! Unless it doesn't.`,
		"badb64.json":    `{"auths": {"r.example": {"auth": "c2VjcmV0LXBhc3N3b3Jk!!!"}}}`,
		"nocolon.json":   `{"auths": {"r.example": {"auth": "c2VjcmV0LXBhc3N3b3Jk"}}}`,
		"wrongtype.json": `{"auths": {"r.example": {"auth": 42}}}`,
	}
	for file, content := range cases {
		t.Run(file, func(t *testing.T) {
			path := filepath.Join(dir, file)
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := NewKeychain(Options{AuthFile: path}).Resolve(name.MustParseReference("r.example/repo:tag").Context())
			if err == nil {
				t.Fatal("want an error")
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
			// "secret-password" is the base64-decoded payload.
			if strings.Contains(err.Error(), "secret-password") || strings.Contains(err.Error(), "c2VjcmV0") {
				t.Errorf("error %q leaks the credential", err)
			}
		})
	}
}

// TestEntryForms covers the ways tools spell one credential.
func TestEntryForms(t *testing.T) {
	isolateEnv(t)
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte(`{"auths": {
  "fields.example": {"username": "fu", "password": "fp"},
  "unpadded.example": {"auth": "dTpwYXNzd29yZA"},
  "colon.example": {"auth": "dTpwYTpzcw=="},
  "both.example": {"auth": "YTpi", "username": "ignored", "password": "ignored"},
  "https://scheme.example/": {"auth": "czpw"}
}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	kc := NewKeychain(Options{AuthFile: path})
	for target, want := range map[string]Credential{
		"fields.example":     {Username: "fu", Password: "fp"},
		"unpadded.example":   {Username: "u", Password: "password"},
		"colon.example":      {Username: "u", Password: "pa:ss"}, // only the first ':' separates
		"both.example":       {Username: "a", Password: "b"},     // "auth" wins, as in docker
		"scheme.example/x/y": {Username: "s", Password: "p"},
	} {
		got, _, err := kc.Lookup(target)
		if err != nil || got != want {
			t.Errorf("Lookup(%q) = %+v, %v; want %+v", target, got, err, want)
		}
	}
}

// TestResolve checks the authn.Keychain face go-containerregistry uses,
// with the resource types it passes (registry and repository).
func TestResolve(t *testing.T) {
	isolateEnv(t)
	path := filepath.Join(t.TempDir(), "auth.json")
	if err := SetCredential(path, "quay.io/org", "orguser", "orgpw"); err != nil {
		t.Fatal(err)
	}
	if err := SetCredential(path, "quay.io", "hostuser", "hostpw"); err != nil {
		t.Fatal(err)
	}
	kc := NewKeychain(Options{AuthFile: path})
	check := func(res authn.Resource, want authn.AuthConfig) {
		t.Helper()
		a, err := kc.Resolve(res)
		if err != nil {
			t.Fatal(err)
		}
		got, err := a.Authorization()
		if err != nil {
			t.Fatal(err)
		}
		if *got != want {
			t.Errorf("Resolve(%s) = %+v, want %+v", res, *got, want)
		}
	}
	check(name.MustParseReference("quay.io/org/app:1").Context(), authn.AuthConfig{Username: "orguser", Password: "orgpw"})
	check(name.MustParseReference("quay.io/other/app:1").Context(), authn.AuthConfig{Username: "hostuser", Password: "hostpw"})
	check(name.MustParseReference("quay.io/org/app:1").Context().Registry, authn.AuthConfig{Username: "hostuser", Password: "hostpw"})
	check(name.MustParseReference("ghcr.io/x/y").Context(), authn.AuthConfig{})
}
