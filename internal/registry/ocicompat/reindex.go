package ocicompat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strings"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// ReindexResult says what Reindex changed.
type ReindexResult struct {
	Repositories int // repositories scanned
	Manifests    int // manifest revisions read
	Added        int // referrers entries written (were missing)
	Pruned       int // entries removed because their manifest is gone
}

// Reindex rebuilds the referrers index from the manifests in storage and
// removes entries of manifests that no longer exist. The index is normally
// kept up to date by the layer itself; Reindex is for content pushed while
// the layer was not in front of the registry (plain distribution, an older
// airlock), for a crash between distribution storing a manifest and the
// layer recording it, and for after garbage collection, which deletes
// manifests without going through the API. It is safe to run while the
// registry serves: adding an entry is idempotent, and an entry is only
// removed when its manifest is absent, with a re-check that restores it if
// the manifest is pushed again meanwhile.
func Reindex(ctx context.Context, drv storagedriver.StorageDriver, logger *slog.Logger) (ReindexResult, error) {
	if logger == nil {
		logger = slog.Default()
	}
	var res ReindexResult
	repos, err := listRepositories(ctx, drv)
	if err != nil {
		return res, err
	}
	s := &referrerStore{opts: Options{Driver: drv, Logger: logger}}
	for _, repo := range repos {
		res.Repositories++
		if err := reindexRepository(ctx, s, repo, &res); err != nil {
			return res, err
		}
		if err := pruneRepository(ctx, drv, repo, &res); err != nil {
			return res, err
		}
	}
	return res, nil
}

// listRepositories finds every repository much as distribution's catalog
// does: a directory holding "_manifests" (or "_layers": blobs pushed, no
// manifest yet) is a repository; other "_"-prefixed directories are
// repository internals and are not entered.
func listRepositories(ctx context.Context, drv storagedriver.StorageDriver) ([]string, error) {
	root := path.Join(storageRoot, "repositories")
	var repos []string
	seen := map[string]bool{}
	err := drv.Walk(ctx, root, func(fi storagedriver.FileInfo) error {
		if !fi.IsDir() {
			return nil
		}
		dir, base := path.Split(fi.Path())
		if !strings.HasPrefix(base, "_") {
			return nil
		}
		if base == "_manifests" || base == "_layers" {
			repo := strings.TrimPrefix(strings.TrimSuffix(dir, "/"), root+"/")
			if !seen[repo] {
				seen[repo] = true
				repos = append(repos, repo)
			}
		}
		return storagedriver.ErrSkipDir
	})
	if err != nil && !isNotFound(err) {
		return nil, fmt.Errorf("listing repositories under %s: %w", root, err)
	}
	return repos, nil
}

// reindexRepository records every manifest revision of repo that has a
// subject and is missing from the index.
func reindexRepository(ctx context.Context, s *referrerStore, repo string, res *ReindexResult) error {
	drv := s.opts.Driver
	revs := path.Join(storageRoot, "repositories", repo, "_manifests", "revisions")
	algs, err := drv.List(ctx, revs)
	if err != nil {
		if isNotFound(err) {
			return nil
		}
		return fmt.Errorf("listing manifests of %s: %w", repo, err)
	}
	var revisions []digest.Digest
	for _, algDir := range algs {
		alg := digest.Algorithm(path.Base(algDir))
		encs, err := drv.List(ctx, algDir)
		if err != nil {
			if isNotFound(err) {
				continue
			}
			return fmt.Errorf("listing manifests of %s: %w", repo, err)
		}
		for _, encDir := range encs {
			if rev := digest.NewDigestFromEncoded(alg, path.Base(encDir)); rev.Validate() == nil {
				revisions = append(revisions, rev)
			}
		}
	}
	// A manifest pushed by sha512 is stored by distribution under its
	// sha256 too; the client knows only the sha512 name, which is the one
	// the push indexed. Indexing the sha256 revision as well would list
	// the same referrer twice.
	aliased := map[digest.Digest]bool{}
	for _, rev := range revisions {
		if rev.Algorithm() == digest.Canonical {
			continue
		}
		if target, err := readLink(ctx, drv, manifestRevisionLink(repo, rev)); err == nil {
			aliased[target] = true
		}
	}
	for _, rev := range revisions {
		if aliased[rev] {
			continue
		}
		if err := reindexManifest(ctx, s, repo, rev, res); err != nil {
			return err
		}
	}
	return nil
}

func reindexManifest(ctx context.Context, s *referrerStore, repo string, rev digest.Digest, res *ReindexResult) error {
	drv := s.opts.Driver
	canonical, err := readLink(ctx, drv, manifestRevisionLink(repo, rev))
	if err != nil {
		if isNotFound(err) {
			return nil // deleted meanwhile
		}
		return fmt.Errorf("reading manifest %s@%s: %w", repo, rev, err)
	}
	st, err := drv.Stat(ctx, blobData(canonical))
	if err != nil {
		if isNotFound(err) {
			// Dangling link (blob garbage-collected): nothing to index.
			return nil
		}
		return fmt.Errorf("reading manifest %s@%s: %w", repo, rev, err)
	}
	if st.Size() > maxManifestSize {
		return nil // not a manifest distribution would have accepted
	}
	body, err := drv.GetContent(ctx, blobData(canonical))
	if err != nil {
		return fmt.Errorf("reading manifest %s@%s: %w", repo, rev, err)
	}
	res.Manifests++
	var fields manifestFields
	if json.Unmarshal(body, &fields) != nil || fields.Subject == nil || fields.Subject.Digest.Validate() != nil {
		return nil
	}
	entry := referrerEntry(repo, fields.Subject.Digest, rev)
	if ok, err := exists(ctx, drv, entry); err != nil {
		return fmt.Errorf("checking %s: %w", entry, err)
	} else if ok {
		return nil
	}
	// The push's Content-Type is not stored; the manifest's mediaType
	// usually is, and otherwise its shape tells.
	contentType := v1.MediaTypeImageManifest
	if fields.Manifests != nil {
		contentType = v1.MediaTypeImageIndex
	}
	desc := referrerDescriptor(fields, contentType, rev, int64(len(body)))
	if err := s.add(ctx, repo, fields.Subject.Digest, desc); err != nil {
		return err
	}
	res.Added++
	return nil
}

// pruneRepository removes index entries of repo whose manifest is gone.
func pruneRepository(ctx context.Context, drv storagedriver.StorageDriver, repo string, res *ReindexResult) error {
	root := path.Join(storageRoot, "repositories", repo, "_referrers")
	var entries []string
	err := drv.Walk(ctx, root, func(fi storagedriver.FileInfo) error {
		if !fi.IsDir() {
			entries = append(entries, fi.Path())
		}
		return nil
	})
	if err != nil {
		if isNotFound(err) {
			return nil
		}
		return fmt.Errorf("listing the referrers index of %s: %w", repo, err)
	}
	for _, entry := range entries {
		ref, ok := parseReferrerEntryName(entry)
		if !ok {
			continue
		}
		link := manifestRevisionLink(repo, ref)
		live, err := exists(ctx, drv, link)
		if err != nil {
			return fmt.Errorf("checking %s: %w", link, err)
		}
		if live {
			continue
		}
		content, err := drv.GetContent(ctx, entry)
		if err != nil {
			if isNotFound(err) {
				continue
			}
			return fmt.Errorf("reading %s: %w", entry, err)
		}
		if err := drv.Delete(ctx, entry); err != nil && !isNotFound(err) {
			return fmt.Errorf("removing stale referrers entry %s: %w", entry, err)
		}
		// A push of the same referrer may have landed between the check
		// and the delete; it writes its link before its entry, so seeing
		// the link now means the entry we removed must come back.
		if live, err := exists(ctx, drv, link); err != nil {
			return errors.Join(fmt.Errorf("re-checking %s: %w", link, err),
				drv.PutContent(ctx, entry, content))
		} else if live {
			if err := drv.PutContent(ctx, entry, content); err != nil {
				return fmt.Errorf("restoring referrers entry %s: %w", entry, err)
			}
			continue
		}
		res.Pruned++
	}
	return nil
}

// ReferrerSubjects returns, per repository, the subject of every indexed
// referrer (referrer digest → subject digest). Garbage collection uses it
// to keep the signatures, SBOMs and attestations of the images it keeps:
// those are pushed by digest, so a plain "delete untagged" would remove
// them from under images that are still in use.
func ReferrerSubjects(ctx context.Context, drv storagedriver.StorageDriver) (map[string]map[digest.Digest]digest.Digest, error) {
	repos, err := listRepositories(ctx, drv)
	if err != nil {
		return nil, err
	}
	out := map[string]map[digest.Digest]digest.Digest{}
	for _, repo := range repos {
		dir := path.Join(storageRoot, "repositories", repo, "_referrers")
		algs, err := drv.List(ctx, dir)
		if err != nil {
			if isNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("listing referrers of %s: %w", repo, err)
		}
		for _, algDir := range algs {
			subjects, err := drv.List(ctx, algDir)
			if err != nil && !isNotFound(err) {
				return nil, fmt.Errorf("listing referrers of %s: %w", repo, err)
			}
			for _, subjDir := range subjects {
				subject := digest.NewDigestFromEncoded(digest.Algorithm(path.Base(algDir)), path.Base(subjDir))
				if subject.Validate() != nil {
					continue
				}
				entries, err := drv.List(ctx, subjDir)
				if err != nil && !isNotFound(err) {
					return nil, fmt.Errorf("listing referrers of %s@%s: %w", repo, subject, err)
				}
				for _, e := range entries {
					if ref, ok := parseReferrerEntryName(e); ok {
						if out[repo] == nil {
							out[repo] = map[digest.Digest]digest.Digest{}
						}
						out[repo][ref] = subject
					}
				}
			}
		}
	}
	return out, nil
}
