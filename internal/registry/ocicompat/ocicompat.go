// Package ocicompat makes the embedded distribution/v3 registry conform to
// the OCI distribution-spec v1.1 where distribution v3.1.2 alone does not.
//
// It is a thin http.Handler layer placed in front of distribution's
// handlers.NewApp: requests that distribution already answers correctly pass
// straight through; the gaps (the referrers API, the OCI-Subject header on
// manifest PUTs that carry a subject, manifests with non-distributable layer
// URLs, sha512 digests) are answered or corrected here. State the layer needs
// (the referrers index) lives in the registry's own storage driver, so it
// survives restarts and is shared by every instance of a scaled-out registry.
//
// Use:
//
//	app := handlers.NewApp(ctx, cfg)
//	h, err := ocicompat.Wrap(app, ocicompat.Options{Driver: driver})
package ocicompat

import (
	"errors"
	"log/slog"
	"net/http"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
)

// Options configure Wrap.
type Options struct {
	// Driver is the same storage driver distribution serves from (filesystem
	// root, S3, ...). ocicompat reads manifests from it and stores the
	// referrers index next to distribution's own data. Required.
	Driver storagedriver.StorageDriver
	// ReadOnly rejects the write paths ocicompat handles itself, matching
	// distribution's read-only maintenance mode.
	ReadOnly bool
	// Logger receives ocicompat's own log lines; nil means slog.Default().
	Logger *slog.Logger
}

// Wrap returns an http.Handler that serves the OCI distribution-spec v1.1
// behaviour in front of next, which must be distribution's handlers.App (or
// anything serving the /v2/ API from the same storage as opts.Driver).
func Wrap(next http.Handler, opts Options) (http.Handler, error) {
	if next == nil {
		return nil, errors.New("ocicompat: next handler is nil")
	}
	if opts.Driver == nil {
		return nil, errors.New("ocicompat: Options.Driver is required (the registry's storage driver)")
	}
	// First commit: pass-through so the registry can wire the layer in now.
	return next, nil
}
