package ocicompat

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/opencontainers/go-digest"
)

// The paths below mirror distribution v3's storage layout
// (registry/storage/paths.go, unexported there). ocicompat needs them for
// the two things distribution offers no API for: aliasing a non-canonical
// digest (sha512) to the canonical sha256 content distribution stores, and
// keeping the referrers index next to the repository it describes.
const storageRoot = "/docker/registry/v2"

// manifestRevisionLink is the file whose presence makes a manifest digest
// exist in a repository; its content is the canonical digest of the bytes.
func manifestRevisionLink(repo string, d digest.Digest) string {
	return path.Join(storageRoot, "repositories", repo, "_manifests", "revisions", d.Algorithm().String(), d.Encoded(), "link")
}

// layerLink is the file that links a blob digest into a repository.
func layerLink(repo string, d digest.Digest) string {
	return path.Join(storageRoot, "repositories", repo, "_layers", d.Algorithm().String(), d.Encoded(), "link")
}

// blobData is where distribution keeps the bytes of a canonical blob.
func blobData(d digest.Digest) string {
	enc := d.Encoded()
	return path.Join(storageRoot, "blobs", d.Algorithm().String(), enc[:2], enc, "data")
}

// referrersDir holds one entry file per referrer of subject in repo. The
// directory name starts with "_" so distribution's catalog walk skips it
// (it treats "_"-prefixed directories as repository internals).
func referrersDir(repo string, subject digest.Digest) string {
	return path.Join(storageRoot, "repositories", repo, "_referrers", subject.Algorithm().String(), subject.Encoded())
}

// referrerEntry is the file describing one referrer. One file per referrer
// (instead of one index file per subject) means concurrent pushes of two
// referrers never read-modify-write the same object, so neither is lost.
func referrerEntry(repo string, subject, referrer digest.Digest) string {
	return path.Join(referrersDir(repo, subject), referrer.Algorithm().String()+"_"+referrer.Encoded())
}

// parseReferrerEntryName is the inverse of the file name in referrerEntry.
// Other names (e.g. the filesystem driver's "*.tmp" files of an in-flight
// write) are reported as not ok.
func parseReferrerEntryName(p string) (digest.Digest, bool) {
	alg, enc, ok := strings.Cut(path.Base(p), "_")
	if !ok {
		return "", false
	}
	d := digest.NewDigestFromEncoded(digest.Algorithm(alg), enc)
	if d.Validate() != nil {
		return "", false
	}
	return d, true
}

// readLink reads a distribution link file and returns the digest it holds.
func readLink(ctx context.Context, drv storagedriver.StorageDriver, p string) (digest.Digest, error) {
	b, err := drv.GetContent(ctx, p)
	if err != nil {
		return "", err
	}
	d, err := digest.Parse(strings.TrimSpace(string(b)))
	if err != nil {
		return "", fmt.Errorf("link %s holds %q: %w", p, b, err)
	}
	return d, nil
}

// exists reports whether p exists in the driver; errors other than "not
// found" are returned so a flaky backend is not mistaken for absence.
func exists(ctx context.Context, drv storagedriver.StorageDriver, p string) (bool, error) {
	_, err := drv.Stat(ctx, p)
	if err == nil {
		return true, nil
	}
	if isNotFound(err) {
		return false, nil
	}
	return false, err
}

func isNotFound(err error) bool {
	var nf storagedriver.PathNotFoundError
	return errors.As(err, &nf)
}
