package catalog

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"

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
	// ExtraBundles are bundles kept in the database although the filtered
	// catalog dropped them: pruning works per package (as `opm index
	// prune` does), because operator-registry has no safe way to delete a
	// single bundle from a channel's replaces chain.
	ExtraBundles []string `json:"extraBundles,omitempty"`
	// Migrated is true when the schema had to be upgraded first.
	Migrated bool `json:"migrated,omitempty"`
}

// PruneSQLite writes to dst a copy of the sqlite index database src from
// which every package that keep (a filtered catalog) does not hold has
// been removed, with operator-registry's own removal code (stranded
// bundles and deprecations cleaned up too). It is how a legacy sqlite
// catalog image is rebuilt in its own format for clusters whose opm
// predates file-based catalogs. src is never modified; dst is written to a
// temporary file and renamed into place once complete and synced. The
// schema is left as it is unless removal needs a newer one.
func PruneSQLite(ctx context.Context, src, dst string, keep *Catalog) (*PruneResult, error) {
	want := map[string]bool{}
	keptBundles := map[string]bool{}
	for _, p := range keep.Config.Packages {
		want[p.Name] = true
	}
	for _, b := range keep.Config.Bundles {
		keptBundles[b.Package+"/"+b.Name] = true
	}
	if len(want) == 0 {
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
	res, err := pruneCopy(ctx, src, tmpName, want, false)
	if err != nil {
		// Old schemas may lack what removal touches: upgrade and retry
		// from a fresh copy (the failed attempt rolled back anyway).
		var err2 error
		if res, err2 = pruneCopy(ctx, src, tmpName, want, true); err2 != nil {
			return nil, fmt.Errorf("pruning %s: %w (after schema migration: %v)", src, err, err2)
		}
	}
	// What the per-package pruning keeps beyond the filter.
	pruned, err := LoadSQLite(ctx, tmpName)
	if err != nil {
		return nil, fmt.Errorf("reading pruned database: %w", err)
	}
	for _, b := range pruned.Config.Bundles {
		if !keptBundles[b.Package+"/"+b.Name] {
			res.ExtraBundles = append(res.ExtraBundles, b.Package+"/"+b.Name)
		}
	}
	if err := syncFile(tmpName); err != nil {
		return nil, fmt.Errorf("pruning %s: %w", src, err)
	}
	if err := os.Rename(tmpName, dst); err != nil {
		return nil, fmt.Errorf("pruning %s: %w", src, err)
	}
	ok = true
	return res, nil
}

func pruneCopy(ctx context.Context, src, dst string, want map[string]bool, migrate bool) (*PruneResult, error) {
	if err := copyFile(src, dst); err != nil {
		return nil, err
	}
	db, err := openSQLite(dst)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	res := &PruneResult{Migrated: migrate}
	if migrate {
		if err := migrateSQLite(ctx, db); err != nil {
			return nil, err
		}
	}
	q := sqlite.NewSQLLiteQuerierFromDb(db)
	pkgs, err := q.ListPackages(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing packages: %w", err)
	}
	for p := range want {
		found := false
		for _, have := range pkgs {
			found = found || have == p
		}
		if !found {
			return nil, fmt.Errorf("package %q of the filtered catalog is not in the database", p)
		}
	}
	loader, err := sqlite.NewSQLLiteLoader(db)
	if err != nil {
		return nil, err
	}
	for _, p := range pkgs {
		if want[p] {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := loader.RemovePackage(p); err != nil {
			return nil, fmt.Errorf("removing package %s: %w", p, err)
		}
		res.RemovedPackages = append(res.RemovedPackages, p)
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
