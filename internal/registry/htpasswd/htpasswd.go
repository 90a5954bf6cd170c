// Package htpasswd reads and writes Apache-style htpasswd files holding
// bcrypt hashes (the only hash distribution and podman's registry accept),
// and authenticates users against them with a cache of verified
// credentials, so that a registry does not pay a bcrypt comparison
// (~60 ms at the default cost) on every HTTP request of a push or pull.
package htpasswd

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/airlock-mirror/airlock/internal/atomicfile"
)

// Entry is one user line of an htpasswd file.
type Entry struct {
	User string
	Hash string
}

// File is the parsed content of an htpasswd file. Comment and blank lines
// are kept so that rewriting a hand-edited file does not lose them.
type File struct {
	Path  string
	lines []line
}

type line struct {
	raw   string // verbatim text for comments and blank lines
	entry *Entry
}

// Read parses the htpasswd file at path. A missing file is an empty File
// (so that `htpasswd add` can create it); any other error is returned.
func Read(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return &File{Path: path}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading htpasswd file %s: %w", path, err)
	}
	f, err := Parse(path, bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Parse parses htpasswd content; name is used in error messages.
func Parse(name string, r io.Reader) (*File, error) {
	f := &File{Path: name}
	seen := map[string]int{}
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		text := sc.Text()
		t := strings.TrimSpace(text)
		if t == "" || strings.HasPrefix(t, "#") {
			f.lines = append(f.lines, line{raw: text})
			continue
		}
		user, hash, ok := strings.Cut(t, ":")
		if !ok || user == "" || hash == "" {
			return nil, fmt.Errorf("%s line %d: want USER:BCRYPT-HASH (create entries with `airlock registry htpasswd add`)", name, n)
		}
		if !isBcrypt(hash) {
			return nil, fmt.Errorf("%s line %d: user %q: hash is not bcrypt ($2y$/$2a$/$2b$); recreate it with `airlock registry htpasswd add --file %s %s` or `htpasswd -B`", name, n, user, name, user)
		}
		if prev, dup := seen[user]; dup {
			return nil, fmt.Errorf("%s line %d: user %q already defined on line %d; delete one of them", name, n, user, prev)
		}
		seen[user] = n
		f.lines = append(f.lines, line{entry: &Entry{User: user, Hash: hash}})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading htpasswd file %s: %w", name, err)
	}
	return f, nil
}

func isBcrypt(hash string) bool {
	return strings.HasPrefix(hash, "$2y$") || strings.HasPrefix(hash, "$2a$") || strings.HasPrefix(hash, "$2b$")
}

// Users returns the user names in the file, sorted.
func (f *File) Users() []string {
	var users []string
	for _, l := range f.lines {
		if l.entry != nil {
			users = append(users, l.entry.User)
		}
	}
	sort.Strings(users)
	return users
}

// Lookup returns the bcrypt hash of user.
func (f *File) Lookup(user string) (string, bool) {
	for _, l := range f.lines {
		if l.entry != nil && l.entry.User == user {
			return l.entry.Hash, true
		}
	}
	return "", false
}

// Set adds user or replaces its password, hashing it with bcrypt at the
// given cost (bcrypt.DefaultCost in production; tests may use
// bcrypt.MinCost). It reports whether the user already existed.
func (f *File) Set(user, password string, cost int) (replaced bool, err error) {
	if err := ValidateUser(user); err != nil {
		return false, err
	}
	if password == "" {
		return false, fmt.Errorf("empty password for user %q", user)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return false, fmt.Errorf("hashing password for user %q: %w", user, err)
	}
	for _, l := range f.lines {
		if l.entry != nil && l.entry.User == user {
			l.entry.Hash = string(hash)
			return true, nil
		}
	}
	f.lines = append(f.lines, line{entry: &Entry{User: user, Hash: string(hash)}})
	return false, nil
}

// Delete removes user; it reports whether the user was present.
func (f *File) Delete(user string) bool {
	for i, l := range f.lines {
		if l.entry != nil && l.entry.User == user {
			f.lines = append(f.lines[:i], f.lines[i+1:]...)
			return true
		}
	}
	return false
}

// ValidateUser rejects user names that cannot be stored in an htpasswd
// file or sent with HTTP basic auth.
func ValidateUser(user string) error {
	if user == "" {
		return fmt.Errorf("empty user name")
	}
	if strings.ContainsAny(user, ":\r\n \t#") {
		return fmt.Errorf("user name %q must not contain ':', '#', spaces or newlines", user)
	}
	return nil
}

// Bytes renders the file.
func (f *File) Bytes() []byte {
	var b bytes.Buffer
	for _, l := range f.lines {
		if l.entry != nil {
			fmt.Fprintf(&b, "%s:%s\n", l.entry.User, l.entry.Hash)
		} else {
			b.WriteString(l.raw + "\n")
		}
	}
	return b.Bytes()
}

// Write saves the file atomically with mode 0600 (it holds password
// hashes): it writes a temporary file in the same directory, fsyncs it and
// renames it over the final name, so a crash never leaves a truncated
// htpasswd file that would lock every user out.
func (f *File) Write() error {
	if err := atomicfile.Write(f.Path, f.Bytes(), 0o600); err != nil {
		return fmt.Errorf("htpasswd: %w", err)
	}
	return nil
}
