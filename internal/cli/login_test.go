package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/airlock-mirror/airlock/internal/auth"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
)

// runCmd runs a freshly built command with args and stdin, returning its
// stdout, stderr and error.
func runCmd(t *testing.T, newCmd func(IOStreams) *cobra.Command, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newCmd(IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut})
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// isolateCredentials makes sure no credential file of the machine is read
// or written by a test.
func isolateCredentials(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_RUNTIME_DIR", filepath.Join(home, "run"))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, "config"))
	t.Setenv("DOCKER_CONFIG", filepath.Join(home, "docker"))
	t.Setenv("REGISTRY_AUTH_FILE", "")
	t.Setenv("CONTAINERS_REGISTRIES_CONF", filepath.Join(home, "no-registries.conf"))
	return home
}

func TestLoginLogout(t *testing.T) {
	isolateCredentials(t)
	reg := regtest.Start(t, regtest.WithTLS(), regtest.WithAuth("alice", "s3cret-pw"))
	authFile := filepath.Join(t.TempDir(), "auth.json")
	// An existing entry for another registry must survive login and logout.
	if err := auth.SetCredential(authFile, "other.example", "bob", "bobpw"); err != nil {
		t.Fatal(err)
	}

	t.Run("wrong password is refused and nothing is stored", func(t *testing.T) {
		before, _ := os.ReadFile(authFile)
		_, _, err := runCmd(t, newLoginCommand, "", reg.Host, "-u", "alice", "-p", "wrong-pw", "--ca-file", reg.CAFile, "-a", authFile)
		if err == nil || !strings.Contains(err.Error(), "wrong username or password") || !strings.Contains(err.Error(), "401") {
			t.Fatalf("err = %v, want wrong username or password (401)", err)
		}
		if strings.Contains(err.Error(), "wrong-pw") {
			t.Fatalf("error leaks the password: %v", err)
		}
		after, _ := os.ReadFile(authFile)
		if !bytes.Equal(before, after) {
			t.Fatalf("auth file changed after a failed login:\n%s", after)
		}
	})

	t.Run("untrusted CA explains --ca-file", func(t *testing.T) {
		_, _, err := runCmd(t, newLoginCommand, "", reg.Host, "-u", "alice", "-p", "s3cret-pw", "-a", authFile)
		if err == nil || !strings.Contains(err.Error(), "--ca-file") {
			t.Fatalf("err = %v, want a hint about --ca-file", err)
		}
	})

	t.Run("password on stdin", func(t *testing.T) {
		out, _, err := runCmd(t, newLoginCommand, "s3cret-pw\n", reg.Host, "-u", "alice", "--password-stdin", "--ca-file", reg.CAFile, "-a", authFile)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "Login Succeeded") || !strings.Contains(out, authFile) {
			t.Fatalf("output %q", out)
		}
		fi, err := os.Stat(authFile)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("auth file mode: %v %v", fi.Mode(), err)
		}
		kc := auth.NewKeychain(auth.Options{AuthFile: authFile})
		for target, want := range map[string]auth.Credential{
			reg.Host + "/any/repo": {Username: "alice", Password: "s3cret-pw"},
			"other.example":        {Username: "bob", Password: "bobpw"},
		} {
			got, _, err := kc.Lookup(target)
			if err != nil || got != want {
				t.Fatalf("Lookup(%s) = %+v, %v; want %+v", target, got, err, want)
			}
		}
	})

	t.Run("insecure skips verification", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "auth.json")
		if _, _, err := runCmd(t, newLoginCommand, "", "https://"+reg.Host+"/", "-u", "alice", "-p", "s3cret-pw", "--insecure", "-a", f); err != nil {
			t.Fatal(err)
		}
		got, _, _ := auth.NewKeychain(auth.Options{AuthFile: f}).Lookup(reg.Host)
		if got.Username != "alice" {
			t.Fatalf("got %+v", got)
		}
	})

	t.Run("default file is REGISTRY_AUTH_FILE then XDG_RUNTIME_DIR", func(t *testing.T) {
		home := isolateCredentials(t)
		if _, _, err := runCmd(t, newLoginCommand, "", reg.Host, "-u", "alice", "-p", "s3cret-pw", "--ca-file", reg.CAFile); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(home, "run", "containers", "auth.json")); err != nil {
			t.Fatalf("XDG_RUNTIME_DIR auth.json: %v", err)
		}
		env := filepath.Join(home, "env-auth.json")
		t.Setenv("REGISTRY_AUTH_FILE", env)
		if _, _, err := runCmd(t, newLoginCommand, "", reg.Host, "-u", "alice", "-p", "s3cret-pw", "--ca-file", reg.CAFile); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(env); err != nil {
			t.Fatalf("REGISTRY_AUTH_FILE: %v", err)
		}
	})

	t.Run("bad usage", func(t *testing.T) {
		for _, args := range [][]string{
			{reg.Host, "-p", "x"},
			{reg.Host, "-u", "alice"},
			{reg.Host, "-u", "a:b", "-p", "x"},
			{reg.Host, "-u", "alice", "-p", "x", "--password-stdin"},
			{"bad host!", "-u", "alice", "-p", "x"},
		} {
			if _, _, err := runCmd(t, newLoginCommand, "", append(args, "-a", authFile)...); err == nil {
				t.Errorf("login %v: want an error", args)
			}
		}
	})

	t.Run("logout", func(t *testing.T) {
		out, _, err := runCmd(t, newLogoutCommand, "", reg.Host, "-a", authFile)
		if err != nil || !strings.Contains(out, reg.Host) {
			t.Fatalf("logout: %q, %v", out, err)
		}
		got, _, _ := auth.NewKeychain(auth.Options{AuthFile: authFile}).Lookup(reg.Host)
		if !got.IsAnonymous() {
			t.Fatalf("still logged in: %+v", got)
		}
		if _, _, err := runCmd(t, newLogoutCommand, "", reg.Host, "-a", authFile); err == nil || !strings.Contains(err.Error(), "not logged in") {
			t.Fatalf("second logout: %v, want not logged in", err)
		}
		if _, _, err := runCmd(t, newLogoutCommand, "", "-a", authFile); err == nil {
			t.Fatal("logout without REGISTRY or --all must fail")
		}
		if out, _, err := runCmd(t, newLogoutCommand, "", "--all", "-a", authFile); err != nil || !strings.Contains(out, "Removed 1") {
			t.Fatalf("logout --all: %q, %v", out, err)
		}
		got, _, _ = auth.NewKeychain(auth.Options{AuthFile: authFile}).Lookup("other.example")
		if !got.IsAnonymous() {
			t.Fatalf("logout --all left %+v", got)
		}
	})
}
