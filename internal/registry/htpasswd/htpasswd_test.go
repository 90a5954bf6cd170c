package htpasswd

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func writeUsers(t testing.TB, path string, users map[string]string) {
	t.Helper()
	f, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	for u, p := range users {
		if _, err := f.Set(u, p, bcrypt.MinCost); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Write(); err != nil {
		t.Fatal(err)
	}
}

func TestParseErrors(t *testing.T) {
	cases := map[string]string{
		"no colon":   "# comment\nalice\n",
		"plain text": "alice:secret\n",
		"duplicate":  "alice:$2y$05$abc\nalice:$2y$05$def\n",
		"empty hash": "alice:\n",
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("users.htpasswd", strings.NewReader(content))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), "users.htpasswd line ") {
				t.Fatalf("error does not name file and line: %v", err)
			}
		})
	}
}

func TestWriteKeepsCommentsAndMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(path, []byte("# managed by hand\n\nbob:$2y$05$0123456789012345678901uVlP7yHJjy7y6ZLR9TGwBIbGG9TYbUY.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeUsers(t, path, map[string]string{"alice": "pw"})
	f, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.Users(), ","); got != "alice,bob" {
		t.Fatalf("users %q", got)
	}
	data, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(data), "# managed by hand\n\nbob:") {
		t.Fatalf("comment or order lost:\n%s", data)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	if !f.Delete("bob") || f.Delete("bob") {
		t.Fatal("Delete must report presence")
	}
	if _, err := f.Set("a:b", "x", bcrypt.MinCost); err == nil {
		t.Fatal("user with ':' accepted")
	}
	// No temporary files are left behind.
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only the htpasswd file", len(entries))
	}
}

func TestAuthenticatorCachesVerifiedCredentials(t *testing.T) {
	path := filepath.Join(t.TempDir(), "htpasswd")
	writeUsers(t, path, map[string]string{"alice": "right"})
	a, err := NewAuthenticator(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		if err := a.Authenticate("alice", "right"); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if n := a.BcryptCalls(); n != 1 {
		t.Fatalf("%d bcrypt checks for 50 requests with the same credentials, want 1", n)
	}
	// Wrong passwords are never cached and always fail.
	for i := 0; i < 3; i++ {
		if err := a.Authenticate("alice", "wrong"); err != ErrBadCredentials {
			t.Fatalf("wrong password: %v", err)
		}
	}
	if err := a.Authenticate("mallory", "right"); err != ErrBadCredentials {
		t.Fatalf("unknown user: %v", err)
	}
	if n := a.BcryptCalls(); n != 5 {
		t.Fatalf("bcrypt checks %d, want 5 (1 + 3 wrong + 1 unknown)", n)
	}
	// A cached success does not let a different password in.
	if err := a.Authenticate("alice", "right "); err == nil {
		t.Fatal("near-miss password accepted")
	}
}

func TestAuthenticatorSeesFileChanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "htpasswd")
	writeUsers(t, path, map[string]string{"alice": "old"})
	a, err := NewAuthenticator(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Authenticate("alice", "old"); err != nil {
		t.Fatal(err)
	}
	// Change the password (same length: same file size).
	writeUsers(t, path, map[string]string{"alice": "new"})
	if err := a.Authenticate("alice", "old"); err == nil {
		t.Fatal("old password still accepted after the file changed")
	}
	if err := a.Authenticate("alice", "new"); err != nil {
		t.Fatalf("new password refused: %v", err)
	}
	// Delete the user.
	f, _ := Read(path)
	f.Delete("alice")
	if err := f.Write(); err != nil {
		t.Fatal(err)
	}
	if err := a.Authenticate("alice", "new"); err == nil {
		t.Fatal("deleted user still accepted")
	}
}

func TestAuthenticatorConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "htpasswd")
	writeUsers(t, path, map[string]string{"alice": "pw", "bob": "pw2"})
	a, err := NewAuthenticator(path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			u, p := "alice", "pw"
			if i%2 == 1 {
				u, p = "bob", "pw2"
			}
			for j := 0; j < 20; j++ {
				if err := a.Authenticate(u, p); err != nil {
					t.Error(err)
					return
				}
			}
		}(i)
	}
	wg.Wait()
}

// BenchmarkAuthenticateCached measures a request with already-verified
// credentials (the steady state of a push or pull).
func BenchmarkAuthenticateCached(b *testing.B) {
	path := filepath.Join(b.TempDir(), "htpasswd")
	f := &File{Path: path}
	if _, err := f.Set("alice", "pw", bcrypt.DefaultCost); err != nil {
		b.Fatal(err)
	}
	if err := f.Write(); err != nil {
		b.Fatal(err)
	}
	a, err := NewAuthenticator(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := a.Authenticate("alice", "pw"); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := a.Authenticate("alice", "pw"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBcryptUncached is what every request would cost without the
// cache (distribution's own htpasswd controller).
func BenchmarkBcryptUncached(b *testing.B) {
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.DefaultCost)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		if err := bcrypt.CompareHashAndPassword(hash, []byte("pw")); err != nil {
			b.Fatal(err)
		}
	}
}
