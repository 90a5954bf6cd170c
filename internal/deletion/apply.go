package deletion

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/airlock-mirror/airlock/internal/ref"
)

// Access says how Apply reaches the registry.
type Access struct {
	// Registry, when set, replaces the host of every imageReference (the
	// in-process host of the embedded registry opened on its storage).
	Registry string
	// Insecure allows plain HTTP.
	Insecure bool
	// Remote are the options of every API call (transport, auth).
	Remote []remote.Option
}

// Result says what Apply did; every list names repo@digest or repo:tag.
type Result struct {
	// Deleted manifests (with every tag pointing to them).
	Deleted []string `json:"deleted,omitempty"`
	// Untagged are tags removed while their manifest stays, because a tag
	// the list does not name still points to it.
	Untagged []string `json:"untagged,omitempty"`
	// Missing were already gone.
	Missing  []string `json:"missing,omitempty"`
	Failures []string `json:"failures,omitempty"`
}

// target is one manifest to delete, with the listed tags naming it.
type target struct {
	repo   name.Repository
	digest string
	tags   map[string]bool
	item   string // first imageReference, for messages
}

// Apply deletes the listed manifests through the registry API: by digest,
// which removes every tag pointing to the manifest, unless a tag the list
// does not name also points to it, in which case only the listed tags go
// (deleting another selection's image is worse than keeping a manifest).
// A failure names the image and does not stop the others.
func Apply(ctx context.Context, l List, a Access) (Result, error) {
	var res Result
	opts := append(append([]remote.Option(nil), a.Remote...), remote.WithContext(ctx))
	var order []string
	targets := map[string]*target{}
	for _, it := range l.Items {
		r, err := it.Target()
		if err != nil {
			res.Failures = append(res.Failures, fmt.Sprintf("%s: %v", it.ImageReference, err))
			continue
		}
		if a.Registry != "" {
			r.Registry = a.Registry
		}
		repo, err := a.repo(r)
		if err != nil {
			res.Failures = append(res.Failures, fmt.Sprintf("%s: %v", it.ImageReference, err))
			continue
		}
		digest := r.Digest
		if digest == "" {
			desc, err := remote.Head(repo.Tag(r.Tag), opts...)
			if isNotFound(err) {
				res.Missing = append(res.Missing, repo.RepositoryStr()+":"+r.Tag)
				continue
			}
			if err != nil {
				res.Failures = append(res.Failures, fmt.Sprintf("%s: resolving the tag: %v", it.ImageReference, err))
				continue
			}
			digest = desc.Digest.String()
		}
		key := repo.String() + "@" + digest
		t := targets[key]
		if t == nil {
			t = &target{repo: repo, digest: digest, tags: map[string]bool{}, item: it.ImageReference}
			targets[key] = t
			order = append(order, key)
		}
		if r.Tag != "" {
			t.tags[r.Tag] = true
		}
	}
	byRepo := map[string][]*target{}
	var repos []string
	for _, key := range order {
		t := targets[key]
		if byRepo[t.repo.String()] == nil {
			repos = append(repos, t.repo.String())
		}
		byRepo[t.repo.String()] = append(byRepo[t.repo.String()], t)
	}
	for _, rk := range repos {
		applyRepo(byRepo[rk], opts, &res)
	}
	if len(res.Failures) > 0 {
		return res, fmt.Errorf("%d of %d deletions failed: %s", len(res.Failures), len(l.Items), strings.Join(res.Failures, "; "))
	}
	return res, nil
}

func (a Access) repo(r ref.Ref) (name.Repository, error) {
	var o []name.Option
	if a.Insecure || a.Registry != "" {
		o = append(o, name.Insecure)
	}
	return name.NewRepository(r.Registry+"/"+r.Path, o...)
}

// applyRepo deletes the targets of one repository. An index goes with its
// child manifests (they are separate manifests of the repository, and would
// keep their blobs alive), except children a remaining tag still needs.
func applyRepo(ts []*target, opts []remote.Option, res *Result) {
	repo := ts[0].repo
	byDigest, err := tagsByDigest(repo, opts)
	if err != nil {
		for _, t := range ts {
			res.Failures = append(res.Failures, fmt.Sprintf("%s: listing the tags of %s: %v", t.item, repo.RepositoryStr(), err))
		}
		return
	}
	var deletes []*target
	gone := map[string]bool{}
	for _, t := range ts {
		var foreign []string
		for _, tag := range byDigest[t.digest] {
			if !t.tags[tag] {
				foreign = append(foreign, tag)
			}
		}
		if len(foreign) == 0 {
			deletes = append(deletes, t)
			gone[t.digest] = true
			continue
		}
		tags := make([]string, 0, len(t.tags))
		for tag := range t.tags {
			tags = append(tags, tag)
		}
		sort.Strings(tags)
		for _, tag := range tags {
			if err := remote.Delete(repo.Tag(tag), opts...); err != nil && !isNotFound(err) {
				res.Failures = append(res.Failures, fmt.Sprintf("%s: deleting tag %s: %v", t.item, tag, err))
				continue
			}
			res.Untagged = append(res.Untagged, repo.RepositoryStr()+":"+tag)
		}
	}
	// Children every remaining tagged manifest needs.
	needed := map[string]bool{}
	for d := range byDigest {
		if !gone[d] {
			children(repo, d, opts, needed)
		}
	}
	for _, t := range deletes {
		kids := map[string]bool{}
		children(repo, t.digest, opts, kids)
		err := remote.Delete(repo.Digest(t.digest), opts...)
		switch {
		case isNotFound(err):
			res.Missing = append(res.Missing, repo.RepositoryStr()+"@"+t.digest)
		case err != nil:
			res.Failures = append(res.Failures, fmt.Sprintf("%s: deleting %s@%s: %v", t.item, repo.RepositoryStr(), t.digest, err))
			continue
		default:
			res.Deleted = append(res.Deleted, repo.RepositoryStr()+"@"+t.digest)
		}
		ks := make([]string, 0, len(kids))
		for k := range kids {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		for _, k := range ks {
			if needed[k] || len(byDigest[k]) > 0 {
				continue
			}
			if err := remote.Delete(repo.Digest(k), opts...); err != nil && !isNotFound(err) {
				res.Failures = append(res.Failures, fmt.Sprintf("%s: deleting its child manifest %s: %v", t.item, k, err))
				continue
			}
			needed[k] = true // once
			res.Deleted = append(res.Deleted, repo.RepositoryStr()+"@"+k)
		}
	}
}

// children adds the manifests an index at digest refers to, recursively;
// a plain image (or an unreadable manifest) adds nothing.
func children(repo name.Repository, digest string, opts []remote.Option, into map[string]bool) {
	desc, err := remote.Get(repo.Digest(digest), opts...)
	if err != nil || !desc.MediaType.IsIndex() {
		return
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		return
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return
	}
	for _, m := range im.Manifests {
		d := m.Digest.String()
		if !into[d] {
			into[d] = true
			children(repo, d, opts, into)
		}
	}
}

// tagsByDigest maps each manifest digest of repo to the tags naming it.
func tagsByDigest(repo name.Repository, opts []remote.Option) (map[string][]string, error) {
	tags, err := remote.List(repo, opts...)
	if isNotFound(err) {
		return map[string][]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, tag := range tags {
		desc, err := remote.Head(repo.Tag(tag), opts...)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("tag %s: %w", tag, err)
		}
		out[desc.Digest.String()] = append(out[desc.Digest.String()], tag)
	}
	return out, nil
}

func isNotFound(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode == http.StatusNotFound
}
