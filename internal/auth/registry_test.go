package auth

import (
	"errors"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

// TestKeychainAgainstRegistry uses the keychain with go-containerregistry
// against the embedded registry: the namespace-scoped key must be chosen
// for that namespace (its password is the right one), the host key (a
// wrong password) everywhere else, whatever map order would say.
func TestKeychainAgainstRegistry(t *testing.T) {
	isolateEnv(t)
	reg := regtest.Start(t, regtest.WithTLS(), regtest.WithAuth("alice", "right-pw"))
	path := filepath.Join(t.TempDir(), "auth.json")
	for key, pw := range map[string]string{
		reg.Host:                 "wrong-pw",
		reg.Host + "/team":       "right-pw",
		reg.Host + "/team/other": "wrong-pw",
	} {
		if err := SetCredential(path, key, "alice", pw); err != nil {
			t.Fatal(err)
		}
	}
	img, err := synth.Image(1)
	if err != nil {
		t.Fatal(err)
	}
	opts := []remote.Option{remote.WithTransport(reg.Transport), remote.WithAuthFromKeychain(NewKeychain(Options{AuthFile: path}))}
	push := func(repo string) error {
		ref, err := name.ParseReference(reg.Host + "/" + repo + ":v1")
		if err != nil {
			t.Fatal(err)
		}
		return remote.Write(ref, img, opts...)
	}
	// Repeated: a random choice among keys would fail some of the runs.
	for range 5 {
		if err := push("team/app"); err != nil {
			t.Fatalf("push with the namespace credential: %v", err)
		}
	}
	for _, repo := range []string{"elsewhere/app", "team/other/app"} {
		err := push(repo)
		var terr *transport.Error
		if !errors.As(err, &terr) || terr.StatusCode != http.StatusUnauthorized {
			t.Fatalf("push to %s: err = %v, want 401 (the wrong password of the more specific key)", repo, err)
		}
	}
}
