package registry

import (
	"context"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// keepReferrers wraps the namespace MarkAndSweep walks so that, with
// RemoveUntagged, a referrer (signature, SBOM) counts as tagged while its
// subject does: distribution only asks the tag service whether a manifest
// is tagged, and answering "yes" for live referrers makes it mark them and
// their blobs like any tagged image.
type keepReferrers struct {
	distribution.Namespace
	subjects map[string]map[digest.Digest]digest.Digest // repo → referrer → subject
}

// Enumerate is needed explicitly: MarkAndSweep type-asserts the namespace
// to RepositoryEnumerator, which embedding an interface does not carry.
func (k keepReferrers) Enumerate(ctx context.Context, f func(string) error) error {
	return k.Namespace.(distribution.RepositoryEnumerator).Enumerate(ctx, f)
}

func (k keepReferrers) Repository(ctx context.Context, name reference.Named) (distribution.Repository, error) {
	r, err := k.Namespace.Repository(ctx, name)
	if err != nil || len(k.subjects[name.Name()]) == 0 {
		return r, err
	}
	return keepRepo{Repository: r, subjects: k.subjects[name.Name()]}, nil
}

type keepRepo struct {
	distribution.Repository
	subjects map[digest.Digest]digest.Digest
}

func (r keepRepo) Tags(ctx context.Context) distribution.TagService {
	return keepTags{TagService: r.Repository.Tags(ctx), subjects: r.subjects}
}

type keepTags struct {
	distribution.TagService
	subjects map[digest.Digest]digest.Digest
}

// Lookup reports a referrer as tagged when the chain of subjects above it
// (a signature of a signature of an image) ends at a tagged manifest.
func (t keepTags) Lookup(ctx context.Context, desc v1.Descriptor) ([]string, error) {
	d := desc.Digest
	for depth := 0; ; depth++ {
		tags, err := t.TagService.Lookup(ctx, v1.Descriptor{Digest: d})
		if err != nil || len(tags) > 0 {
			if depth > 0 && len(tags) > 0 {
				return []string{"referrer-of:" + d.String()}, nil
			}
			return tags, err
		}
		subject, ok := t.subjects[d]
		if !ok || depth >= 16 {
			return nil, nil
		}
		d = subject
	}
}
