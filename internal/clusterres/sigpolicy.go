package clusterres

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"sort"
	"strings"
)

// Signature policies: since OpenShift 4.21 CRI-O on every node enforces
// ClusterImagePolicy (cluster-wide) and ImagePolicy (one namespace) objects,
// so an image pulled through a mirror is admitted only if its sigstore
// signature is in the mirror and verifies with a key the cluster trusts.
// The scopes are the SOURCE repositories: the pod (or the release) names
// the source, the IDMS redirects the pull to the mirror, and the signature
// claims the identity the image was signed under, i.e. the source.

// MaxPolicyScopes is the most scopes one ClusterImagePolicy/ImagePolicy
// may list (the API rejects more); longer lists are split into objects.
const MaxPolicyScopes = 256

// Signed-identity match policies of config.openshift.io/v1 image policies.
const (
	// MatchRepoDigestOrExact (the cluster's default): a digest pull accepts
	// a signature for any tag of the same repository, a tag pull needs that
	// exact tag.
	MatchRepoDigestOrExact = "MatchRepoDigestOrExact"
	// MatchRepository accepts a signature for any image of the repository.
	MatchRepository = "MatchRepository"
	// ExactRepository accepts signatures claiming one given repository.
	ExactRepository = "ExactRepository"
	// RemapIdentity rewrites Prefix to SignedPrefix before matching, for
	// images signed under another name than the one the cluster pulls.
	RemapIdentity = "RemapIdentity"
)

// SigstoreKey is a cosign (sigstore) public key: File names it in errors
// and comments, PEM is the file as read.
type SigstoreKey struct {
	File string
	PEM  []byte
}

// ParsePublicKey checks that data (read from file) is one PEM-encoded
// public key as `cosign generate-key-pair` writes it (cosign.pub) and
// returns it. A private key is refused by name, as the cluster must never
// be handed one.
func ParsePublicKey(file string, data []byte) (SigstoreKey, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return SigstoreKey{}, fmt.Errorf("signature key %s: not a PEM file; give the cosign public key (cosign.pub, \"-----BEGIN PUBLIC KEY-----\")", file)
	}
	if strings.Contains(block.Type, "PRIVATE KEY") {
		return SigstoreKey{}, fmt.Errorf("signature key %s: is a private key (%s); give the public key (cosign public-key --key %s > cosign.pub)", file, block.Type, file)
	}
	if block.Type != "PUBLIC KEY" {
		return SigstoreKey{}, fmt.Errorf("signature key %s: PEM block %q, want \"PUBLIC KEY\" (a cosign public key)", file, block.Type)
	}
	if _, err := x509.ParsePKIXPublicKey(block.Bytes); err != nil {
		return SigstoreKey{}, fmt.Errorf("signature key %s: not a valid public key: %v", file, err)
	}
	if strings.TrimSpace(string(rest)) != "" {
		// keyData holds exactly one key; a second one would be ignored
		// silently by the node, which is worse than an error now.
		return SigstoreKey{}, fmt.Errorf("signature key %s: more than one PEM block; give one key per file (repeat --signature-key for more keys)", file)
	}
	return SigstoreKey{File: file, PEM: data}, nil
}

// ValidateScope checks one policy scope as airlock writes them: a registry
// host (with optional port), host/namespace or a repository, or
// "*.domain" for every subdomain. Tags and digests are refused: a scope
// derived from a mirror plan covers a repository, and a policy on a single
// tag would leave every other tag of it unverified.
func ValidateScope(s string) error {
	if s == "" {
		return fmt.Errorf("scope is empty")
	}
	if strings.Contains(s, "://") {
		return fmt.Errorf("scope %q: drop the transport, a scope is host[/path]", s)
	}
	if strings.Contains(s, "@") {
		return fmt.Errorf("scope %q: has a digest; a scope is a repository, namespace or registry (drop @...)", s)
	}
	host, path, _ := strings.Cut(s, "/")
	if strings.Contains(path, "*") || strings.Contains(strings.TrimPrefix(host, "*."), "*") {
		return fmt.Errorf("scope %q: a wildcard is allowed only as a leading \"*.\" of the host with no path (e.g. *.example.com)", s)
	}
	if strings.HasPrefix(host, "*.") && path != "" {
		return fmt.Errorf("scope %q: a wildcard is allowed only as a leading \"*.\" of the host with no path (e.g. *.example.com)", s)
	}
	if path != "" {
		last := path[strings.LastIndex(path, "/")+1:]
		if strings.Contains(last, ":") {
			return fmt.Errorf("scope %q: has a tag; a scope is a repository, namespace or registry (drop :%s)", s, last[strings.Index(last, ":")+1:])
		}
		for _, c := range strings.Split(path, "/") {
			if c == "" {
				return fmt.Errorf("scope %q: empty path component", s)
			}
		}
	}
	name, _, _ := strings.Cut(host, ":")
	if name != "localhost" && !strings.Contains(name, ".") {
		return fmt.Errorf("scope %q: the first component must be a registry host (a domain name with a dot, or localhost)", s)
	}
	return nil
}

// PolicyScopes returns the sorted, distinct source scopes of pairs at the
// requested scope, widened exactly where Entries widens the mirror sets, so
// the policy covers what the IDMS redirects.
func PolicyScopes(pairs []Pair, scope Scope) []string {
	seen := map[string]bool{}
	var out []string
	for _, e := range Entries(pairs, scope) {
		if !seen[e.Source] {
			seen[e.Source] = true
			out = append(out, e.Source)
		}
	}
	sort.Strings(out)
	// A repository inside another scope is covered by it (same keys, same
	// identity), so it is dropped: the policy lists each namespace once.
	kept := out[:0]
	for _, s := range out {
		covered := false
		for _, t := range out {
			if strings.HasPrefix(s, t+"/") {
				covered = true
				break
			}
		}
		if !covered {
			kept = append(kept, s)
		}
	}
	return kept
}

// PolicyIdentity is spec.policy.signedIdentity.
type PolicyIdentity struct {
	MatchPolicy     string                      `json:"matchPolicy"`
	ExactRepository *PolicyMatchExactRepository `json:"exactRepository,omitempty"`
	RemapIdentity   *PolicyMatchRemapIdentity   `json:"remapIdentity,omitempty"`
}

// PolicyMatchExactRepository is signedIdentity.exactRepository.
type PolicyMatchExactRepository struct {
	Repository string `json:"repository"`
}

// PolicyMatchRemapIdentity is signedIdentity.remapIdentity: a pulled
// reference starting with Prefix matches a signature for SignedPrefix+rest.
type PolicyMatchRemapIdentity struct {
	Prefix       string `json:"prefix"`
	SignedPrefix string `json:"signedPrefix"`
}

// PublicKeyRoot is rootOfTrust.publicKey. KeyData is the PEM file; as a
// []byte it is marshalled base64, the API's format.
type PublicKeyRoot struct {
	KeyData      []byte `json:"keyData"`
	RekorKeyData []byte `json:"rekorKeyData,omitempty"`
}

// PolicyRootOfTrust is spec.policy.rootOfTrust (PublicKey only: airlock
// is given cosign key files; Fulcio/PKI roots are written by hand).
type PolicyRootOfTrust struct {
	PolicyType string         `json:"policyType"`
	PublicKey  *PublicKeyRoot `json:"publicKey,omitempty"`
}

// SigstorePolicy is spec.policy.
type SigstorePolicy struct {
	RootOfTrust    PolicyRootOfTrust `json:"rootOfTrust"`
	SignedIdentity *PolicyIdentity   `json:"signedIdentity,omitempty"`
}

// ImagePolicySpec is the spec shared by ClusterImagePolicy and ImagePolicy.
type ImagePolicySpec struct {
	Scopes []string       `json:"scopes"`
	Policy SigstorePolicy `json:"policy"`
}

// ClusterImagePolicy is config.openshift.io/v1 ClusterImagePolicy.
type ClusterImagePolicy struct {
	TypeMeta
	Metadata ObjectMeta      `json:"metadata"`
	Spec     ImagePolicySpec `json:"spec"`
}

// ImagePolicy is config.openshift.io/v1 ImagePolicy, the namespaced form:
// it applies to pods of its namespace only.
type ImagePolicy struct {
	TypeMeta
	Metadata ObjectMeta      `json:"metadata"`
	Spec     ImagePolicySpec `json:"spec"`
}

// PolicyOptions configure the policy objects.
type PolicyOptions struct {
	// Name is the base name; objects are named "<Name>-0", "<Name>-1", ...
	Name string
	// Namespace is required for ImagePolicy and ignored otherwise.
	Namespace string
	Keys      []SigstoreKey
	// Identity is signedIdentity; nil leaves the cluster default
	// (MatchRepoDigestOrExact), right for images signed under their source
	// name.
	Identity    *PolicyIdentity
	Labels      map[string]string
	Annotations map[string]string
}

// ValidateIdentity checks a signedIdentity: the match policy is known and
// has exactly the fields it needs, and repositories/prefixes are scopes
// without a wildcard.
func ValidateIdentity(id *PolicyIdentity) error {
	if id == nil {
		return nil
	}
	repo := func(field, s string) error {
		if s == "" {
			return fmt.Errorf("signedIdentity %s: %s is required", id.MatchPolicy, field)
		}
		if strings.HasPrefix(s, "*") {
			return fmt.Errorf("signedIdentity %s: %s %q: no wildcard allowed", id.MatchPolicy, field, s)
		}
		if err := ValidateScope(s); err != nil {
			return fmt.Errorf("signedIdentity %s: %s: %w", id.MatchPolicy, field, err)
		}
		return nil
	}
	switch id.MatchPolicy {
	case MatchRepoDigestOrExact, MatchRepository:
		if id.ExactRepository != nil || id.RemapIdentity != nil {
			return fmt.Errorf("signedIdentity %s takes no exactRepository or remapIdentity", id.MatchPolicy)
		}
	case ExactRepository:
		if id.ExactRepository == nil || id.RemapIdentity != nil {
			return fmt.Errorf("signedIdentity ExactRepository needs exactRepository.repository and no remapIdentity")
		}
		return repo("exactRepository.repository", id.ExactRepository.Repository)
	case RemapIdentity:
		if id.RemapIdentity == nil || id.ExactRepository != nil {
			return fmt.Errorf("signedIdentity RemapIdentity needs remapIdentity.prefix and signedPrefix and no exactRepository")
		}
		if err := repo("remapIdentity.prefix", id.RemapIdentity.Prefix); err != nil {
			return err
		}
		return repo("remapIdentity.signedPrefix", id.RemapIdentity.SignedPrefix)
	default:
		return fmt.Errorf("signedIdentity matchPolicy %q: want %s, %s, %s or %s", id.MatchPolicy,
			MatchRepoDigestOrExact, MatchRepository, ExactRepository, RemapIdentity)
	}
	return nil
}

// policySpecs validates the input and returns one spec per key and chunk
// of at most MaxPolicyScopes scopes.
//
// Each key gets its own object because rootOfTrust holds one key. Every
// policy covering a scope applies (the node lists them all as requirements
// of that scope), so with two keys an image needs a signature by each: a
// second key is a second signer, not an alternative.
func policySpecs(scopes []string, o PolicyOptions) ([]ImagePolicySpec, error) {
	if o.Name == "" {
		return nil, fmt.Errorf("no object name given")
	}
	if errs := validateName(o.Name + "-0"); errs != "" {
		return nil, fmt.Errorf("object name %q: %s", o.Name, errs)
	}
	if len(o.Keys) == 0 {
		return nil, fmt.Errorf("no signature key given (--signature-key FILE)")
	}
	if len(scopes) == 0 {
		return nil, fmt.Errorf("no scope: the plan mirrors nothing from a registry")
	}
	for _, s := range scopes {
		if err := ValidateScope(s); err != nil {
			return nil, err
		}
	}
	if err := ValidateIdentity(o.Identity); err != nil {
		return nil, err
	}
	sorted := append([]string(nil), scopes...)
	sort.Strings(sorted)
	var specs []ImagePolicySpec
	for _, k := range o.Keys {
		if _, err := ParsePublicKey(k.File, k.PEM); err != nil {
			return nil, err
		}
		for i := 0; i < len(sorted); i += MaxPolicyScopes {
			part := sorted[i:min(i+MaxPolicyScopes, len(sorted))]
			spec := ImagePolicySpec{Scopes: append([]string(nil), part...)}
			spec.Policy.RootOfTrust = PolicyRootOfTrust{PolicyType: "PublicKey", PublicKey: &PublicKeyRoot{KeyData: k.PEM}}
			spec.Policy.SignedIdentity = o.Identity
			specs = append(specs, spec)
		}
	}
	return specs, nil
}

// ClusterImagePolicies builds the ClusterImagePolicy objects requiring a
// signature by each of o.Keys on every scope.
func ClusterImagePolicies(scopes []string, o PolicyOptions) ([]ClusterImagePolicy, error) {
	specs, err := policySpecs(scopes, o)
	if err != nil {
		return nil, fmt.Errorf("building ClusterImagePolicy %s: %w", o.Name, err)
	}
	out := make([]ClusterImagePolicy, len(specs))
	for i, s := range specs {
		out[i] = ClusterImagePolicy{
			TypeMeta: TypeMeta{"config.openshift.io/v1", "ClusterImagePolicy"},
			Metadata: ObjectMeta{Name: fmt.Sprintf("%s-%d", o.Name, i), Labels: copyMap(o.Labels), Annotations: copyMap(o.Annotations)},
			Spec:     s,
		}
	}
	return out, nil
}

// ImagePolicies builds the namespaced ImagePolicy objects (o.Namespace).
func ImagePolicies(scopes []string, o PolicyOptions) ([]ImagePolicy, error) {
	if o.Namespace == "" {
		return nil, fmt.Errorf("building ImagePolicy %s: no namespace given (an ImagePolicy applies to one namespace)", o.Name)
	}
	if err := ValidateNamespace(o.Namespace); err != nil {
		return nil, fmt.Errorf("building ImagePolicy %s: %w", o.Name, err)
	}
	specs, err := policySpecs(scopes, o)
	if err != nil {
		return nil, fmt.Errorf("building ImagePolicy %s: %w", o.Name, err)
	}
	out := make([]ImagePolicy, len(specs))
	for i, s := range specs {
		out[i] = ImagePolicy{
			TypeMeta: TypeMeta{"config.openshift.io/v1", "ImagePolicy"},
			Metadata: ObjectMeta{Name: fmt.Sprintf("%s-%d", o.Name, i), Namespace: o.Namespace, Labels: copyMap(o.Labels), Annotations: copyMap(o.Annotations)},
			Spec:     s,
		}
	}
	return out, nil
}

// ValidateNamespace checks a namespace name (a DNS-1123 label), so a
// front-end can refuse a bad --image-policy-namespace before copying.
func ValidateNamespace(ns string) error {
	if errs := validateLabel(ns); errs != "" {
		return fmt.Errorf("namespace %q: %s", ns, errs)
	}
	return nil
}

// Public is the parsed key (ParsePublicKey checked that it parses).
func (k SigstoreKey) Public() (crypto.PublicKey, error) {
	block, _ := pem.Decode(k.PEM)
	if block == nil {
		return nil, fmt.Errorf("signature key %s: not a PEM file", k.File)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("signature key %s: %w", k.File, err)
	}
	return pub, nil
}
