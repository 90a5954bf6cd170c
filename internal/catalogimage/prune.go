package catalogimage

import (
	"archive/tar"
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/operator-framework/operator-registry/pkg/sqlite"

	// Pure-Go driver "sqlite": operator-registry's own Open needs cgo.
	_ "modernc.org/sqlite"
)

// ExtractDatabase writes the index database of a legacy sqlite catalog
// image (the file its database label names, as the merged file system
// shows it) to dst.
func ExtractDatabase(img v1.Image, dst string) error {
	cf, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("reading image config: %w", err)
	}
	db := cf.Config.Labels[LabelDatabase]
	if db == "" {
		return fmt.Errorf("not a legacy sqlite catalog image: label %s is not set", LabelDatabase)
	}
	want := strings.TrimPrefix(path.Clean("/"+db), "/")
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return fmt.Errorf("label %s=%s but the image has no such file", LabelDatabase, db)
		}
		if err != nil {
			return fmt.Errorf("reading image file system: %w", err)
		}
		if strings.TrimPrefix(path.Clean("/"+h.Name), "/") != want || h.Typeflag != tar.TypeReg {
			continue
		}
		f, err := os.Create(dst)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, tr); err != nil {
			f.Close()
			return fmt.Errorf("extracting %s: %w", db, err)
		}
		return f.Close()
	}
}

// PruneDatabase removes from the sqlite index database at dbPath (a copy
// the caller owns; it is modified in place) every package not in keep,
// with operator-registry's own removal code (bundles, channels, related
// images, stranded bundles), then compacts the file. Like `opm index
// prune`, it works per package: channel and version selections cannot be
// expressed in a legacy database without rewriting its upgrade graph.
//
// The database is first migrated to operator-registry's latest sqlite
// schema, which the removal code needs. opm's `registry serve` migrates
// databases on start as well and only ever adds tables and columns, so an
// older opm keeps reading it; this could not be run against an old opm
// here, so it is stated rather than tested.
func PruneDatabase(ctx context.Context, dbPath string, keep []string) (removed []string, err error) {
	db, err := sql.Open("sqlite", "file:"+dbPath+"?_pragma=foreign_keys(1)")
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", dbPath, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	m, err := sqlite.NewSQLLiteMigrator(db)
	if err != nil {
		return nil, fmt.Errorf("preparing schema migration of %s: %w", dbPath, err)
	}
	if err := m.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("migrating %s: %w", dbPath, err)
	}
	rows, err := db.QueryContext(ctx, "SELECT name FROM package")
	if err != nil {
		return nil, fmt.Errorf("listing packages of %s: %w", dbPath, err)
	}
	var all []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, err
		}
		all = append(all, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	keepSet := map[string]bool{}
	for _, k := range keep {
		keepSet[k] = true
	}
	for _, k := range keep {
		found := false
		for _, a := range all {
			found = found || a == k
		}
		if !found {
			sort.Strings(all)
			return nil, fmt.Errorf("package %q not in %s (have: %s)", k, dbPath, strings.Join(all, ", "))
		}
	}
	loader, err := sqlite.NewSQLLiteLoader(db)
	if err != nil {
		return nil, fmt.Errorf("opening %s for pruning: %w", dbPath, err)
	}
	sort.Strings(all)
	for _, p := range all {
		if keepSet[p] {
			continue
		}
		if err := loader.RemovePackage(p); err != nil {
			return removed, fmt.Errorf("removing package %s from %s: %w", p, dbPath, err)
		}
		removed = append(removed, p)
	}
	if _, err := db.ExecContext(ctx, "VACUUM"); err != nil {
		return removed, fmt.Errorf("compacting %s: %w", dbPath, err)
	}
	return removed, nil
}
