package catalog

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ImageOpener opens a catalog image. The engine (or a test) satisfies it;
// ref carries its transport prefix (docker://, oci://, file://). When the
// reference is an index, the opener picks the platform the user asked for
// (--index-filter-by-os, default linux/amd64): catalog content is the same
// for every platform of an index, only the opm binary differs.
type ImageOpener interface {
	OpenImage(ctx context.Context, ref string) (v1.Image, error)
}

// ImageOpenerFunc adapts a function to ImageOpener.
type ImageOpenerFunc func(ctx context.Context, ref string) (v1.Image, error)

// OpenImage calls f.
func (f ImageOpenerFunc) OpenImage(ctx context.Context, ref string) (v1.Image, error) {
	return f(ctx, ref)
}

// FromImage reads the catalog held by a catalog image. The image config
// labels say where: LabelConfigs names an FBC directory, LabelDatabase a
// sqlite database. Layers are read from the top down and reading stops as
// soon as the catalog path is fully determined (a layer that replaced the
// whole directory or file), so a rebuilt catalog on a large base never
// downloads the base; only entries under the catalog path are extracted,
// into a temporary directory removed before returning.
func FromImage(ctx context.Context, img v1.Image) (*Catalog, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading image config: %w", err)
	}
	labels := cf.Config.Labels
	configs, database := labels[LabelConfigs], labels[LabelDatabase]
	switch {
	case configs != "":
		c, err := fbcFromImage(ctx, img, configs)
		if err != nil {
			return nil, err
		}
		c.Labels, c.ConfigsDir = labels, configs
		return c, nil
	case database != "":
		c, err := sqliteFromImage(ctx, img, database)
		if err != nil {
			return nil, err
		}
		c.Labels, c.DatabasePath = labels, database
		return c, nil
	default:
		return nil, fmt.Errorf("not an operator catalog image: neither label %s nor %s is set", LabelConfigs, LabelDatabase)
	}
}

// ExtractDatabase writes the sqlite index database of a legacy catalog
// image (the file named by LabelDatabase) to dst, through a temporary file
// renamed into place. With PruneSQLite it gives the pruned index.db that
// rebuilding a sqlite catalog image in its own format needs.
func ExtractDatabase(ctx context.Context, img v1.Image, dst string) error {
	cf, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("reading image config: %w", err)
	}
	db := cf.Config.Labels[LabelDatabase]
	if db == "" {
		return fmt.Errorf("not a legacy sqlite catalog image: label %s is not set", LabelDatabase)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dst), ".airlock-db-*")
	if err != nil {
		return fmt.Errorf("extracting %s: %w", db, err)
	}
	defer os.RemoveAll(tmp)
	n, err := extractPath(ctx, img, db, tmp)
	if err != nil {
		return fmt.Errorf("extracting %s: %w", db, err)
	}
	if n == 0 {
		return fmt.Errorf("label %s=%s but the image has no such file", LabelDatabase, db)
	}
	file := filepath.Join(tmp, filepath.Base(cleanTarPath(db)))
	if err := syncFile(file); err != nil {
		return fmt.Errorf("extracting %s: %w", db, err)
	}
	if err := os.Rename(file, dst); err != nil {
		return fmt.Errorf("extracting %s: %w", db, err)
	}
	return nil
}
