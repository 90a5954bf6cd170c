package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/storage"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/factory"

	"github.com/airlock-mirror/airlock/internal/atomicfile"
	"github.com/airlock-mirror/airlock/internal/registry/ocicompat"
)

// GCOptions configure GC.
type GCOptions struct {
	// DryRun reports what would be deleted and deletes nothing.
	DryRun bool
	// DeleteUntagged also deletes manifests no tag points to (and that no
	// tagged index references). Images mirrored by digest only are
	// untagged: this deletes them. Referrers (signatures, SBOMs) of a kept
	// image are kept: they are untagged by nature.
	DeleteUntagged bool
	// Logger receives progress lines; nil means slog.Default().
	Logger *slog.Logger
}

// GCResult says what garbage collection removed (or, in a dry run, would
// remove).
type GCResult struct {
	Blobs      int   // blobs removed from the blob store
	BlobBytes  int64 // their size
	Manifests  int   // manifest revisions unlinked (DeleteUntagged)
	LayerLinks int   // per-repository links to blobs removed
	// BlobDigests lists the removed blobs, sorted.
	BlobDigests []string
	// ReferrersPruned counts referrers-index entries of deleted manifests.
	ReferrersPruned int
}

// GC runs distribution's garbage collector (storage.MarkAndSweep) over the
// storage: filesystem under root, or st when it names a driver. The
// registry must not be serving from the same storage meanwhile: a push in
// flight would lose blobs it has uploaded but not yet referenced.
func GC(ctx context.Context, root string, st configuration.Storage, opts GCOptions) (GCResult, error) {
	sc, err := storageConfig(Options{Root: root, Storage: st, gcOnly: true})
	if err != nil {
		return GCResult{}, err
	}
	quietDistributionLogs(nil)
	drv, err := factory.Create(ctx, sc.Type(), sc.Parameters())
	if err != nil {
		return GCResult{}, fmt.Errorf("opening %s storage: %w", sc.Type(), err)
	}
	// WHY a recording driver: MarkAndSweep prints to stdout and returns
	// nothing; intercepting Delete both counts what it removes and, in a
	// dry run, turns the sweep into a report with exactly the same logic.
	aliased, err := aliasedBlobs(ctx, drv)
	if err != nil {
		return GCResult{}, err
	}
	rec := &recordingDriver{StorageDriver: drv, dryRun: opts.DryRun, ctx: ctx, keep: aliased}
	reg, err := storage.NewRegistry(ctx, rec, storage.EnableDelete)
	if err != nil {
		return GCResult{}, fmt.Errorf("opening registry storage: %w", err)
	}
	// MarkAndSweep writes progress with fmt.Printf even when "quiet" is
	// off; Quiet keeps stdout clean.
	var ns distribution.Namespace = reg
	if opts.DeleteUntagged {
		subjects, err := ocicompat.ReferrerSubjects(ctx, drv)
		if err != nil {
			return GCResult{}, err
		}
		ns = keepReferrers{Namespace: reg, subjects: subjects}
	}
	err = storage.MarkAndSweep(ctx, rec, ns, storage.GCOpts{
		DryRun:         false, // the recording driver implements the dry run
		RemoveUntagged: opts.DeleteUntagged,
		Quiet:          true,
	})
	res := rec.result()
	if err != nil {
		return res, fmt.Errorf("garbage collection: %w", err)
	}
	if !opts.DryRun && (res.Manifests > 0 || res.Blobs > 0) {
		// gc deletes manifests behind the API's back; the OCI layer's
		// referrers index must forget them.
		ri, err := ocicompat.Reindex(ctx, drv, opts.Logger)
		if err != nil {
			return res, fmt.Errorf("garbage collection done, but updating the referrers index failed (rerun gc): %w", err)
		}
		res.ReferrersPruned = ri.Pruned
	}
	return res, nil
}

type recordingDriver struct {
	storagedriver.StorageDriver
	dryRun bool
	ctx    context.Context
	// keep holds canonical digests (sha256:...) that non-canonical aliases
	// point to; their blobs and links are never deleted.
	keep map[string]bool

	mu  sync.Mutex
	res GCResult
}

func (d *recordingDriver) Delete(ctx context.Context, path string) error {
	if dg := digestInPath(path); dg != "" && d.keep[dg] {
		return nil
	}
	var size int64
	isBlob := strings.Contains(path, "/v2/blobs/")
	if isBlob {
		if fi, err := d.StorageDriver.Stat(ctx, path+"/data"); err == nil {
			size = fi.Size()
		}
	}
	if !d.dryRun {
		if err := d.StorageDriver.Delete(ctx, path); err != nil {
			return err
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case isBlob:
		d.res.Blobs++
		d.res.BlobBytes += size
		// .../blobs/sha256/ab/abcdef... -> sha256:abcdef...
		parts := strings.Split(strings.TrimSuffix(path, "/"), "/")
		if n := len(parts); n >= 3 {
			d.res.BlobDigests = append(d.res.BlobDigests, parts[n-3]+":"+parts[n-1])
		}
	case strings.Contains(path, "/_layers/"):
		d.res.LayerLinks++
	case strings.Contains(path, "/_manifests/revisions/"):
		d.res.Manifests++
	}
	return nil
}

func (d *recordingDriver) result() GCResult {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.res
	r.BlobDigests = append([]string(nil), r.BlobDigests...)
	sort.Strings(r.BlobDigests)
	return r
}

// ServeLock marks a filesystem root as in use by `registry serve`, so that
// `registry gc` can refuse to sweep under a running registry.
const serveLockName = "airlock-serve.pid"

// WriteServeLock records this process as serving root; the returned
// function removes the mark.
func WriteServeLock(root string) (func(), error) {
	p := filepath.Join(root, serveLockName)
	if err := atomicfile.Write(p, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o644); err != nil {
		return nil, err
	}
	return func() { os.Remove(p) }, nil
}

// ServeLockHolder returns the pid recorded in root's serve mark if that
// process still runs, else 0.
func ServeLockHolder(root string) int {
	f, err := os.Open(filepath.Join(root, serveLockName))
	if err != nil {
		return 0
	}
	defer f.Close()
	var pid int
	if _, err := fmt.Fscan(io.LimitReader(f, 32), &pid); err != nil || pid <= 0 {
		return 0
	}
	if pid == os.Getpid() || processAlive(pid) {
		return pid
	}
	return 0
}

// digestInPath returns the digest a blob path (.../blobs/ALG/xx/HEX) or a
// repository layer link (.../_layers/ALG/HEX[/link]) names, or "".
func digestInPath(p string) string {
	parts := strings.Split(strings.TrimSuffix(strings.TrimSuffix(p, "/"), "/link"), "/")
	for i, part := range parts {
		switch {
		case part == "blobs" && i+3 < len(parts):
			return parts[i+1] + ":" + parts[i+3]
		case part == "_layers" && i+2 < len(parts):
			return parts[i+1] + ":" + parts[i+2]
		}
	}
	return ""
}

// aliasedBlobs finds the canonical digests that non-canonical names
// (sha512 blobs and manifests, stored by the OCI layer as links to sha256
// content) point to. Unreferenced sha512 content is therefore kept too:
// losing referenced content is worse than keeping some garbage.
//
// WHY: distribution's mark phase marks the sha512 names a manifest lists,
// while the blob store enumerates the sha256 content behind them, so a
// plain MarkAndSweep would delete every blob pushed by sha512 (or fail
// removing a sha256 link that never existed). Those blobs are kept.
func aliasedBlobs(ctx context.Context, drv storagedriver.StorageDriver) (map[string]bool, error) {
	keep := map[string]bool{}
	root := "/docker/registry/v2/repositories"
	err := drv.Walk(ctx, root, func(fi storagedriver.FileInfo) error {
		p := fi.Path()
		if fi.IsDir() {
			base := p[strings.LastIndex(p, "/")+1:]
			// Skip what cannot hold alias links: uploads and sha256 dirs.
			if base == "_uploads" || base == "_referrers" || strings.HasSuffix(p, "/_manifests/tags") || (base == "sha256" && (strings.HasSuffix(p, "/_layers/sha256") || strings.HasSuffix(p, "/revisions/sha256"))) {
				return storagedriver.ErrSkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, "/link") || !(strings.Contains(p, "/_layers/") || strings.Contains(p, "/_manifests/revisions/")) {
			return nil
		}
		b, err := drv.GetContent(ctx, p)
		if err != nil {
			return fmt.Errorf("reading %s: %w", p, err)
		}
		keep[strings.TrimSpace(string(b))] = true
		return nil
	})
	var notFound storagedriver.PathNotFoundError
	if errors.As(err, &notFound) {
		return keep, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing digest aliases: %w", err)
	}
	return keep, nil
}
