package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/airlock-mirror/airlock/internal/engine"
	"github.com/airlock-mirror/airlock/internal/orchestrate"
	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/report"
	"github.com/airlock-mirror/airlock/internal/transfer"
)

// The engine mirror runs with reads manifests alone (checkSpace needs it).
var _ orchestrate.Inspector = (*engine.Engine)(nil)

// transferHooks sets the mirror-to-disk hook that writes a transfer set
// into DIR when a segment size is given (flag or the config's archiveSize).
func (o *MirrorOptions) transferHooks(mo *orchestrate.Options) error {
	if o.mode != orchestrate.MirrorToDisk || o.DryRun {
		return nil
	}
	gib := o.ArchiveSize
	if gib == 0 && o.cfg != nil {
		gib = o.cfg.ArchiveSize
	}
	if gib == 0 && o.SegmentBytes == "" {
		if o.DiskLimit != "" {
			return fmt.Errorf("--disk-limit applies to mirror-to-disk with a transfer set (--archive-size, --segment-bytes or archiveSize); for a plain store, check with `airlock plan --disk-limit`")
		}
		return nil
	}
	size, err := segmentSize(gib, o.SegmentBytes)
	if err != nil {
		return err
	}
	var limit int64
	if o.DiskLimit != "" {
		if limit, err = parseSize(o.DiskLimit); err != nil {
			return fmt.Errorf("--disk-limit %q: %w", o.DiskLimit, err)
		}
	}
	mo.BeforeWrite = func(ctx context.Context, items []plan.Item) error {
		return o.checkSpace(ctx, mo.Engine, items, size, limit, mo.Since)
	}
	mo.Archive = func(ctx context.Context, req orchestrate.ArchiveRequest) error {
		// The previous set of this store was recorded in its history when
		// it was written; its files make room for the new one.
		if err := removeSet(req.Dir); err != nil {
			return err
		}
		m, err := transfer.Create(transfer.CreateOptions{Store: req.Dir, Out: req.Dir, SegmentSize: size, Full: o.Full,
			Since: req.Since, AirlockVersion: Version, Warn: func(s string) { fmt.Fprintf(o.streams.ErrOut, "warning: %s\n", s) }})
		if err != nil {
			return err
		}
		if o.SignKey != "" {
			if err := transfer.Sign(req.Dir, o.SignKey); err != nil {
				return err
			}
		}
		printSetSummary(o.streams, req.Dir, m)
		return nil
	}
	return nil
}

// checkSpace fails the run before anything is copied when DIR cannot hold
// the new blobs twice over: once in the store, once more in the segments
// of the transfer set written from it.
func (o *MirrorOptions) checkSpace(ctx context.Context, eng orchestrate.Engine, items []plan.Item, segSize, limit int64, since time.Time) error {
	insp, ok := eng.(orchestrate.Inspector)
	if !ok {
		// Never skipped silently: a run that cannot be checked is not started.
		return fmt.Errorf("checking free space: the copy engine %T cannot read manifests alone", eng)
	}
	incoming, err := orchestrate.InspectBlobs(ctx, insp, items, o.ParallelImages*2)
	if err != nil {
		return fmt.Errorf("checking free space: %w", err)
	}
	need, err := transfer.EstimateSpace(transfer.SpaceOptions{Store: o.dir, Incoming: incoming, SegmentSize: segSize, Full: o.Full, Since: since})
	if err != nil {
		return fmt.Errorf("checking free space: %w", err)
	}
	avail, fsDir, err := orchestrate.FreeSpace(o.dir)
	if err != nil {
		return err
	}
	if limit > 0 && avail > limit {
		avail = limit
	}
	if need.Total() > avail {
		freed := ""
		if need.Freed > 0 {
			freed = fmt.Sprintf(", less %s of the previous set it replaces", report.Bytes(need.Freed))
		}
		return fmt.Errorf("not enough space for file://%s with a transfer set: %s needed (%s of new blobs for the store + %s for the segments and manifest, the blobs are written twice%s), %s free on %s; no image was copied (free space, choose another DIR, or write the set elsewhere with `airlock archive create` later)",
			o.dir, report.Bytes(need.Total()), report.Bytes(need.Store), report.Bytes(need.Set), freed, report.Bytes(avail), fsDir)
	}
	return nil
}

// removeSet deletes the segments, manifest and signature of a set in dir.
func removeSet(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if transfer.IsTransferFile(e.Name()) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("removing the previous transfer set: %w", err)
			}
		}
	}
	return nil
}

// importSet verifies and unpacks a transfer set in the --from DIR into
// the store there, before anything is pushed. It returns the digests to
// leave out (images with a blob in a bad segment, with --partial) and the
// error the run must end with; a nil skip map with an error stops the run.
func (o *MirrorOptions) importSet() (map[string]bool, error) {
	dirs := o.fromDirs
	if len(dirs) == 0 {
		dirs = []string{o.dir}
	}
	has := false
	for _, d := range dirs {
		has = has || transfer.HasSet(d)
	}
	if !has {
		if len(dirs) > 1 {
			// Several --from only make sense for a set spread over disks.
			return nil, fmt.Errorf("--from given %d times but none of %s holds %s: give one --from file://DIR for a plain store, or add the directory holding the manifest",
				len(dirs), strings.Join(dirs, ", "), transfer.ManifestName)
		}
		return nil, nil
	}
	r, err := transfer.Verify(dirs)
	if err != nil {
		return nil, err
	}
	if o.Key != "" {
		if err := transfer.VerifySignature(r.Dir, o.Key); err != nil {
			return nil, err
		}
	}
	if !r.OK() && !o.Partial {
		return nil, fmt.Errorf("%s\nnothing was pushed; or give --partial to push every image whose blobs are intact", r.Error())
	}
	if err := transfer.Extract(r, o.dir); err != nil {
		return nil, err
	}
	if miss := transfer.MissingDependencies(r.Manifest, o.dir); len(miss) > 0 {
		return nil, missingSetsError(miss)
	}
	fmt.Fprintf(o.streams.ErrOut, "transfer set %s verified and unpacked into %s\n", r.Manifest.SetID, o.dir)
	if r.OK() {
		return nil, nil
	}
	skip := map[string]bool{}
	var skipped []string
	for _, img := range r.Manifest.Images {
		for _, name := range r.Manifest.ImagesNeeding(r.BadSegments()) {
			if name == img.Name {
				skip[img.Digest] = true
				skipped = append(skipped, img.Name)
			}
		}
	}
	for _, n := range skipped {
		fmt.Fprintf(o.streams.ErrOut, "not pushed (blobs in a bad segment): %s\n", n)
	}
	return skip, fmt.Errorf("--partial: %d image(s) not pushed\n%s", len(skipped), r.Error())
}
