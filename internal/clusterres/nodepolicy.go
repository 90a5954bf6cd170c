package clusterres

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// Node-level signature configuration for plain Kubernetes/CRI-O (or
// podman) hosts, which have no machine-config operator to render the
// ClusterImagePolicy: a containers-registries.d(5) file and a
// containers-policy.json(5) fragment.

// RegistriesDEntry is one namespace of a registries.d file.
type RegistriesDEntry struct {
	// Lookaside is where OpenPGP ("simple signing") signatures are read
	// from, a URL base; empty for sigstore-only mirrors.
	Lookaside string `json:"lookaside,omitempty"`
	// UseSigstoreAttachments makes the node read cosign signatures stored
	// in the registry next to the image (sha256-<hex>.sig), which is where
	// airlock copies them.
	UseSigstoreAttachments bool `json:"use-sigstore-attachments,omitempty"`
}

// RegistriesD is a containers-registries.d YAML file.
type RegistriesD struct {
	Docker map[string]RegistriesDEntry `json:"docker"`
}

// RegistriesDConfig lists every mirror (at scope, as the IDMS names them)
// of sigstore, the pairs of images carrying cosign/sigstore signatures,
// with use-sigstore-attachments (and lookaside when OpenPGP signatures are
// published at a lookaside URL), and every mirror of openpgp, the pairs of
// images carrying OpenPGP ("simple signing", atomic) signatures, with
// lookaside. An entry of both has both. The keys are the MIRROR prefixes:
// the node looks the setting up for the registry it actually reads the
// image (and so the signature) from, not for the source name.
func RegistriesDConfig(sigstore, openpgp []Pair, scope Scope, lookaside string) (RegistriesD, error) {
	if lookaside != "" && !strings.HasPrefix(lookaside, "https://") && !strings.HasPrefix(lookaside, "http://") && !strings.HasPrefix(lookaside, "file://") {
		return RegistriesD{}, fmt.Errorf("lookaside %q: want an http://, https:// or file:// URL", lookaside)
	}
	if len(openpgp) > 0 && lookaside == "" {
		return RegistriesD{}, fmt.Errorf("registries.d: OpenPGP-signed images need the lookaside URL their signatures are served from")
	}
	out := RegistriesD{Docker: map[string]RegistriesDEntry{}}
	for _, e := range Entries(sigstore, scope) {
		for _, m := range e.Mirrors {
			out.Docker[m] = RegistriesDEntry{Lookaside: lookaside, UseSigstoreAttachments: true}
		}
	}
	for _, e := range Entries(openpgp, scope) {
		for _, m := range e.Mirrors {
			en := out.Docker[m]
			en.Lookaside = lookaside
			out.Docker[m] = en
		}
	}
	if len(out.Docker) == 0 {
		return RegistriesD{}, fmt.Errorf("registries.d: the plan mirrors nothing to a registry")
	}
	return out, nil
}

// YAML marshals the file (keys sorted).
func (r RegistriesD) YAML() ([]byte, error) {
	b, err := yaml.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("marshalling registries.d: %w", err)
	}
	return b, nil
}

// PolicyRequirement is one requirement of a policy.json scope
// (sigstoreSigned only).
type PolicyRequirement struct {
	Type           string                    `json:"type"`
	KeyPath        string                    `json:"keyPath,omitempty"`
	KeyData        []byte                    `json:"keyData,omitempty"`
	SignedIdentity *PolicyJSONSignedIdentity `json:"signedIdentity,omitempty"`
}

// PolicyJSONSignedIdentity is a policy.json signedIdentity (lower-case
// type names, dockerRepository, unlike the OpenShift API).
type PolicyJSONSignedIdentity struct {
	Type             string `json:"type"`
	DockerRepository string `json:"dockerRepository,omitempty"`
	Prefix           string `json:"prefix,omitempty"`
	SignedPrefix     string `json:"signedPrefix,omitempty"`
}

// PolicyJSON is the part of containers-policy.json airlock writes: the
// docker transport's scopes. It is a fragment to merge into the node's
// /etc/containers/policy.json (whose "default" stays the operator's choice).
type PolicyJSON struct {
	Transports map[string]map[string][]PolicyRequirement `json:"transports"`
}

// NodePolicyOptions configure the policy.json fragment.
type NodePolicyOptions struct {
	Keys     []SigstoreKey
	Identity *PolicyIdentity
	// KeyDir, when set, writes keyPath KeyDir/<key file name> (the keys are
	// installed on the node) instead of embedding keyData.
	KeyDir string
}

// NodePolicy builds the policy.json fragment requiring, for each source
// scope, a sigstore signature by every key (the requirements of a scope
// are all required, as with several ClusterImagePolicies).
func NodePolicy(scopes []string, o NodePolicyOptions) (PolicyJSON, error) {
	if len(o.Keys) == 0 {
		return PolicyJSON{}, fmt.Errorf("policy.json: no signature key given (--signature-key FILE)")
	}
	if len(scopes) == 0 {
		return PolicyJSON{}, fmt.Errorf("policy.json: no scope: the plan mirrors nothing from a registry")
	}
	if err := ValidateIdentity(o.Identity); err != nil {
		return PolicyJSON{}, fmt.Errorf("policy.json: %w", err)
	}
	id := nodeIdentity(o.Identity)
	var reqs []PolicyRequirement
	for _, k := range o.Keys {
		if _, err := ParsePublicKey(k.File, k.PEM); err != nil {
			return PolicyJSON{}, err
		}
		r := PolicyRequirement{Type: "sigstoreSigned", SignedIdentity: id}
		if o.KeyDir != "" {
			r.KeyPath = filepath.ToSlash(filepath.Join(o.KeyDir, filepath.Base(k.File)))
		} else {
			r.KeyData = k.PEM
		}
		reqs = append(reqs, r)
	}
	docker := map[string][]PolicyRequirement{}
	for _, s := range scopes {
		if err := ValidateScope(s); err != nil {
			return PolicyJSON{}, fmt.Errorf("policy.json: %w", err)
		}
		docker[s] = reqs
	}
	return PolicyJSON{Transports: map[string]map[string][]PolicyRequirement{"docker": docker}}, nil
}

func nodeIdentity(id *PolicyIdentity) *PolicyJSONSignedIdentity {
	if id == nil {
		return &PolicyJSONSignedIdentity{Type: "matchRepoDigestOrExact"}
	}
	switch id.MatchPolicy {
	case MatchRepository:
		return &PolicyJSONSignedIdentity{Type: "matchRepository"}
	case ExactRepository:
		return &PolicyJSONSignedIdentity{Type: "exactRepository", DockerRepository: id.ExactRepository.Repository}
	case RemapIdentity:
		return &PolicyJSONSignedIdentity{Type: "remapIdentity", Prefix: id.RemapIdentity.Prefix, SignedPrefix: id.RemapIdentity.SignedPrefix}
	}
	return &PolicyJSONSignedIdentity{Type: "matchRepoDigestOrExact"}
}

// JSON marshals the fragment indented, scopes sorted (encoding/json sorts
// map keys), with a final newline.
func (p PolicyJSON) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("marshalling policy.json: %w", err)
	}
	return append(b, '\n'), nil
}

// Scopes lists the docker scopes of the fragment, sorted.
func (p PolicyJSON) Scopes() []string {
	var out []string
	for s := range p.Transports["docker"] {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}
