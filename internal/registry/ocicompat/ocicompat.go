// Package ocicompat makes the embedded distribution/v3 registry conform to
// the OCI distribution-spec v1.1 where distribution v3.1.2 alone does not
// (measured with the OCI conformance suite, 1.1 profile: distribution alone
// fails 91 of 852 cases; with this layer all 862 pass, none skipped).
//
// It is a thin http.Handler layer placed in front of distribution's
// handlers.NewApp: requests that distribution already answers correctly pass
// straight through; the gaps are answered or corrected here:
//
//   - the referrers API, GET /v2/<name>/referrers/<digest> (image index
//     response, artifactType filtering with OCI-Filters-Applied, an empty
//     index when there are none);
//   - the OCI-Subject header on manifest PUTs that carry a subject;
//   - sha512 digests for blobs, manifests and mounts, reported as sha512;
//   - single-request blob uploads (POST with ?digest= and the body) and
//     blob mounts without a source repository, both optional in the spec;
//   - manifests with non-distributable layer URLs, through distribution's
//     own configuration (ConfigureDistribution).
//
// Everything that stores or authorizes still goes through distribution. The
// only state the layer keeps (the referrers index and sha512 aliases) lives
// in the registry's own storage driver, next to distribution's data, so it
// survives restarts and is shared by every instance of a scaled-out
// registry; Reindex rebuilds the index from the stored manifests.
//
// Use:
//
//	ocicompat.ConfigureDistribution(cfg)
//	app := handlers.NewApp(ctx, cfg)
//	drv, err := ocicompat.NewDriver(ctx, cfg.Storage)
//	h, err := ocicompat.Wrap(app, ocicompat.Options{Driver: drv})
package ocicompat

import (
	_ "crypto/sha512" // registers sha512 with go-digest
	"errors"
	"log/slog"
	"net/http"

	"github.com/distribution/distribution/v3/configuration"
	v2 "github.com/distribution/distribution/v3/registry/api/v2"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/reference"
	"github.com/gorilla/mux"
	"github.com/opencontainers/go-digest"
)

// Options configure Wrap.
type Options struct {
	// Driver is the same storage driver distribution serves from (filesystem
	// root, S3, ...): a driver built from the same storage configuration.
	// ocicompat reads distribution's links from it and stores the referrers
	// index next to distribution's own data. Required.
	Driver storagedriver.StorageDriver
	// Logger receives ocicompat's own log lines; nil means slog.Default().
	Logger *slog.Logger
}

// ConfigureDistribution adjusts a distribution configuration for OCI v1.1
// conformance before it is passed to handlers.NewApp. Today that is one
// thing: distribution rejects (with a 500) any manifest whose layers carry
// URLs, the non-distributable layers the spec says a registry accepts,
// unless validation.manifests.urls allows them. When the configuration has
// no URL rules of its own, http and https URLs are allowed; the registry
// never fetches them, it only stores the manifest.
func ConfigureDistribution(cfg *configuration.Configuration) {
	urls := &cfg.Validation.Manifests.URLs
	if len(urls.Allow) == 0 && len(urls.Deny) == 0 {
		urls.Allow = []string{`^https?://`}
	}
}

// routeReferrers names the route this layer adds to distribution's.
const routeReferrers = "oci-referrers"

// handler is the http.Handler Wrap returns.
type handler struct {
	next      http.Handler
	opts      Options
	router    *mux.Router
	referrers *referrerStore
	repoList  repoListCache
}

// Wrap returns an http.Handler that serves the OCI distribution-spec v1.1
// behaviour in front of next, which must be distribution's handlers.App (or
// anything serving the /v2/ API from the same storage as opts.Driver).
// Authentication and authorization stay distribution's (or an outer
// handler's): requests this layer answers itself are first checked by
// replaying them against next.
func Wrap(next http.Handler, opts Options) (http.Handler, error) {
	if next == nil {
		return nil, errors.New("ocicompat: next handler is nil")
	}
	if opts.Driver == nil {
		return nil, errors.New("ocicompat: Options.Driver is required (the registry's storage driver)")
	}
	if already, ok := next.(*handler); ok {
		// Wrapping twice would only do the bookkeeping twice.
		return already, nil
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	// distribution's own routes (the API at /v2/, no http.prefix, which
	// airlock never sets) plus the one distribution lacks.
	router := v2.RouterWithPrefix("")
	router.Path("/v2/{name:" + reference.NameRegexp.String() + "}/referrers/{digest}").Name(routeReferrers)
	return &handler{
		next:      next,
		opts:      opts,
		router:    router,
		referrers: &referrerStore{opts: opts},
	}, nil
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var m mux.RouteMatch
	if !h.router.Match(r, &m) || m.Route == nil {
		h.next.ServeHTTP(w, r)
		return
	}
	name := m.Vars["name"]
	switch m.Route.GetName() {
	case routeReferrers:
		h.serveReferrers(w, r, name, m.Vars["digest"])
		return
	case v2.RouteNameManifest:
		ref := m.Vars["reference"]
		switch r.Method {
		case http.MethodPut:
			h.putManifest(w, r, name, ref)
			return
		case http.MethodGet, http.MethodHead:
			if d, ok := nonCanonical(ref); ok {
				h.serveAliasedRead(w, r, d)
				return
			}
		case http.MethodDelete:
			if d, ok := nonCanonical(ref); ok {
				h.deleteAliasedManifest(w, r, name, d)
				return
			}
		}
	case v2.RouteNameBlob:
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			if d, ok := nonCanonical(m.Vars["digest"]); ok {
				h.serveAliasedRead(w, r, d)
				return
			}
		}
	case v2.RouteNameBlobUpload:
		q := r.URL.Query()
		if r.Method != http.MethodPost {
			break
		}
		if q.Get("mount") != "" {
			d, err := digest.Parse(q.Get("mount"))
			switch {
			case err != nil:
				// distribution answers a bad mount digest.
			case q.Get("from") == "":
				h.serveAnonymousMount(w, r, name, d)
				return
			case d.Algorithm() != digest.Canonical:
				h.serveAliasedMount(w, r, name, q.Get("from"), d)
				return
			}
			break
		}
		if d, err := digest.Parse(q.Get("digest")); err == nil {
			h.serveMonolithicPost(w, r, d)
			return
		}
	case v2.RouteNameBlobUploadChunk:
		if r.Method == http.MethodPut {
			if d, ok := nonCanonical(r.URL.Query().Get("digest")); ok {
				h.serveAliasedUploadPut(w, r, d)
				return
			}
		}
	}
	h.next.ServeHTTP(w, r)
}

// nonCanonical reports whether s is a valid digest of an algorithm other
// than distribution's canonical sha256.
func nonCanonical(s string) (digest.Digest, bool) {
	d, err := digest.Parse(s)
	if err != nil || d.Algorithm() == digest.Canonical {
		return "", false
	}
	return d, true
}
