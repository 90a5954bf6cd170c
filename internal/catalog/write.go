package catalog

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/operator-framework/operator-registry/alpha/declcfg"
)

// WriteDir writes c as a file-based catalog directory at dir: one
// sub-directory per package holding catalog.json (or catalog.yaml when
// format is "yaml"), plus others.json for blobs of unknown schemas that
// belong to no package. One directory per package is the layout of the
// upstream community and Red Hat catalogs, so diffs of a filtered catalog
// against its source stay per package.
//
// The directory is built under a temporary name next to dir and renamed
// into place: an existing dir is replaced only once the new one is
// complete, and an interrupted run leaves no half-written catalog.
func WriteDir(c *Catalog, dir, format string) error {
	ext, write, err := writer(format)
	if err != nil {
		return err
	}
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("writing catalog %s: %w", dir, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing catalog %s: %w", dir, err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("writing catalog %s: %w", dir, err)
	}
	for name, part := range splitByPackage(c.Config) {
		// Package names become directory names: refuse anything that
		// could escape the output directory.
		if name != "" && (name == "." || name == ".." || strings.ContainsAny(name, `/\`) || filepath.Clean(name) != name) {
			return fmt.Errorf("writing catalog %s: package name %q cannot be a directory name", dir, name)
		}
		sub := filepath.Join(tmp, name)
		file := "catalog" + ext
		if name == "" {
			sub, file = tmp, "others"+ext
		}
		var buf bytes.Buffer
		if err := write(*part, &buf); err != nil {
			return fmt.Errorf("encoding catalog package %s: %w", name, err)
		}
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return fmt.Errorf("writing catalog %s: %w", dir, err)
		}
		if err := writeFileSync(filepath.Join(sub, file), buf.Bytes()); err != nil {
			return fmt.Errorf("writing catalog %s: %w", dir, err)
		}
	}
	if _, err := os.Stat(dir); err == nil {
		old := tmp + ".old"
		if err := os.Rename(dir, old); err != nil {
			return fmt.Errorf("replacing catalog %s: %w", dir, err)
		}
		if err := os.Rename(tmp, dir); err != nil {
			_ = os.Rename(old, dir) // put the previous catalog back
			return fmt.Errorf("replacing catalog %s: %w", dir, err)
		}
		os.RemoveAll(old)
	} else if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("writing catalog %s: %w", dir, err)
	}
	ok = true
	return nil
}

func writer(format string) (string, func(declcfg.DeclarativeConfig, interface{ Write([]byte) (int, error) }) error, error) {
	switch format {
	case "", "json":
		return ".json", func(cfg declcfg.DeclarativeConfig, w interface{ Write([]byte) (int, error) }) error {
			return declcfg.WriteJSON(cfg, w)
		}, nil
	case "yaml":
		return ".yaml", func(cfg declcfg.DeclarativeConfig, w interface{ Write([]byte) (int, error) }) error {
			return declcfg.WriteYAML(cfg, w)
		}, nil
	}
	return "", nil, fmt.Errorf("catalog format %q: want json or yaml", format)
}

// splitByPackage groups every blob by package; blobs without a package
// (unknown schemas) go under "".
func splitByPackage(cfg *declcfg.DeclarativeConfig) map[string]*declcfg.DeclarativeConfig {
	out := map[string]*declcfg.DeclarativeConfig{}
	get := func(p string) *declcfg.DeclarativeConfig {
		if out[p] == nil {
			out[p] = &declcfg.DeclarativeConfig{}
		}
		return out[p]
	}
	for _, p := range cfg.Packages {
		get(p.Name).Packages = append(get(p.Name).Packages, p)
	}
	for _, ch := range cfg.Channels {
		get(ch.Package).Channels = append(get(ch.Package).Channels, ch)
	}
	for _, b := range cfg.Bundles {
		get(b.Package).Bundles = append(get(b.Package).Bundles, b)
	}
	for _, d := range cfg.Deprecations {
		get(d.Package).Deprecations = append(get(d.Package).Deprecations, d)
	}
	for _, m := range cfg.Others {
		get(m.Package).Others = append(get(m.Package).Others, m)
	}
	return out
}

// PackageNames returns the sorted package names of c.
func (c *Catalog) PackageNames() []string {
	out := make([]string, 0, len(c.Config.Packages))
	for _, p := range c.Config.Packages {
		out = append(out, p.Name)
	}
	sort.Strings(out)
	return out
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
