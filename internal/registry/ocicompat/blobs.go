package ocicompat

import (
	"net/http"

	"github.com/opencontainers/go-digest"
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
