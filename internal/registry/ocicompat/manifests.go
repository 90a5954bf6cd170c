package ocicompat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/opencontainers/go-digest"
)

// maxManifestSize matches distribution's own limit on a manifest PUT body
// (registry/handlers/manifests.go maxManifestBodySize). Larger bodies are
// handed to distribution unread so it rejects them exactly as it always has.
const maxManifestSize = 4 << 20

// putManifest forwards a manifest PUT to distribution and, once distribution
// accepted it, does the OCI v1.1 bookkeeping distribution lacks:
//   - a push by a non-canonical digest (sha512) is verified here, stored by
//     distribution under its canonical sha256, and aliased so the sha512
//     digest resolves (GET, HEAD, DELETE, index children, referrers);
//   - a manifest with a subject is recorded in the referrers index and the
//     response carries OCI-Subject, telling the client the registry
//     supports the referrers API (so it does not fall back to tag schema).
func (h *handler) putManifest(w http.ResponseWriter, r *http.Request, repo, ref string) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxManifestSize+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "MANIFEST_INVALID", fmt.Sprintf("reading manifest body: %v", err))
		return
	}
	if len(body) > maxManifestSize {
		r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), r.Body))
		h.next.ServeHTTP(w, r)
		return
	}

	fwd := r.Clone(r.Context())
	fwd.Body = io.NopCloser(bytes.NewReader(body))
	fwd.ContentLength = int64(len(body))

	canonical := digest.Canonical.FromBytes(body)
	pushed := canonical // the digest the client knows the manifest by
	alias := false
	if refDigest, err := digest.Parse(ref); err == nil && refDigest.Algorithm() != digest.Canonical {
		if !refDigest.Algorithm().Available() {
			writeError(w, http.StatusBadRequest, "DIGEST_INVALID", fmt.Sprintf("digest algorithm %q is not supported; use sha256 or sha512", refDigest.Algorithm()))
			return
		}
		if refDigest.Algorithm().FromBytes(body) != refDigest {
			writeError(w, http.StatusBadRequest, "DIGEST_INVALID", fmt.Sprintf("manifest body does not match digest %s in the URL", refDigest))
			return
		}
		pushed, alias = refDigest, true
		// distribution only verifies and stores by its canonical algorithm.
		setPathRef(fwd, repo, "manifests", canonical.String())
	}

	var fields manifestFields
	// A body that is not JSON is distribution's to reject; fields stay empty.
	_ = json.Unmarshal(body, &fields)

	rec := newBufferedResponse()
	h.next.ServeHTTP(rec, fwd)
	if rec.status != http.StatusCreated {
		rec.copyTo(w)
		return
	}

	ctx := r.Context()
	if alias {
		p := manifestRevisionLink(repo, pushed)
		if err := h.opts.Driver.PutContent(ctx, p, []byte(canonical.String())); err != nil {
			h.opts.Logger.Error("aliasing manifest digest failed", "repository", repo, "digest", pushed, "canonical", canonical, "path", p, "error", err)
			writeError(w, http.StatusInternalServerError, "UNKNOWN", fmt.Sprintf("storing the %s alias of manifest %s failed; retry the push", pushed.Algorithm(), pushed))
			return
		}
		rewriteDigestHeaders(rec.header, canonical, pushed)
	}
	if fields.Subject != nil && fields.Subject.Digest.Validate() == nil {
		desc := referrerDescriptor(fields, r.Header.Get("Content-Type"), pushed, int64(len(body)))
		if err := h.referrers.add(ctx, repo, fields.Subject.Digest, desc); err != nil {
			h.opts.Logger.Error("recording referrer failed", "repository", repo, "referrer", pushed, "subject", fields.Subject.Digest, "error", err)
			// The manifest is stored but not yet listed: a failed status makes
			// the client retry, and the retried PUT writes the entry.
			writeError(w, http.StatusInternalServerError, "UNKNOWN", fmt.Sprintf("recording %s as a referrer of %s failed; retry the push", pushed, fields.Subject.Digest))
			return
		}
		rec.header.Set("OCI-Subject", fields.Subject.Digest.String())
	}
	rec.copyTo(w)
}

// setPathRef points a cloned request at /v2/<repo>/<kind>/<ref>.
func setPathRef(r *http.Request, repo, kind, ref string) {
	r.URL.Path = "/v2/" + repo + "/" + kind + "/" + ref
	r.URL.RawPath = ""
	r.RequestURI = r.URL.RequestURI()
}

// rewriteDigestHeaders replaces the canonical digest distribution reports
// with the digest the client used, in every header that carries it.
func rewriteDigestHeaders(h http.Header, canonical, pushed digest.Digest) {
	if canonical == pushed {
		return
	}
	h.Set("Docker-Content-Digest", pushed.String())
	for _, k := range []string{"Location", "Etag"} {
		if v := h.Get(k); v != "" {
			h.Set(k, strings.ReplaceAll(v, canonical.String(), pushed.String()))
		}
	}
}

// deleteAliasedManifest deletes a manifest addressed by a non-canonical
// digest (sha512). distribution removes only that name; the canonical
// sha256 revision stored for it at push time would stay behind, invisible
// to the client (who never used that digest) yet alive: pullable by
// sha256, never garbage-collected, and indexed again as a referrer by
// Reindex. So once the sha512 name is gone, the canonical revision is
// deleted too, through distribution with the caller's credentials.
func (h *handler) deleteAliasedManifest(w http.ResponseWriter, r *http.Request, repo string, requested digest.Digest) {
	canonical, err := readLink(r.Context(), h.opts.Driver, manifestRevisionLink(repo, requested))
	if err != nil || canonical.Algorithm() != digest.Canonical {
		h.next.ServeHTTP(w, r) // distribution answers (404, or its own error)
		return
	}
	rec := newBufferedResponse()
	h.next.ServeHTTP(rec, r)
	if rec.status == http.StatusAccepted {
		del := r.Clone(r.Context())
		setPathRef(del, repo, "manifests", canonical.String())
		drec := newBufferedResponse()
		h.next.ServeHTTP(drec, del)
		if drec.status != http.StatusAccepted && drec.status != http.StatusNotFound {
			h.opts.Logger.Warn("deleting the canonical revision of a sha512 manifest failed",
				"repository", repo, "digest", requested, "canonical", canonical, "status", drec.status, "body", drec.body.String())
		}
	}
	rec.copyTo(w)
}
