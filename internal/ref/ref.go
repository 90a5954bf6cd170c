// Package ref parses and prints image references with a transport prefix.
//
// airlock moves images between three kinds of places, named the way skopeo
// and oc name them:
//
//	docker://registry/path/repo[:tag][@sha256:hex]   a registry (the default)
//	file://path/repo[:tag][@digest]                  airlock's local store
//	oci://DIR[:tag][@digest]                         a plain OCI image layout
//
// Docker references are normalised as the container tools do: a missing
// registry means docker.io, "index.docker.io" is docker.io, and a single
// path component on docker.io gets "library/".
package ref

import (
	"fmt"
	"regexp"
	"strings"
)

// Transport says where an image lives.
type Transport string

const (
	Docker Transport = "docker"
	File   Transport = "file"
	OCI    Transport = "oci"
)

// DefaultRegistry is the registry of references without a host.
const DefaultRegistry = "docker.io"

// Ref is one image reference. Exactly which fields are set depends on the
// transport: Registry is empty for file:// and oci://; Path is the
// repository path (docker, file) or the layout directory (oci).
type Ref struct {
	Transport Transport
	Registry  string // host[:port], docker only
	Path      string // repository path, or layout directory for oci
	Tag       string
	Digest    string // "sha256:<hex>" or "sha512:<hex>"
}

var (
	pathComponentRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$`)
	tagRE           = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	digestRE        = regexp.MustCompile(`^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$`)
	hostRE          = regexp.MustCompile(`^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::[0-9]+)?$`)
)

// Parse parses s, which may carry a transport prefix; without one it is a
// docker reference. It accepts references without tag or digest; use
// Pinned or HasTagOrDigest to require one.
func Parse(s string) (Ref, error) {
	orig := s
	t := Docker
	if i := strings.Index(s, "://"); i >= 0 {
		switch Transport(s[:i]) {
		case Docker, File, OCI:
			t = Transport(s[:i])
		default:
			return Ref{}, fmt.Errorf("invalid reference %q: unknown transport %q (want docker://, file:// or oci://)", orig, s[:i])
		}
		s = s[i+3:]
	}
	if s == "" {
		return Ref{}, fmt.Errorf("invalid reference %q: empty", orig)
	}
	var r Ref
	r.Transport = t
	if i := strings.LastIndex(s, "@"); i >= 0 {
		r.Digest = s[i+1:]
		s = s[:i]
		if !digestRE.MatchString(r.Digest) {
			return Ref{}, fmt.Errorf("invalid reference %q: bad digest %q (want sha256:<64 hex>)", orig, r.Digest)
		}
	}
	// A tag follows the last ':' that comes after the last '/'.
	if i := strings.LastIndex(s, ":"); i >= 0 && i > strings.LastIndex(s, "/") {
		r.Tag = s[i+1:]
		s = s[:i]
		if !tagRE.MatchString(r.Tag) {
			return Ref{}, fmt.Errorf("invalid reference %q: bad tag %q", orig, r.Tag)
		}
	}
	if t == OCI {
		if s == "" {
			return Ref{}, fmt.Errorf("invalid reference %q: missing layout directory", orig)
		}
		r.Path = s
		return r, nil
	}
	if t == File {
		s = strings.Trim(s, "/")
		if err := checkPath(s); err != nil {
			return Ref{}, fmt.Errorf("invalid reference %q: %w", orig, err)
		}
		r.Path = s
		return r, nil
	}
	host, path := splitHost(s)
	if host == "" {
		host = DefaultRegistry
	}
	if !hostRE.MatchString(host) {
		return Ref{}, fmt.Errorf("invalid reference %q: bad registry host %q", orig, host)
	}
	if host == "index.docker.io" || host == "registry-1.docker.io" {
		host = DefaultRegistry
	}
	if host == DefaultRegistry && !strings.Contains(path, "/") {
		path = "library/" + path
	}
	if err := checkPath(path); err != nil {
		return Ref{}, fmt.Errorf("invalid reference %q: %w", orig, err)
	}
	r.Registry = host
	r.Path = path
	return r, nil
}

// MustParse is Parse for constants in tests and examples; it panics on error.
func MustParse(s string) Ref {
	r, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return r
}

// splitHost splits off the first component when it looks like a host:
// it contains a '.' or ':' or is "localhost", as docker decides.
func splitHost(s string) (host, rest string) {
	i := strings.Index(s, "/")
	if i < 0 {
		return "", s
	}
	first := s[:i]
	if strings.ContainsAny(first, ".:") || first == "localhost" || strings.HasPrefix(first, "[") {
		return first, s[i+1:]
	}
	return "", s
}

func checkPath(p string) error {
	if p == "" {
		return fmt.Errorf("missing repository name")
	}
	if len(p) > 255 {
		return fmt.Errorf("repository name longer than 255 characters")
	}
	for _, c := range strings.Split(p, "/") {
		if !pathComponentRE.MatchString(c) {
			return fmt.Errorf("bad repository path component %q (lowercase letters, digits and separators . _ __ - only)", c)
		}
	}
	return nil
}

// HasTagOrDigest reports whether the reference names one image.
func (r Ref) HasTagOrDigest() bool { return r.Tag != "" || r.Digest != "" }

// Repository is host/path for docker, path otherwise (no tag or digest).
func (r Ref) Repository() string {
	if r.Transport == Docker || r.Transport == "" {
		return r.Registry + "/" + r.Path
	}
	return r.Path
}

// Name is the reference without transport: repository plus :tag and/or @digest.
func (r Ref) Name() string {
	s := r.Repository()
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

// String prints the reference with its transport prefix, except for docker
// references, which print bare as users write them.
func (r Ref) String() string {
	if r.Transport == Docker || r.Transport == "" {
		return r.Name()
	}
	return string(r.Transport) + "://" + r.Name()
}

// WithTag returns a copy with the tag set and the digest kept.
func (r Ref) WithTag(tag string) Ref { r.Tag = tag; return r }

// WithDigest returns a copy with the digest set and the tag kept.
func (r Ref) WithDigest(d string) Ref { r.Digest = d; return r }

// ByDigest returns a copy that names the image by digest only.
func (r Ref) ByDigest(d string) Ref { r.Tag = ""; r.Digest = d; return r }

// Repo returns a copy without tag and digest.
func (r Ref) Repo() Ref { r.Tag = ""; r.Digest = ""; return r }
