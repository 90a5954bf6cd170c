package catalog

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/operator-framework/operator-registry/alpha/declcfg"
	"github.com/operator-framework/operator-registry/pkg/sqlite"

	// The pure-Go sqlite driver (registered as "sqlite"). operator-registry's
	// own Open uses mattn/go-sqlite3, a non-functional stub without cgo, so
	// airlock opens the database itself and hands the *sql.DB over.
	_ "modernc.org/sqlite"
)

// LoadSQLite reads a legacy sqlite index database (index.db, bundles.db)
// and converts it to FBC with operator-registry's sqlite code. Old schemas
// are migrated first, on a temporary copy: the user's file is never
// written to.
func LoadSQLite(ctx context.Context, path string) (*Catalog, error) {
	tmp, err := os.MkdirTemp("", "airlock-sqlite-*")
	if err != nil {
		return nil, fmt.Errorf("creating temporary directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	cp := filepath.Join(tmp, "index.db")
	if err := copyFile(path, cp); err != nil {
		return nil, fmt.Errorf("reading sqlite catalog %s: %w", path, err)
	}
	c, err := loadSQLiteCopy(ctx, cp)
	if err != nil {
		return nil, fmt.Errorf("reading sqlite catalog %s: %w", path, err)
	}
	c.Source, c.DatabasePath = path, path
	return c, nil
}

// openSQLite opens a database with the pure-Go driver, foreign keys on
// (operator-registry's deletes rely on cascades).
func openSQLite(path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)")
	if err != nil {
		return nil, err
	}
	// One connection: sqlite serialises writers anyway and the migrator
	// runs transactions that must see each other's schema changes.
	db.SetMaxOpenConns(1)
	return db, nil
}

// migrateSQLite brings a database to operator-registry's latest schema.
func migrateSQLite(ctx context.Context, db *sql.DB) error {
	m, err := sqlite.NewSQLLiteMigrator(db)
	if err != nil {
		return fmt.Errorf("preparing schema migration: %w", err)
	}
	if err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("migrating schema: %w", err)
	}
	return nil
}

// loadSQLiteCopy converts a database file that airlock owns (a temporary
// copy), migrating it in place.
func loadSQLiteCopy(ctx context.Context, path string) (*Catalog, error) {
	db, err := openSQLite(path)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if err := migrateSQLite(ctx, db); err != nil {
		return nil, err
	}
	q := sqlite.NewSQLLiteQuerierFromDb(db)
	m, err := sqlite.ToModel(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("converting to file-based catalog: %w", err)
	}
	cfg := declcfg.ConvertFromModel(m)
	if err := addTableRelatedImages(ctx, q, &cfg); err != nil {
		return nil, err
	}
	sortConfig(&cfg)
	c := &Catalog{Config: &cfg, Format: FormatSQLite, Source: path}
	c.Warnings = checkContent(&cfg)
	return c, nil
}

// addTableRelatedImages adds the rows of the related_image table to the
// bundles' relatedImages. operator-registry's conversion takes related
// images from the CSV only, but the table also holds the images opm
// extracted from the CSV's deployments (the operator image itself, in
// databases built before spec.relatedImages existed) — exactly what
// `oc adm catalog mirror` mirrors, so dropping them would leave operators
// unable to start offline.
func addTableRelatedImages(ctx context.Context, q *sqlite.SQLQuerier, cfg *declcfg.DeclarativeConfig) error {
	for i := range cfg.Bundles {
		b := &cfg.Bundles[i]
		imgs, err := q.GetImagesForBundle(ctx, b.Name)
		if err != nil {
			return fmt.Errorf("reading related images of bundle %s: %w", b.Name, err)
		}
		have := map[string]bool{}
		for _, ri := range b.RelatedImages {
			have[ri.Image] = true
		}
		for _, img := range imgs {
			if img == "" || have[img] {
				continue
			}
			have[img] = true
			b.RelatedImages = append(b.RelatedImages, declcfg.RelatedImage{Image: img})
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// PruneResult says what PruneSQLite did.
type PruneResult struct {
	// RemovedPackages are the packages deleted from the database.
	RemovedPackages []string `json:"removedPackages"`
	// Exact is true when the database holds exactly the filtered catalog:
	// its channels, heads, default channels and bundles.
	Exact bool `json:"exact"`
	// Inexact says why the bundle-level pruning could not be used and the
	// database was pruned per package instead (as `opm index prune` does).
	Inexact string `json:"inexact,omitempty"`
	// ExtraBundles are bundles kept although the filtered catalog dropped
	// them (only when pruning fell back to whole packages).
	ExtraBundles []string `json:"extraBundles,omitempty"`
	// ExtraChannelEntries (package/channel/bundle) are kept bundles that a
	// channel lists beyond the selection because a bundle kept in it
	// replaces or skips them: sqlite records such an edge as an entry of
	// the older bundle in the channel. They are mirrored anyway, since
	// another channel keeps them.
	ExtraChannelEntries []string `json:"extraChannelEntries,omitempty"`
	// Catalog is the pruned database as the catalog pod will serve it:
	// what must be mirrored.
	Catalog *Catalog `json:"-"`
}

// PruneSQLite writes to dst a copy of the sqlite index database src that
// holds the filtered catalog keep. It is how a legacy sqlite catalog image
// is rebuilt in its own format for clusters whose opm predates file-based
// catalogs. pruneDatabase removes the packages keep drops and rewrites the
// kept ones to keep's channels, heads and bundles; the result is read back
// and compared with keep. When that cannot be done (a selection a sqlite
// channel cannot express), whole packages are kept instead and Inexact says
// why. The schema is never changed. src is never modified; dst is written
// to a temporary file and renamed into place once complete and synced.
func PruneSQLite(ctx context.Context, src, dst string, keep *Catalog) (*PruneResult, error) {
	if len(keep.Config.Packages) == 0 {
		return nil, fmt.Errorf("pruning %s: the filtered catalog holds no package", src)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("pruning %s: %w", src, err)
	}
	tmpName := tmp.Name()
	tmp.Close()
	ok := false
	defer func() {
		if !ok {
			os.Remove(tmpName)
		}
	}()
	// Bundle level first, then whole packages. Each attempt starts from a
	// fresh copy.
	res, exactErr := pruneCopy(ctx, src, tmpName, keep, true)
	if exactErr == nil {
		exactErr = checkExact(res, keep)
	}
	if exactErr != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var err error
		if res, err = pruneCopy(ctx, src, tmpName, keep, false); err != nil {
			return nil, fmt.Errorf("pruning %s: %w", src, err)
		}
	}
	if !res.Exact {
		res.Inexact = exactErr.Error()
		keptBundles := map[string]bool{}
		for _, b := range keep.Config.Bundles {
			keptBundles[b.Package+"/"+b.Name] = true
		}
		for _, b := range res.Catalog.Config.Bundles {
			if !keptBundles[b.Package+"/"+b.Name] {
				res.ExtraBundles = append(res.ExtraBundles, b.Package+"/"+b.Name)
			}
		}
	}
	if err := syncFile(tmpName); err != nil {
		return nil, fmt.Errorf("pruning %s: %w", src, err)
	}
	if err := os.Rename(tmpName, dst); err != nil {
		return nil, fmt.Errorf("pruning %s: %w", src, err)
	}
	ok = true
	res.Catalog.Source, res.Catalog.DatabasePath = dst, dst
	return res, nil
}

// checkExact compares the pruned database (r.Catalog) with keep: the same
// packages, default channels, channels, heads and bundles. A channel may
// list more bundles than keep's (see PruneResult.ExtraChannelEntries), as
// long as each is a bundle keep holds.
func checkExact(r *PruneResult, keep *Catalog) error {
	got, want := r.Catalog.Config, keep.Config
	if a, b := strings.Join(r.Catalog.PackageNames(), ","), strings.Join(keep.PackageNames(), ","); a != b {
		return fmt.Errorf("pruned database holds packages %s, want %s", a, b)
	}
	defaults := map[string]string{}
	for _, p := range want.Packages {
		defaults[p.Name] = p.DefaultChannel
	}
	for _, p := range got.Packages {
		if defaults[p.Name] != p.DefaultChannel {
			return fmt.Errorf("package %s: default channel %q, want %q", p.Name, p.DefaultChannel, defaults[p.Name])
		}
	}
	bundles := func(cfg *declcfg.DeclarativeConfig) []string {
		var out []string
		for _, b := range cfg.Bundles {
			out = append(out, b.Package+"/"+b.Name)
		}
		sort.Strings(out)
		return out
	}
	if a, b := bundles(got), bundles(want); strings.Join(a, ",") != strings.Join(b, ",") {
		return fmt.Errorf("pruned database holds bundles %v, want %v", a, b)
	}
	wantCh := map[string]declcfg.Channel{}
	for _, ch := range want.Channels {
		wantCh[ch.Package+"/"+ch.Name] = ch
	}
	if len(got.Channels) != len(want.Channels) {
		return fmt.Errorf("pruned database holds %d channels, want %d", len(got.Channels), len(want.Channels))
	}
	r.ExtraChannelEntries = nil
	for _, ch := range got.Channels {
		key := ch.Package + "/" + ch.Name
		w, ok := wantCh[key]
		if !ok {
			return fmt.Errorf("pruned database holds channel %s, not in the selection", key)
		}
		gh, err := channelHead(ch)
		if err != nil {
			return fmt.Errorf("pruned channel %s: %w", key, err)
		}
		wh, err := channelHead(w)
		if err != nil {
			return fmt.Errorf("selected channel %s: %w", key, err)
		}
		if gh != wh {
			return fmt.Errorf("channel %s: head %s, want %s", key, gh, wh)
		}
		in := map[string]bool{}
		for _, e := range ch.Entries {
			in[e.Name] = true
		}
		wantIn := map[string]bool{}
		for _, e := range w.Entries {
			wantIn[e.Name] = true
			if !in[e.Name] {
				return fmt.Errorf("channel %s lost bundle %s", key, e.Name)
			}
		}
		for _, e := range ch.Entries {
			if !wantIn[e.Name] {
				r.ExtraChannelEntries = append(r.ExtraChannelEntries, key+"/"+e.Name)
			}
		}
	}
	sort.Strings(r.ExtraChannelEntries)
	return nil
}

// pruneCopy copies src to dst and prunes dst: removes the packages keep
// lacks and, when exact, rewrites the kept ones to keep (pruneDatabase). It
// returns the result with the pruned database read back.
func pruneCopy(ctx context.Context, src, dst string, keep *Catalog, exact bool) (*PruneResult, error) {
	if err := copyFile(src, dst); err != nil {
		return nil, err
	}
	res, err := pruneFile(ctx, dst, keep, exact)
	if err != nil {
		return nil, err
	}
	// Read back from a copy (loading migrates): dst keeps its schema.
	if res.Catalog, err = LoadSQLite(ctx, dst); err != nil {
		return nil, fmt.Errorf("reading the pruned database: %w", err)
	}
	return res, nil
}

func pruneFile(ctx context.Context, path string, keep *Catalog, exact bool) (*PruneResult, error) {
	db, err := openSQLite(path)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	res := &PruneResult{Exact: exact}
	// pruneDatabase deletes every dependent row itself. With foreign keys
	// on, sqlite would also scan each child table (none is indexed on its
	// key) once per deleted bundle: 5 s of the 17 s it took for 2000
	// bundles before the deletes were set-based.
	if _, err := db.ExecContext(ctx, "PRAGMA foreign_keys = OFF"); err != nil {
		return nil, err
	}
	if res.RemovedPackages, err = pruneDatabase(ctx, db, keep.Config, exact); err != nil {
		return nil, err
	}
	// Give the space back: catalog pods load the whole file.
	if _, err := db.ExecContext(ctx, "VACUUM"); err != nil {
		return nil, fmt.Errorf("compacting: %w", err)
	}
	return res, nil
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
