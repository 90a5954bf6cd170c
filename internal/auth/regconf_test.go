package auth

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// sharedRegistriesTestdata is containers/image's registries.conf test data.
func sharedRegistriesTestdata(t *testing.T) string {
	t.Helper()
	return filepath.Join(filepath.Dir(sharedAuthTestdata(t)), "registries-testdata")
}

func TestLoadCredentialHelpers(t *testing.T) {
	auth := sharedAuthTestdata(t)
	reg := sharedRegistriesTestdata(t)
	cases := []struct {
		conf, dir string
		want      []string
	}{
		{filepath.Join(auth, "cred-helper.conf"), "", []string{"helper-registry"}},
		{filepath.Join(auth, "cred-helper-with-auth-files.conf"), "", []string{"containers-auth.json", "helper-registry"}},
		{filepath.Join(reg, "cred-helper.conf"), "", []string{"helper-1", "helper-2"}},
		// Drop-ins are read in lexical order; config-2.conf sets the list last.
		{filepath.Join(reg, "cred-helper.conf"), filepath.Join(reg, "registries.conf.d"), []string{"dropin-1", "dropin-2"}},
		// An empty list means the auth files, as podman does.
		{filepath.Join(reg, "cred-helper.conf"), filepath.Join(reg, "registries.conf.d-empty-helpers"), []string{"containers-auth.json"}},
		{filepath.Join(reg, "mirrors.conf"), "", []string{"containers-auth.json"}},
		{filepath.Join(reg, "does-not-exist.conf"), "", []string{"containers-auth.json"}},
	}
	for _, tc := range cases {
		got, err := loadCredentialHelpers(tc.conf, tc.dir)
		if err != nil {
			t.Fatalf("%s + %s: %v", tc.conf, tc.dir, err)
		}
		if !reflect.DeepEqual(got.helpers, tc.want) {
			t.Errorf("%s + %s: helpers %v, want %v", filepath.Base(tc.conf), filepath.Base(tc.dir), got.helpers, tc.want)
		}
	}
}

func TestParseCredentialHelpers(t *testing.T) {
	for text, want := range map[string][]string{
		"credential-helpers = [\n  \"a\", # first\n  'b',\n]\n":                  {"a", "b"},
		"# credential-helpers = [\"x\"]\n":                                       nil,
		"[[registry]]\ncredential-helpers = [\"not-top-level\"]\n":               nil,
		"\"credential-helpers\"=[\"quoted-key\"]\n[aliases]\n":                   {"quoted-key"},
		"unqualified-search-registries = [\"docker.io\"]\ncredential-helpers=[]": {},
	} {
		got, _, err := parseCredentialHelpers(text)
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		if len(got) != len(want) || (len(want) > 0 && !reflect.DeepEqual(got, want)) {
			t.Errorf("%q: got %v, want %v", text, got, want)
		}
	}
	dir := t.TempDir()
	for _, bad := range []string{
		"credential-helpers = \"helper\"\n",
		"credential-helpers = [\"a\"\n",
		"credential-helpers = [a]\n",
		"credential-helpers = [\"a\" \"b\"]\n",
	} {
		path := filepath.Join(dir, "registries.conf")
		if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := loadCredentialHelpers(path, "")
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%q: err = %v, want an error naming the file", bad, err)
		}
	}
}

// TestCredentialHelpersFromRegistriesConf runs containers/image's
// cred-helper*.conf cases through the keychain with a real helper.
func TestCredentialHelpersFromRegistriesConf(t *testing.T) {
	td := sharedAuthTestdata(t)
	home := isolateEnv(t)
	bin := filepath.Join(home, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	writeHelper(t, bin, "helper-registry")
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	authFile := filepath.Join(td, "example.json")

	helperOnly := NewKeychain(Options{AuthFile: authFile, RegistriesConf: filepath.Join(td, "cred-helper.conf")})
	both := NewKeychain(Options{AuthFile: authFile, RegistriesConf: filepath.Join(td, "cred-helper-with-auth-files.conf")})
	cases := []struct {
		kc     *Keychain
		name   string
		target string
		want   Credential
	}{
		{helperOnly, "helper only", "registry-a.com/repo", Credential{Username: "foo", Password: "bar"}},
		{helperOnly, "helper only", "registry-b.com", Credential{IdentityToken: "fizzbuzz"}},
		// The auth file is not among the sources: its credential is not used.
		{helperOnly, "helper only", "example.org", Credential{}},
		{helperOnly, "helper only", "registry-no-creds.com", Credential{}},
		{both, "files then helper", "example.org", Credential{Username: "example", Password: "org"}},
		{both, "files then helper", "registry-a.com", Credential{Username: "foo", Password: "bar"}},
		{both, "files then helper", "registry-no-creds.com", Credential{}},
	}
	for _, tc := range cases {
		got, _, err := tc.kc.Lookup(tc.target)
		if err != nil {
			t.Fatalf("%s: Lookup(%q): %v", tc.name, tc.target, err)
		}
		if got != tc.want {
			t.Errorf("%s: Lookup(%q) = %+v, want %+v", tc.name, tc.target, got, tc.want)
		}
	}

	// A helper that is not installed fails the lookup only when no other
	// source has a credential, and the error names registries.conf.
	conf := filepath.Join(home, "registries.conf")
	if err := os.WriteFile(conf, []byte(`credential-helpers = ["not-installed", "containers-auth.json"]`), 0o644); err != nil {
		t.Fatal(err)
	}
	kc := NewKeychain(Options{AuthFile: authFile, RegistriesConf: conf})
	if got, _, err := kc.Lookup("example.org"); err != nil || got.Username != "example" {
		t.Fatalf("example.org: %+v, %v; want the auth file's credential", got, err)
	}
	if _, _, err := kc.Lookup("other.example"); err == nil || !strings.Contains(err.Error(), conf) || !strings.Contains(err.Error(), "docker-credential-not-installed") {
		t.Fatalf("other.example: err = %v, want the missing helper named with %s", err, conf)
	}
}
