package sigpolicy

import (
	"fmt"
	"strings"
)

// Identity is a signedIdentity rule: how the reference a signature names
// (its docker-reference) must relate to the image being checked.
type Identity struct {
	Type             string `json:"type"`
	DockerReference  string `json:"dockerReference,omitempty"`
	DockerRepository string `json:"dockerRepository,omitempty"`
	Prefix           string `json:"prefix,omitempty"`
	SignedPrefix     string `json:"signedPrefix,omitempty"`
}

// Identity rule types (containers-policy.json(5)).
const (
	MatchExact             = "matchExact"
	MatchRepoDigestOrExact = "matchRepoDigestOrExact"
	MatchRepository        = "matchRepository"
	ExactReference         = "exactReference"
	ExactRepository        = "exactRepository"
	RemapIdentity          = "remapIdentity"
)

func (id *Identity) check() error {
	if id == nil {
		return nil
	}
	switch id.Type {
	case MatchExact, MatchRepoDigestOrExact, MatchRepository:
	case ExactReference:
		if _, tag, dig := splitRef(id.DockerReference); tag == "" && dig == "" {
			return fmt.Errorf("exactReference needs a tagged or digested dockerReference, got %q", id.DockerReference)
		}
	case ExactRepository:
		if _, tag, dig := splitRef(id.DockerRepository); id.DockerRepository == "" || tag != "" || dig != "" {
			return fmt.Errorf("exactRepository needs a repository without tag or digest, got %q", id.DockerRepository)
		}
	case RemapIdentity:
		if id.Prefix == "" || id.SignedPrefix == "" {
			return fmt.Errorf("remapIdentity needs prefix and signedPrefix")
		}
	default:
		return fmt.Errorf("unknown type %q", id.Type)
	}
	return nil
}

// isDefault reports whether the rule is matchRepoDigestOrExact, the
// default of signedBy and sigstoreSigned.
func (id *Identity) isDefault() bool { return id == nil || id.Type == MatchRepoDigestOrExact }

// matches reports whether a signature claiming signed may stand for image.
func (id *Identity) matches(image, signed string) error {
	typ := MatchRepoDigestOrExact
	if id != nil {
		typ = id.Type
	}
	signed = normalize(signed)
	image = normalize(image)
	sRepo, sTag, sDig := splitRef(signed)
	iRepo, iTag, iDig := splitRef(image)
	mismatch := func(want string) error {
		return fmt.Errorf("signature names %q, %s wants %s", signed, typ, want)
	}
	switch typ {
	case MatchExact:
		if iDig != "" || iTag == "" || sRepo != iRepo || sTag != iTag || sDig != "" {
			return mismatch(fmt.Sprintf("exactly %q (a tagged reference)", image))
		}
	case MatchRepoDigestOrExact:
		if iDig != "" {
			if sRepo != iRepo {
				return mismatch("repository " + iRepo)
			}
			return nil
		}
		if sRepo != iRepo || sTag != iTag {
			return mismatch(fmt.Sprintf("exactly %q", image))
		}
	case MatchRepository:
		if sRepo != iRepo {
			return mismatch("repository " + iRepo)
		}
	case ExactReference:
		if signed != normalize(id.DockerReference) {
			return mismatch(fmt.Sprintf("%q", id.DockerReference))
		}
	case ExactRepository:
		if sRepo != normalize(id.DockerRepository) {
			return mismatch("repository " + id.DockerRepository)
		}
	case RemapIdentity:
		prefix := normalizePrefix(id.Prefix)
		if iRepo == prefix || strings.HasPrefix(iRepo, prefix+"/") {
			image = normalizePrefix(id.SignedPrefix) + strings.TrimPrefix(image, prefix)
		}
		return (*Identity)(nil).matches(image, signed)
	}
	return nil
}

// splitRef splits host/path[:tag][@digest].
func splitRef(s string) (repo, tag, digest string) {
	repo = s
	if i := strings.Index(repo, "@"); i >= 0 {
		repo, digest = repo[:i], repo[i+1:]
	}
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo, tag = repo[:i], repo[i+1:]
	}
	return repo, tag, digest
}

// normalize spells a reference the way docker does: a first component
// without '.' or ':' (and not localhost) is a docker.io repository,
// official images under library/.
func normalize(s string) string {
	first, rest, ok := strings.Cut(s, "/")
	if ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return s
	}
	if !ok {
		return "docker.io/library/" + s
	}
	return "docker.io/" + first + "/" + rest
}

// normalizePrefix is normalize for a remapIdentity prefix, which may be a
// host alone ("registry.redhat.io", "localhost:5000").
func normalizePrefix(s string) string {
	if !strings.Contains(s, "/") {
		return s
	}
	return normalize(s)
}
