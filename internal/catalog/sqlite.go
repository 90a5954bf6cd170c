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
