package orchestrate

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/airlock-mirror/airlock/internal/catalog"
	"github.com/airlock-mirror/airlock/internal/catalogimage"
	"github.com/airlock-mirror/airlock/internal/ref"
)

// PrunedDatabase is a sqlite catalog image's index database pruned to a
// selection, in a temporary directory until Close.
type PrunedDatabase struct {
	Path   string
	Result *catalog.PruneResult
	dir    string
}

func (p *PrunedDatabase) Close() { os.RemoveAll(p.dir) }

// PruneNotes say how a database was pruned, for the user.
func PruneNotes(r *catalog.PruneResult) []string {
	var notes []string
	if !r.Exact {
		notes = append(notes, fmt.Sprintf("the sqlite database could not be pruned to the exact selection (%s), so whole packages are kept and mirrored: %d bundle(s) beyond the selection: %s; use --convert-to-fbc --base OPM_IMAGE for the exact selection",
			r.Inexact, len(r.ExtraBundles), strings.Join(r.ExtraBundles, ", ")))
	}
	if len(r.ExtraChannelEntries) > 0 {
		notes = append(notes, fmt.Sprintf("sqlite lists a bundle in a channel when a bundle kept there replaces or skips it, so these channels also list bundles kept in another channel (package/channel/bundle): %s",
			strings.Join(r.ExtraChannelEntries, ", ")))
	}
	return notes
}

// PruneImageDatabase extracts the index database of the sqlite catalog
// image src (the same on every platform, so read from the first one) and
// writes to dst a copy pruned to keep.
func PruneImageDatabase(ctx context.Context, imgs catalogimage.Images, src ref.Ref, keep *catalog.Catalog, dst string) (*catalog.PruneResult, error) {
	img, err := anyPlatformImage(ctx, imgs, src)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "airlock-index-db-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	orig := filepath.Join(tmp, "index.db")
	if err := catalog.ExtractDatabase(ctx, img, orig); err != nil {
		return nil, fmt.Errorf("reading the database of %s: %w", src, err)
	}
	return catalog.PruneSQLite(ctx, orig, dst, keep)
}

// PruneSQLiteDatabase is PruneImageDatabase into a temporary directory.
func PruneSQLiteDatabase(ctx context.Context, imgs catalogimage.Images, src ref.Ref, keep *catalog.Catalog) (*PrunedDatabase, error) {
	tmp, err := os.MkdirTemp("", "airlock-pruned-db-*")
	if err != nil {
		return nil, err
	}
	p := &PrunedDatabase{dir: tmp, Path: filepath.Join(tmp, "index.db")}
	if p.Result, err = PruneImageDatabase(ctx, imgs, src, keep, p.Path); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// PruneSQLiteImage pushes to dst the sqlite catalog image src with its
// index database pruned to keep.
func PruneSQLiteImage(ctx context.Context, imgs catalogimage.Images, src ref.Ref, keep *catalog.Catalog, dst ref.Ref) (*catalogimage.Result, error) {
	p, err := PruneSQLiteDatabase(ctx, imgs, src, keep)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	res, err := catalogimage.ReplaceDatabase(ctx, imgs, src, p.Path, dst)
	if err != nil {
		return nil, err
	}
	res.Notes = append(res.Notes, PruneNotes(p.Result)...)
	return res, nil
}

func anyPlatformImage(ctx context.Context, imgs catalogimage.Images, r ref.Ref) (v1.Image, error) {
	desc, err := imgs.Resolve(ctx, r)
	if err != nil {
		return nil, err
	}
	if !desc.MediaType.IsIndex() {
		return imgs.Image(ctx, r)
	}
	idx, err := imgs.Index(ctx, r)
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, m := range im.Manifests {
		if m.MediaType.IsImage() && (m.Platform == nil || m.Platform.OS != "unknown") {
			return idx.Image(m.Digest)
		}
	}
	return nil, fmt.Errorf("catalog %s: index has no platform image", r)
}
