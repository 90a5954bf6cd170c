package catalog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/operator-framework/operator-registry/alpha/declcfg"
)

// sqliteMagic starts every sqlite 3 database file; it tells an index.db
// from a JSON/YAML catalog file regardless of the file name.
var sqliteMagic = []byte("SQLite format 3\x00")

// LoadDir reads a file-based catalog directory: every JSON and YAML file
// below path, skipping what .indexignore files exclude. Blobs of unknown
// schemas are kept in Config.Others. A parse error names the file.
// Old-format catalogs (channels recorded as olm.channel bundle properties,
// no olm.channel blobs) are upgraded to olm.channel blobs.
func LoadDir(ctx context.Context, path string) (*Catalog, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("reading catalog: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("reading catalog %s: not a directory", path)
	}
	cfg, err := loadFS(ctx, os.DirFS(path), path)
	if err != nil {
		return nil, err
	}
	return newFBC(cfg, path), nil
}

// LoadFS reads a file-based catalog from a file system (e.g. the catalog
// directory extracted from an image); name is used in messages.
func LoadFS(ctx context.Context, fsys fs.FS, name string) (*Catalog, error) {
	cfg, err := loadFS(ctx, fsys, name)
	if err != nil {
		return nil, err
	}
	return newFBC(cfg, name), nil
}

// LoadFile reads one catalog file: a sqlite index database (recognised by
// its header, whatever its name) or a single JSON/YAML FBC file.
func LoadFile(ctx context.Context, path string) (*Catalog, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading catalog: %w", err)
	}
	head := make([]byte, len(sqliteMagic))
	n, _ := io.ReadFull(f, head)
	f.Close()
	if n == len(sqliteMagic) && bytes.Equal(head, sqliteMagic) {
		return LoadSQLite(ctx, path)
	}
	dir, file := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	cfg, err := loadFS(ctx, singleFileFS{fsys: os.DirFS(dir), name: file}, path)
	if err != nil {
		return nil, err
	}
	return newFBC(cfg, path), nil
}

// Load reads a catalog from a local directory, a local file (FBC file or
// sqlite database), or an image reference with a transport prefix
// (docker://, oci://, file://) opened through opener. opener may be nil
// when only local paths are expected.
func Load(ctx context.Context, source string, opener ImageOpener) (*Catalog, error) {
	if isImageRef(source) {
		if opener == nil {
			return nil, fmt.Errorf("catalog %s: image references need an image opener", source)
		}
		img, err := opener.OpenImage(ctx, source)
		if err != nil {
			return nil, fmt.Errorf("opening catalog image %s: %w", source, err)
		}
		c, err := FromImage(ctx, img)
		if err != nil {
			return nil, fmt.Errorf("catalog image %s: %w", source, err)
		}
		c.Source = source
		return c, nil
	}
	st, err := os.Stat(source)
	if err != nil {
		return nil, fmt.Errorf("reading catalog: %w (want a directory, an index.db or catalog file, or an image reference such as docker://registry/ns/index:tag)", err)
	}
	if st.IsDir() {
		return LoadDir(ctx, source)
	}
	return LoadFile(ctx, source)
}

func isImageRef(s string) bool {
	for _, p := range []string{"docker://", "oci://", "file://"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func newFBC(cfg *declcfg.DeclarativeConfig, source string) *Catalog {
	c := &Catalog{Config: cfg, Format: FormatFBC, Source: source}
	c.Warnings = append(c.Warnings, checkContent(cfg)...)
	return c
}

// loadFS walks fsys like operator-registry's LoadFS (.indexignore honoured,
// JSON and YAML, files parsed concurrently) but keeps the path of every
// blob so that an error says which file is broken, and returns the result
// in a deterministic order: LoadFS's order depends on goroutine scheduling,
// which would make written catalogs and golden tests unstable.
func loadFS(ctx context.Context, fsys fs.FS, name string) (*declcfg.DeclarativeConfig, error) {
	type located struct {
		path string
		meta *declcfg.Meta
	}
	var mu sync.Mutex
	var metas []located
	err := declcfg.WalkMetasFS(ctx, fsys, func(path string, meta *declcfg.Meta, err error) error {
		if err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(name, path), err)
		}
		mu.Lock()
		metas = append(metas, located{path, meta})
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading catalog %s: %w", name, err)
	}
	// Order by file then position is lost with concurrency; order by file,
	// schema, package and name instead, which is what the writers produce anyway.
	sort.SliceStable(metas, func(i, j int) bool {
		a, b := metas[i], metas[j]
		if a.path != b.path {
			return a.path < b.path
		}
		if a.meta.Package != b.meta.Package {
			return a.meta.Package < b.meta.Package
		}
		if a.meta.Schema != b.meta.Schema {
			return a.meta.Schema < b.meta.Schema
		}
		return a.meta.Name < b.meta.Name
	})
	all := make([]*declcfg.Meta, len(metas))
	for i := range metas {
		all[i] = metas[i].meta
	}
	cfg, err := declcfg.LoadSlice(all)
	if err != nil {
		// Find the culprit to name its file; the happy path parses once.
		for _, m := range metas {
			if _, perr := declcfg.LoadSlice([]*declcfg.Meta{m.meta}); perr != nil {
				return nil, fmt.Errorf("reading catalog %s: %s: %s %q: %w", name, m.path, m.meta.Schema, m.meta.Name, perr)
			}
		}
		return nil, fmt.Errorf("reading catalog %s: %w", name, err)
	}
	if len(cfg.Packages) == 0 && len(cfg.Bundles) == 0 && len(cfg.Channels) == 0 {
		return nil, fmt.Errorf("reading catalog %s: no olm.package, olm.channel or olm.bundle found (is this a file-based catalog directory?)", name)
	}
	dropDecodedObjects(cfg)
	upgradeLegacyChannels(cfg)
	sortConfig(cfg)
	return cfg, nil
}

// dropDecodedObjects frees the decoded copies of olm.bundle.object
// properties that operator-registry's loader keeps beside the properties
// themselves (Objects, CsvJSON): airlock never reads them, and they double
// the memory of a large catalog. A bundle without an image keeps them,
// because OLM's model accepts such a bundle only when it has objects.
func dropDecodedObjects(cfg *declcfg.DeclarativeConfig) {
	for i := range cfg.Bundles {
		b := &cfg.Bundles[i]
		if b.Image != "" {
			b.Objects, b.CsvJSON = nil, ""
		}
	}
}

// sortConfig puts a config in a canonical order: packages by name, then
// channels and bundles by package and name.
func sortConfig(cfg *declcfg.DeclarativeConfig) {
	sort.SliceStable(cfg.Packages, func(i, j int) bool { return cfg.Packages[i].Name < cfg.Packages[j].Name })
	sort.SliceStable(cfg.Channels, func(i, j int) bool {
		a, b := cfg.Channels[i], cfg.Channels[j]
		if a.Package != b.Package {
			return a.Package < b.Package
		}
		return a.Name < b.Name
	})
	sort.SliceStable(cfg.Bundles, func(i, j int) bool {
		a, b := cfg.Bundles[i], cfg.Bundles[j]
		if a.Package != b.Package {
			return a.Package < b.Package
		}
		return a.Name < b.Name
	})
	sort.SliceStable(cfg.Deprecations, func(i, j int) bool { return cfg.Deprecations[i].Package < cfg.Deprecations[j].Package })
	sort.SliceStable(cfg.Others, func(i, j int) bool {
		a, b := cfg.Others[i], cfg.Others[j]
		if a.Package != b.Package {
			return a.Package < b.Package
		}
		if a.Schema != b.Schema {
			return a.Schema < b.Schema
		}
		return a.Name < b.Name
	})
}

// singleFileFS exposes one file of a directory as a file system so a lone
// catalog file goes through the same walker as a directory.
type singleFileFS struct {
	fsys fs.FS
	name string
}

func (s singleFileFS) Open(name string) (fs.File, error) {
	if name == "." {
		return &singleDir{entry: s}, nil
	}
	if name != s.name {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return s.fsys.Open(name)
}

type singleDir struct {
	entry singleFileFS
	done  bool
}

func (d *singleDir) Stat() (fs.FileInfo, error) { return fs.Stat(d.entry.fsys, ".") }
func (d *singleDir) Read([]byte) (int, error)   { return 0, errors.New("is a directory") }
func (d *singleDir) Close() error               { return nil }
func (d *singleDir) ReadDir(n int) ([]fs.DirEntry, error) {
	if d.done {
		if n > 0 {
			return nil, io.EOF
		}
		return nil, nil
	}
	d.done = true
	st, err := fs.Stat(d.entry.fsys, d.entry.name)
	if err != nil {
		return nil, err
	}
	return []fs.DirEntry{fs.FileInfoToDirEntry(st)}, nil
}
