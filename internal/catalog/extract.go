package catalog

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// fbcFromImage extracts the FBC directory dir of img and loads it.
func fbcFromImage(ctx context.Context, img v1.Image, dir string) (*Catalog, error) {
	tmp, err := os.MkdirTemp("", "airlock-catalog-*")
	if err != nil {
		return nil, fmt.Errorf("creating temporary directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	n, err := extractPath(ctx, img, dir, tmp)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("label %s=%s but the image has no files under %s", LabelConfigs, dir, dir)
	}
	cfg, err := loadFS(ctx, os.DirFS(tmp), dir)
	if err != nil {
		return nil, err
	}
	return newFBC(cfg, dir), nil
}

// sqliteFromImage extracts the database file db of img and loads it.
func sqliteFromImage(ctx context.Context, img v1.Image, db string) (*Catalog, error) {
	tmp, err := os.MkdirTemp("", "airlock-catalog-*")
	if err != nil {
		return nil, fmt.Errorf("creating temporary directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	n, err := extractPath(ctx, img, db, tmp)
	if err != nil {
		return nil, err
	}
	file := filepath.Join(tmp, filepath.Base(cleanTarPath(db)))
	if n == 0 {
		return nil, fmt.Errorf("label %s=%s but the image has no such file", LabelDatabase, db)
	}
	// The extracted file is already a private copy: migrate it in place.
	c, err := loadSQLiteCopy(ctx, file)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", db, err)
	}
	return c, nil
}

// cleanTarPath turns a tar entry name or label path into a clean relative
// path ("./configs/" and "/configs" both become "configs").
func cleanTarPath(p string) string {
	p = path.Clean("/" + p)
	return strings.TrimPrefix(p, "/")
}

// within reports whether p is root or below it.
func within(p, root string) bool {
	return p == root || strings.HasPrefix(p, root+"/")
}

// extractPath writes the files of img's merged file system found at target
// (a directory or a single file) into dst, applying OCI whiteouts, and
// returns how many files it wrote. A directory target lands as dst's
// contents; a file target as dst/<base name>.
//
// Layers are visited from the top: the first (highest) layer that holds a
// path wins, whiteouts and opaque markers hide lower layers, and once a
// layer replaced the whole target (an opaque marker on it, a whiteout of it
// or a parent, or the target file itself) lower layers are not read at all.
func extractPath(ctx context.Context, img v1.Image, target, dst string) (int, error) {
	target = cleanTarPath(target)
	if target == "" {
		return 0, errors.New("catalog path is the image root; refusing to extract the whole image")
	}
	layers, err := img.Layers()
	if err != nil {
		return 0, fmt.Errorf("listing layers: %w", err)
	}
	seen := map[string]bool{} // paths decided by an upper layer
	var hidden []string       // prefixes hidden from lower layers
	isHidden := func(p string) bool {
		if seen[p] {
			return true
		}
		for _, h := range hidden {
			if within(p, h) {
				return true
			}
		}
		return false
	}
	written := 0
	for i := len(layers) - 1; i >= 0; i-- {
		if err := ctx.Err(); err != nil {
			return written, err
		}
		var newHidden []string
		complete := false
		err := func() error {
			rc, err := layers[i].Uncompressed()
			if err != nil {
				return err
			}
			defer rc.Close()
			tr := tar.NewReader(rc)
			for {
				hdr, err := tr.Next()
				if err == io.EOF {
					return nil
				}
				if err != nil {
					return err
				}
				name := cleanTarPath(hdr.Name)
				base, dir := path.Base(name), path.Dir(name)
				if dir == "." {
					dir = ""
				}
				switch {
				case base == ".wh..wh..opq":
					if dir == "" || within(target, dir) {
						complete = true
					}
					if within(dir, target) || within(target, dir) {
						newHidden = append(newHidden, dir)
					}
					continue
				case strings.HasPrefix(base, ".wh."):
					victim := path.Join(dir, strings.TrimPrefix(base, ".wh."))
					if within(target, victim) {
						complete = true
					}
					if within(victim, target) || within(target, victim) {
						newHidden = append(newHidden, victim)
					}
					continue
				}
				if !within(name, target) || isHidden(name) {
					continue
				}
				seen[name] = true
				if hdr.Typeflag != tar.TypeReg {
					// Directories are created on demand; links and
					// devices have no place in a catalog.
					continue
				}
				rel := strings.TrimPrefix(strings.TrimPrefix(name, target), "/")
				if rel == "" { // the target is a file
					rel = path.Base(target)
					complete = true
				}
				out := filepath.Join(dst, filepath.FromSlash(rel))
				if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
					return err
				}
				f, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
				if err != nil {
					return err
				}
				if _, err := io.Copy(f, tr); err != nil {
					f.Close()
					return fmt.Errorf("extracting %s: %w", name, err)
				}
				if err := f.Close(); err != nil {
					return err
				}
				written++
			}
		}()
		if err != nil {
			d, _ := layers[i].Digest()
			return written, fmt.Errorf("reading layer %d (%s): %w", i+1, d, err)
		}
		hidden = append(hidden, newHidden...)
		if complete {
			break
		}
	}
	return written, nil
}
