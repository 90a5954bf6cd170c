package ocicompat

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// manifestFields are the parts of an image manifest or index that the
// referrers API needs. Both kinds share these field names.
type manifestFields struct {
	MediaType    string `json:"mediaType"`
	ArtifactType string `json:"artifactType"`
	Config       *struct {
		MediaType string `json:"mediaType"`
	} `json:"config"`
	Subject     *v1.Descriptor    `json:"subject"`
	Annotations map[string]string `json:"annotations"`
	// Manifests is only looked at to tell an index from an image manifest
	// when neither a mediaType field nor a Content-Type says which.
	Manifests json.RawMessage `json:"manifests"`
}

// referrerDescriptor is the descriptor the referrers API lists for a
// manifest: its own media type, digest and size, its annotations, and the
// artifactType that the spec defines as the manifest's artifactType or, for
// an image manifest without one, its config media type.
func referrerDescriptor(m manifestFields, contentType string, d digest.Digest, size int64) v1.Descriptor {
	mt := m.MediaType
	if mt == "" {
		// mediaType is optional in the manifest JSON; the push's Content-Type
		// is then the only statement of what the manifest is.
		mt = contentType
	}
	at := m.ArtifactType
	if at == "" && m.Config != nil {
		at = m.Config.MediaType
	}
	return v1.Descriptor{
		MediaType:    mt,
		Digest:       d,
		Size:         size,
		ArtifactType: at,
		Annotations:  m.Annotations,
	}
}

// referrerStore keeps the referrers index in the registry's storage driver:
// one small JSON file per (repository, subject, referrer). An entry is
// written only after distribution accepted the referrer's manifest, and is
// listed only while that manifest still exists in the repository, so the
// index is consistent with deletes (by API or by garbage collection) without
// needing a lock shared between registry instances.
type referrerStore struct {
	opts Options
}

// add records that referrer (described by desc) refers to subject in repo.
func (s *referrerStore) add(ctx context.Context, repo string, subject digest.Digest, desc v1.Descriptor) error {
	b, err := json.Marshal(desc)
	if err != nil {
		return fmt.Errorf("encoding referrer %s of %s: %w", desc.Digest, subject, err)
	}
	p := referrerEntry(repo, subject, desc.Digest)
	if err := s.opts.Driver.PutContent(ctx, p, b); err != nil {
		return fmt.Errorf("recording referrer %s of %s@%s at %s: %w", desc.Digest, repo, subject, p, err)
	}
	return nil
}

// list returns the referrers of subject in repo whose manifests still exist,
// sorted by digest so responses are stable.
func (s *referrerStore) list(ctx context.Context, repo string, subject digest.Digest) ([]v1.Descriptor, error) {
	drv := s.opts.Driver
	names, err := drv.List(ctx, referrersDir(repo, subject))
	if err != nil {
		if isNotFound(err) {
			return []v1.Descriptor{}, nil
		}
		return nil, fmt.Errorf("listing referrers of %s@%s: %w", repo, subject, err)
	}
	var (
		mu  sync.Mutex
		out = []v1.Descriptor{}
	)
	g, gctx := errgroup.WithContext(ctx)
	// Bounded: on S3 every entry costs two requests.
	g.SetLimit(16)
	for _, name := range names {
		ref, ok := parseReferrerEntryName(name)
		if !ok {
			continue
		}
		g.Go(func() error {
			live, err := exists(gctx, drv, manifestRevisionLink(repo, ref))
			if err != nil {
				return fmt.Errorf("checking referrer %s of %s@%s: %w", ref, repo, subject, err)
			}
			if !live {
				// Deleted after it was indexed: the manifest is the truth.
				return nil
			}
			b, err := drv.GetContent(gctx, name)
			if err != nil {
				if isNotFound(err) {
					return nil
				}
				return fmt.Errorf("reading referrer entry %s: %w", name, err)
			}
			var desc v1.Descriptor
			if err := json.Unmarshal(b, &desc); err != nil || desc.Digest != ref {
				// A damaged entry must not take the whole API down; a re-push
				// of the referrer rewrites it.
				s.opts.Logger.Warn("ignoring damaged referrers entry", "path", name, "error", err)
				return nil
			}
			mu.Lock()
			out = append(out, desc)
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b v1.Descriptor) int { return strings.Compare(a.Digest.String(), b.Digest.String()) })
	return out, nil
}

// serveReferrers answers GET /v2/<name>/referrers/<digest>[?artifactType=...]
// with an OCI image index of the referrers of <digest>; an unknown subject
// gets an empty index, never a 404, as the spec requires.
func (h *handler) serveReferrers(w http.ResponseWriter, r *http.Request, repo, ref string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "the referrers API supports GET and HEAD only")
		return
	}
	subject, err := digest.Parse(ref)
	if err != nil {
		writeError(w, http.StatusBadRequest, "DIGEST_INVALID", fmt.Sprintf("referrers subject %q is not a valid digest: %v", ref, err))
		return
	}
	// distribution, not this layer, knows who may read repo: ask it with
	// a cheap request carrying the caller's credentials.
	if !h.authorizedToPull(w, r, repo, subject) {
		return
	}
	descs, err := h.referrers.list(r.Context(), repo, subject)
	if err != nil {
		h.opts.Logger.Error("referrers lookup failed", "repository", repo, "subject", subject, "error", err)
		writeError(w, http.StatusInternalServerError, "UNKNOWN", "reading the referrers index failed; see the registry log")
		return
	}
	if filters := r.URL.Query()["artifactType"]; len(filters) > 0 {
		descs = slices.DeleteFunc(descs, func(d v1.Descriptor) bool { return !slices.Contains(filters, d.ArtifactType) })
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	idx := v1.Index{
		MediaType: v1.MediaTypeImageIndex,
		Manifests: descs,
	}
	idx.SchemaVersion = 2
	body, err := json.Marshal(idx)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "UNKNOWN", "encoding the referrers index failed")
		return
	}
	w.Header().Set("Content-Type", v1.MediaTypeImageIndex)
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(body)
	}
}

// authorizedToPull asks the wrapped registry whether the caller may read
// repo by replaying a HEAD of the subject manifest with the caller's
// headers. 401/403 are relayed to the caller (with WWW-Authenticate, so
// token clients can get a token) and false is returned; any other answer,
// including 404 for an unknown subject, means access is granted.
func (h *handler) authorizedToPull(w http.ResponseWriter, r *http.Request, repo string, subject digest.Digest) bool {
	probe := r.Clone(r.Context())
	probe.Method = http.MethodHead
	probe.URL.Path = "/v2/" + repo + "/manifests/" + subject.String()
	probe.URL.RawPath = ""
	probe.URL.RawQuery = ""
	probe.RequestURI = probe.URL.RequestURI()
	probe.Body = http.NoBody
	probe.ContentLength = 0
	rec := newBufferedResponse()
	h.next.ServeHTTP(rec, probe)
	if rec.status != http.StatusUnauthorized && rec.status != http.StatusForbidden {
		return true
	}
	for _, k := range []string{"WWW-Authenticate", "Docker-Distribution-Api-Version"} {
		if v := rec.header.Values(k); len(v) > 0 {
			w.Header()[k] = v
		}
	}
	if rec.status == http.StatusUnauthorized {
		writeError(w, rec.status, "UNAUTHORIZED", "authentication required")
	} else {
		writeError(w, rec.status, "DENIED", "requested access to the resource is denied")
	}
	return false
}
