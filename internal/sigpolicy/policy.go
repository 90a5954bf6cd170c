// Package sigpolicy decides, before an image is mirrored, whether its
// signatures satisfy a containers-policy.json (containers-policy.json(5),
// the file podman, skopeo and CRI-O read): per transport scope a list of
// requirements, all of which must hold — insecureAcceptAnything, reject,
// signedBy (OpenPGP "atomic container signatures" from a registries.d
// lookaside) and sigstoreSigned (cosign signatures: the tag-style
// sha256-<hex>.sig simple-signing payloads and Sigstore bundles stored as
// OCI referrers), each with its signedIdentity rule.
//
// Only what can be checked offline is accepted: sigstoreSigned with public
// keys (keyPath, keyPaths, keyData, keyDatas). A Fulcio/Rekor or PKI root
// of trust is refused when the policy is loaded, naming the scope, rather
// than accepted unchecked.
package sigpolicy

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/airlock-mirror/airlock/internal/clusterres"
	"github.com/airlock-mirror/airlock/internal/release/signature"
)

// Requirement types (containers-policy.json(5)).
const (
	TypeAccept         = "insecureAcceptAnything"
	TypeReject         = "reject"
	TypeSignedBy       = "signedBy"
	TypeSigstoreSigned = "sigstoreSigned"
)

// Requirement is one entry of a scope's list.
type Requirement struct {
	Type           string    `json:"type"`
	KeyType        string    `json:"keyType,omitempty"`
	KeyPath        string    `json:"keyPath,omitempty"`
	KeyPaths       []string  `json:"keyPaths,omitempty"`
	KeyData        string    `json:"keyData,omitempty"`
	KeyDatas       []string  `json:"keyDatas,omitempty"`
	SignedIdentity *Identity `json:"signedIdentity,omitempty"`
	// The keyless and transparency-log fields of sigstoreSigned are read
	// only to be refused by name (keylessFields): decoding them as unknown
	// fields would give a vaguer error, ignoring them would accept images
	// the policy's author meant to refuse.
	Fulcio              any      `json:"fulcio,omitempty"`
	PKI                 any      `json:"pki,omitempty"`
	RekorPublicKeyPath  string   `json:"rekorPublicKeyPath,omitempty"`
	RekorPublicKeyPaths []string `json:"rekorPublicKeyPaths,omitempty"`
	RekorPublicKeyData  string   `json:"rekorPublicKeyData,omitempty"`
	RekorPublicKeyDatas []string `json:"rekorPublicKeyDatas,omitempty"`

	// Loaded keys: sigstore public keys or an OpenPGP keyring.
	keys    []crypto.PublicKey
	keyring openpgp.EntityList
}

// Policy is a loaded containers-policy.json.
type Policy struct {
	// File is where it was read from (named in every refusal).
	File       string
	Default    []Requirement                       `json:"default"`
	Transports map[string]map[string][]Requirement `json:"transports"`
	// Lookaside is the registries.d configuration signedBy reads
	// OpenPGP signatures from (nil: none configured).
	Lookaside *RegistriesD `json:"-"`
}

// Load reads and checks a policy file: every requirement type is known,
// every key file readable and a key, every identity rule well formed.
// Relative key paths are relative to the policy file.
func Load(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading signature policy: %w", err)
	}
	return Parse(data, path)
}

// Parse is Load of data read from file.
func Parse(data []byte, file string) (*Policy, error) {
	p := &Policy{File: file}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(p); err != nil {
		return nil, fmt.Errorf("%s: not a containers-policy.json: %w", file, err)
	}
	if len(p.Default) == 0 {
		return nil, fmt.Errorf("%s: \"default\" is empty: containers-policy.json requires it (use [{\"type\":\"reject\"}] to refuse unlisted images)", file)
	}
	for i := range p.Default {
		if err := p.load(&p.Default[i], "default"); err != nil {
			return nil, err
		}
	}
	for transport, scopes := range p.Transports {
		for scope, reqs := range scopes {
			where := fmt.Sprintf("transports.%s[%q]", transport, scope)
			if transport == "docker" {
				if err := checkScope(scope); err != nil {
					return nil, fmt.Errorf("%s: %s: %w", file, where, err)
				}
			}
			if len(reqs) == 0 {
				return nil, fmt.Errorf("%s: %s: empty requirement list (an empty list is an error in containers-policy.json; say insecureAcceptAnything or reject)", file, where)
			}
			for i := range reqs {
				if err := p.load(&reqs[i], where); err != nil {
					return nil, err
				}
			}
		}
	}
	return p, nil
}

func (p *Policy) load(r *Requirement, where string) error {
	fail := func(format string, a ...any) error {
		return fmt.Errorf("%s: %s: %s requirement: %s", p.File, where, r.Type, fmt.Sprintf(format, a...))
	}
	if err := r.SignedIdentity.check(); err != nil {
		return fail("signedIdentity: %v", err)
	}
	if kl := r.keylessFields(); len(kl) > 0 {
		if r.Type != TypeSigstoreSigned {
			return fail("%s: only sigstoreSigned takes these fields", strings.Join(kl, ", "))
		}
		return fail("%s: keyless (Fulcio certificate), PKI and Rekor transparency-log signatures are not supported, "+
			"airlock verifies cosign signatures offline against public keys: give keyPath, keyPaths, keyData or keyDatas "+
			"without fulcio, pki or rekorPublicKey*, and sign with a key pair (cosign sign --key)", strings.Join(kl, ", "))
	}
	switch r.Type {
	case TypeAccept, TypeReject:
		return nil
	case TypeSignedBy:
		if r.KeyType != "GPGKeys" {
			return fail("keyType %q: only GPGKeys is defined", r.KeyType)
		}
		for _, src := range p.keySources(r) {
			kr, err := readKeyring(src)
			if err != nil {
				return fail("%v", err)
			}
			r.keyring = append(r.keyring, kr...)
		}
		if len(r.keyring) == 0 {
			return fail("no keyPath, keyPaths or keyData")
		}
	case TypeSigstoreSigned:
		for _, src := range p.keySources(r) {
			k, err := readPublicKey(src)
			if err != nil {
				return fail("%v", err)
			}
			r.keys = append(r.keys, k)
		}
		if len(r.keys) == 0 {
			return fail("no keyPath, keyPaths, keyData or keyDatas")
		}
	case "":
		return fmt.Errorf("%s: %s: a requirement without \"type\"", p.File, where)
	default:
		return fail("unknown type (want insecureAcceptAnything, reject, signedBy or sigstoreSigned)")
	}
	return nil
}

// keylessFields names the keyless / transparency-log fields r sets.
// A rekorPublicKey* beside a keyPath is refused too, not ignored: in
// containers/image it makes a Rekor inclusion proof mandatory, which
// airlock does not check, so accepting it would pass signatures the
// policy refuses.
func (r *Requirement) keylessFields() []string {
	var out []string
	if r.Fulcio != nil {
		out = append(out, "fulcio")
	}
	if r.PKI != nil {
		out = append(out, "pki")
	}
	if r.RekorPublicKeyPath != "" {
		out = append(out, "rekorPublicKeyPath")
	}
	if len(r.RekorPublicKeyPaths) > 0 {
		out = append(out, "rekorPublicKeyPaths")
	}
	if r.RekorPublicKeyData != "" {
		out = append(out, "rekorPublicKeyData")
	}
	if len(r.RekorPublicKeyDatas) > 0 {
		out = append(out, "rekorPublicKeyDatas")
	}
	return out
}

// keySource is a key file path or inline base64 key data.
type keySource struct {
	path string
	data []byte
	err  error
}

func (p *Policy) keySources(r *Requirement) []keySource {
	var out []keySource
	for _, path := range append(nonEmpty(r.KeyPath), r.KeyPaths...) {
		if !filepath.IsAbs(path) {
			path = filepath.Join(filepath.Dir(p.File), path)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			err = fmt.Errorf("key file: %w", err)
		}
		out = append(out, keySource{path: path, data: data, err: err})
	}
	for i, d := range append(nonEmpty(r.KeyData), r.KeyDatas...) {
		data, err := base64.StdEncoding.DecodeString(d)
		if err != nil {
			err = fmt.Errorf("keyData #%d: not base64: %w", i+1, err)
		}
		out = append(out, keySource{path: fmt.Sprintf("keyData #%d", i+1), data: data, err: err})
	}
	return out
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

func readPublicKey(src keySource) (crypto.PublicKey, error) {
	if src.err != nil {
		return nil, src.err
	}
	key, err := clusterres.ParsePublicKey(src.path, src.data)
	if err != nil {
		return nil, err
	}
	k, err := key.Public()
	if err != nil {
		return nil, err
	}
	switch k.(type) {
	case *ecdsa.PublicKey, ed25519.PublicKey, *rsa.PublicKey:
		return k, nil
	}
	return nil, fmt.Errorf("%s: unsupported key type %T", src.path, k)
}

func readKeyring(src keySource) (openpgp.EntityList, error) {
	if src.err != nil {
		return nil, src.err
	}
	kr, err := signature.ParseKeyring(src.data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src.path, err)
	}
	return kr, nil
}

// checkScope refuses docker scopes containers/image would refuse: a
// scope names a host, a namespace, a repository or a tagged/digested
// image, or *.domain.
func checkScope(scope string) error {
	if scope == "" {
		return nil
	}
	if strings.HasPrefix(scope, "*.") {
		if strings.ContainsAny(scope[2:], "/*@:") {
			return fmt.Errorf("a wildcard scope is *.DOMAIN only")
		}
		return nil
	}
	if strings.Contains(scope, "*") {
		return fmt.Errorf("a wildcard is only allowed as the leading *. of a domain")
	}
	if strings.HasSuffix(scope, "/") || strings.Contains(scope, "//") || strings.Contains(scope, "://") {
		return fmt.Errorf("not a registry, namespace or image reference")
	}
	return nil
}

// For returns the requirements applying to image (a docker reference,
// "host/path[:tag][@digest]") and the scope that matched: the most
// specific scope of the docker transport (the reference, the repository,
// each enclosing namespace, the host, *.domain wildcards from the most
// specific), else the transport default (""), else the global default.
func (p *Policy) For(image string) (scope string, reqs []Requirement) {
	scopes := p.Transports["docker"]
	for _, s := range candidateScopes(image) {
		if r, ok := scopes[s]; ok {
			return s, r
		}
	}
	if r, ok := scopes[""]; ok {
		return `docker ""`, r
	}
	return "default", p.Default
}

func candidateScopes(image string) []string {
	var out []string
	repo := image
	if i := strings.Index(repo, "@"); i >= 0 {
		out = append(out, image)
		repo = repo[:i]
	}
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		out = append(out, repo)
		repo = repo[:i]
	}
	for r := repo; r != ""; {
		out = append(out, r)
		i := strings.LastIndex(r, "/")
		if i < 0 {
			break
		}
		r = r[:i]
	}
	host, _, _ := strings.Cut(repo, "/")
	host, _, _ = strings.Cut(host, ":")
	labels := strings.Split(host, ".")
	for i := 1; i < len(labels); i++ {
		out = append(out, "*."+strings.Join(labels[i:], "."))
	}
	return out
}

// Scopes lists the docker scopes of the policy, sorted (for messages).
func (p *Policy) Scopes() []string {
	var out []string
	for s := range p.Transports["docker"] {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}
