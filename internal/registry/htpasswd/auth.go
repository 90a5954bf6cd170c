package htpasswd

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// ErrBadCredentials is returned for an unknown user or a wrong password;
// the two are deliberately not distinguished.
var ErrBadCredentials = errors.New("invalid username or password")

// dummyHash is compared against for unknown users so that a wrong user name
// takes as long as a wrong password (no user enumeration by timing).
// It is made once, lazily, at the default cost.
var dummyHash = sync.OnceValue(func() []byte {
	h, err := bcrypt.GenerateFromPassword([]byte("airlock-dummy"), bcrypt.DefaultCost)
	if err != nil {
		panic(err) // only fails for an out-of-range cost
	}
	return h
})

// Authenticator checks user/password pairs against an htpasswd file.
//
// WHY a cache: a registry client sends basic auth on every request (dozens
// per image), and a bcrypt check at the default cost takes tens of
// milliseconds of CPU. Successful verifications are remembered, keyed on the
// user and an HMAC of the password under a per-process random key (so the
// cache never holds anything that could be reversed or reused elsewhere).
// The cache is dropped whenever the file changes (size, mtime or inode), so
// deleting a user or changing a password takes effect on the next request.
// Failures are never cached: a wrong password always pays full bcrypt.
type Authenticator struct {
	path string
	key  [32]byte

	mu       sync.Mutex
	stamp    fileStamp
	file     *File
	verified map[string][32]byte // user -> HMAC(password) known to match

	bcryptCalls atomic.Int64
}

type fileStamp struct {
	size    int64
	modTime time.Time
	sys     any
}

// NewAuthenticator returns an Authenticator for the htpasswd file at path.
// The file must exist and parse: a registry started with a broken or
// missing htpasswd file would otherwise silently refuse everybody.
func NewAuthenticator(path string) (*Authenticator, error) {
	a := &Authenticator{path: path}
	if _, err := rand.Read(a.key[:]); err != nil {
		return nil, fmt.Errorf("seeding credential cache: %w", err)
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("htpasswd file %s: %w (create it with `airlock registry htpasswd add --file %s USER`)", path, err, path)
	}
	if _, err := a.current(); err != nil {
		return nil, err
	}
	return a, nil
}

// Path returns the htpasswd file path.
func (a *Authenticator) Path() string { return a.path }

// BcryptCalls returns how many bcrypt comparisons were made; tests use it to
// prove the cache works.
func (a *Authenticator) BcryptCalls() int64 { return a.bcryptCalls.Load() }

// current returns the parsed file, re-reading it (and dropping the cache)
// when it changed on disk. The caller must not hold a.mu.
func (a *Authenticator) current() (*File, error) {
	st, err := os.Stat(a.path)
	if err != nil {
		return nil, fmt.Errorf("htpasswd file %s: %w", a.path, err)
	}
	stamp := fileStamp{size: st.Size(), modTime: st.ModTime(), sys: inode(st)}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.file != nil && stamp == a.stamp {
		return a.file, nil
	}
	f, err := Read(a.path)
	if err != nil {
		return nil, err
	}
	a.file, a.stamp, a.verified = f, stamp, map[string][32]byte{}
	return f, nil
}

func inode(st os.FileInfo) any {
	// The inode changes on every atomic rewrite (rename), which catches a
	// rewrite within the mtime granularity that keeps the same size.
	return sysIno(st)
}

// Authenticate returns nil if password is user's password.
func (a *Authenticator) Authenticate(user, password string) error {
	f, err := a.current()
	if err != nil {
		return err
	}
	mac := hmac.New(sha256.New, a.key[:])
	mac.Write([]byte(user))
	mac.Write([]byte{0})
	mac.Write([]byte(password))
	var sum [32]byte
	copy(sum[:], mac.Sum(nil))

	a.mu.Lock()
	cached, ok := a.verified[user]
	a.mu.Unlock()
	if ok && hmac.Equal(cached[:], sum[:]) {
		return nil
	}

	hash, known := f.Lookup(user)
	a.bcryptCalls.Add(1)
	if !known {
		_ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return ErrBadCredentials
	}
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)); err != nil {
		return ErrBadCredentials
	}
	a.mu.Lock()
	// Only cache against the file version we checked; if it was reloaded
	// meanwhile, a.file differs and the next request re-verifies.
	if a.file == f {
		a.verified[user] = sum
	}
	a.mu.Unlock()
	return nil
}
