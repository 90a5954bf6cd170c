package ocicompat

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
)

// distribution v3.1.2 accepts blobs pushed by sha512 but stores them by
// sha256 and then reports the sha256 digest in Docker-Content-Digest and
// Location, so clients that verify the digest they pushed reject the
// response. It also breaks cross-repository mounts by sha512 (it links the
// sha512 name to a sha512 blob path that does not exist). The handlers here
// put the client's digest back and make the mount work.

// serveAliasedRead serves GET/HEAD of a blob or manifest addressed by a
// non-canonical digest, reporting that digest instead of the canonical one.
func (h *handler) serveAliasedRead(w http.ResponseWriter, r *http.Request, requested digest.Digest) {
	hook := &headerHook{ResponseWriter: w, onHeader: func(status int, hdr http.Header) {
		if status >= 300 && status != http.StatusNotModified {
			return
		}
		if cur, err := digest.Parse(hdr.Get("Docker-Content-Digest")); err == nil {
			rewriteDigestHeaders(hdr, cur, requested)
		}
	}}
	h.next.ServeHTTP(hook, r)
}

// serveAliasedUploadPut completes a blob upload whose digest parameter is
// non-canonical, reporting that digest in the 201 response.
func (h *handler) serveAliasedUploadPut(w http.ResponseWriter, r *http.Request, requested digest.Digest) {
	hook := &headerHook{ResponseWriter: w, onHeader: func(status int, hdr http.Header) {
		if status != http.StatusCreated {
			return
		}
		if cur, err := digest.Parse(hdr.Get("Docker-Content-Digest")); err == nil {
			rewriteDigestHeaders(hdr, cur, requested)
		}
	}}
	h.next.ServeHTTP(hook, r)
}

// serveAliasedMount performs POST /v2/<repo>/blobs/uploads/?mount=<sha512>&from=<src>.
// The source repository links the sha512 name to the canonical sha256
// blob; the mount is done by that canonical digest and the sha512 name is
// then linked in the target repository too. When the source does not have
// the blob, distribution's normal answer (202, start an upload) is kept.
func (h *handler) serveAliasedMount(w http.ResponseWriter, r *http.Request, repo, from string, requested digest.Digest) {
	ctx := r.Context()
	canonical, err := readLink(ctx, h.opts.Driver, layerLink(from, requested))
	if err != nil || canonical.Algorithm() != digest.Canonical {
		if err != nil && !isNotFound(err) {
			h.opts.Logger.Warn("resolving mount source failed", "from", from, "digest", requested, "error", err)
		}
		h.next.ServeHTTP(w, r)
		return
	}
	fwd := r.Clone(ctx)
	q := fwd.URL.Query()
	q.Set("mount", canonical.String())
	fwd.URL.RawQuery = q.Encode()
	fwd.RequestURI = fwd.URL.RequestURI()

	rec := newBufferedResponse()
	h.next.ServeHTTP(rec, fwd)
	if rec.status == http.StatusCreated {
		p := layerLink(repo, requested)
		if err := h.opts.Driver.PutContent(ctx, p, []byte(canonical.String())); err != nil {
			h.opts.Logger.Error("aliasing mounted blob failed", "repository", repo, "digest", requested, "path", p, "error", err)
			writeError(w, http.StatusInternalServerError, "UNKNOWN", "linking the mounted blob by "+requested.String()+" failed; retry the mount")
			return
		}
		rewriteDigestHeaders(rec.header, canonical, requested)
	}
	rec.copyTo(w)
}

// serveMonolithicPost performs POST /v2/<repo>/blobs/uploads/?digest=<d>
// with the blob as the body: the spec's single-request upload, which
// distribution v3.1.2 ignores (it opens an empty session and answers 202,
// so the client must send the body a second time). Here the session is
// opened and the body streamed into its closing PUT, both through
// distribution, so auth, digest verification and storage stay distribution's.
func (h *handler) serveMonolithicPost(w http.ResponseWriter, r *http.Request, requested digest.Digest) {
	open := r.Clone(r.Context())
	q := open.URL.Query()
	q.Del("digest")
	open.URL.RawQuery = q.Encode()
	open.RequestURI = open.URL.RequestURI()
	open.Body = http.NoBody
	open.ContentLength = 0
	open.Header.Del("Content-Length")
	rec := newBufferedResponse()
	h.next.ServeHTTP(rec, open)
	if rec.status != http.StatusAccepted {
		rec.copyTo(w)
		return
	}
	loc, err := url.Parse(rec.header.Get("Location"))
	if err != nil || loc.Path == "" {
		h.opts.Logger.Error("upload session without a usable Location", "location", rec.header.Get("Location"), "error", err)
		writeError(w, http.StatusInternalServerError, "UNKNOWN", "the registry opened an upload session without a usable Location")
		return
	}
	put := r.Clone(r.Context())
	put.Method = http.MethodPut
	put.URL.Path, put.URL.RawPath = loc.Path, ""
	pq := loc.Query()
	pq.Set("digest", requested.String())
	put.URL.RawQuery = pq.Encode()
	put.RequestURI = put.URL.RequestURI()
	if requested.Algorithm() != digest.Canonical {
		h.serveAliasedUploadPut(w, put, requested)
		return
	}
	h.next.ServeHTTP(w, put)
}

// serveAnonymousMount performs POST /v2/<repo>/blobs/uploads/?mount=<d>
// without a "from" repository: the client knows the blob exists somewhere
// in the registry but not where. A repository that holds the blob is looked
// up and the request becomes an ordinary mount from it, so distribution
// still checks that the caller may read that repository. Only when the blob
// is in the registry's blob store at all (for sha256, one stat) are the
// repositories searched; otherwise distribution's answer (202, upload the
// blob) stands.
func (h *handler) serveAnonymousMount(w http.ResponseWriter, r *http.Request, repo string, d digest.Digest) {
	ctx := r.Context()
	from, err := h.findRepositoryWithBlob(ctx, repo, d)
	if err != nil {
		h.opts.Logger.Warn("looking for a repository to mount from failed", "digest", d, "error", err)
	}
	if from == "" {
		h.next.ServeHTTP(w, r)
		return
	}
	fwd := r.Clone(ctx)
	q := fwd.URL.Query()
	q.Set("from", from)
	fwd.URL.RawQuery = q.Encode()
	fwd.RequestURI = fwd.URL.RequestURI()
	if d.Algorithm() != digest.Canonical {
		h.serveAliasedMount(w, fwd, repo, from, d)
		return
	}
	h.next.ServeHTTP(w, fwd)
}

// findRepositoryWithBlob returns a repository other than target that links
// blob d, or "" when there is none.
func (h *handler) findRepositoryWithBlob(ctx context.Context, target string, d digest.Digest) (string, error) {
	drv := h.opts.Driver
	if d.Algorithm() == digest.Canonical {
		// Cheap pre-check: no blob, no mount, no search.
		if ok, err := exists(ctx, drv, blobData(d)); err != nil || !ok {
			return "", err
		}
	}
	// The cached repository list first; on a miss, a fresh one (the
	// holder may be a repository created since), so a miss costs a walk.
	// For sha256 that only happens for blobs the pre-check found in the
	// store.
	for _, maxAge := range []time.Duration{repoListTTL, 0} {
		repos, fresh, err := h.repoList.get(ctx, drv, maxAge)
		if err != nil {
			return "", err
		}
		if found := firstRepositoryWithBlob(ctx, drv, repos, target, d); found != "" || fresh {
			return found, nil
		}
	}
	return "", nil
}

// firstRepositoryWithBlob checks repos (except target) concurrently for a
// link to d and returns the first that has one.
func firstRepositoryWithBlob(ctx context.Context, drv storagedriver.StorageDriver, repos []string, target string, d digest.Digest) string {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		found string
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, repo := range repos {
		if repo == target {
			continue
		}
		g.Go(func() error {
			ok, err := exists(gctx, drv, layerLink(repo, d))
			if err != nil || !ok {
				return nil // an unreadable repository is not a mount source
			}
			mu.Lock()
			if found == "" {
				found = repo
			}
			mu.Unlock()
			cancel() // first hit wins
			return nil
		})
	}
	_ = g.Wait()
	return found
}

// repoListTTL bounds how stale the repository list used by anonymous
// mounts may be. Listing walks the whole repositories tree (on S3: every
// link object under it), too costly per request; a repository created
// within the TTL is merely not found as a mount source, and the client
// uploads the blob instead, which is always correct.
const repoListTTL = 30 * time.Second

// repoListCache caches listRepositories for anonymous mounts.
type repoListCache struct {
	mu      sync.Mutex
	repos   []string
	fetched time.Time
}

// get returns the repository list, listing again when the cached one is
// older than maxAge; fresh reports that it was just listed.
func (c *repoListCache) get(ctx context.Context, drv storagedriver.StorageDriver, maxAge time.Duration) (repos []string, fresh bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.repos != nil && time.Since(c.fetched) < maxAge {
		return c.repos, false, nil
	}
	repos, err = listRepositories(ctx, drv)
	if err != nil {
		return nil, false, err
	}
	c.repos, c.fetched = repos, time.Now()
	return repos, true, nil
}
