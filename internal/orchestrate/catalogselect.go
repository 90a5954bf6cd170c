package orchestrate

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/blang/semver/v4"

	"github.com/airlock-mirror/airlock/internal/catalog"
	"github.com/airlock-mirror/airlock/internal/imageset"
	"github.com/airlock-mirror/airlock/internal/ref"
)

// The catalog commands (catalog mirror, catalog filter, catalog
// install-manifests) select and name catalogs the same way; these are the
// one copy they share.

// ParsePackageSpecs turns --package NAME[:CHANNEL][@MIN-MAX] flags into an
// operators[] entry. The same package may be given once per channel.
func ParsePackageSpecs(index string, specs []string) (*imageset.Operator, error) {
	op := &imageset.Operator{Catalog: index}
	byName := map[string]int{}
	for _, s := range specs {
		body, rng, hasRange := strings.Cut(s, "@")
		name, channel, _ := strings.Cut(body, ":")
		if name == "" || strings.ContainsAny(name, " /") || (strings.Contains(body, ":") && channel == "") {
			return nil, fmt.Errorf("--package %q: want NAME, NAME:CHANNEL, NAME:CHANNEL@MIN-MAX or NAME@MIN-MAX", s)
		}
		var minV, maxV string
		if hasRange {
			var err error
			if minV, maxV, err = splitVersionRange(rng); err != nil {
				return nil, fmt.Errorf("--package %q: %w", s, err)
			}
		}
		i, ok := byName[name]
		if !ok {
			op.Packages = append(op.Packages, imageset.IncludePackage{Name: name})
			i = len(op.Packages) - 1
			byName[name] = i
		}
		p := &op.Packages[i]
		switch {
		case channel != "":
			if ok && len(p.Channels) == 0 {
				return nil, fmt.Errorf("--package %s given both with and without a channel", name)
			}
			p.Channels = append(p.Channels, imageset.IncludeChannel{Name: channel, MinVersion: minV, MaxVersion: maxV})
		default:
			if ok {
				return nil, fmt.Errorf("--package %s given twice", name)
			}
			p.MinVersion, p.MaxVersion = minV, maxV
		}
	}
	return op, nil
}

// DefaultFirstChannels makes, for --package selections only, the first
// channel named the default channel of a package whose catalog default is
// not among the selected channels — an ImageSetConfiguration must say so
// with defaultChannel, but on the command line that would need another flag.
func DefaultFirstChannels(c *catalog.Catalog, op *imageset.Operator) {
	for i := range op.Packages {
		p := &op.Packages[i]
		pkg := c.Package(p.Name)
		if pkg == nil || len(p.Channels) == 0 || p.DefaultChannel != "" {
			continue
		}
		listed := false
		for _, ch := range p.Channels {
			listed = listed || ch.Name == pkg.DefaultChannel
		}
		if !listed {
			p.DefaultChannel = p.Channels[0].Name
		}
	}
}

// splitVersionRange splits "MIN-MAX" where MIN and MAX are semantic
// versions that may themselves contain '-' (pre-releases): the one split
// where both sides are valid (or empty) wins.
func splitVersionRange(s string) (string, string, error) {
	valid := func(v string) bool {
		if v == "" {
			return true
		}
		_, err := semver.Parse(v)
		return err == nil
	}
	var found [][2]string
	for i := 0; i < len(s); i++ {
		if s[i] != '-' {
			continue
		}
		a, b := s[:i], s[i+1:]
		if valid(a) && valid(b) && (a != "" || b != "") {
			found = append(found, [2]string{a, b})
		}
	}
	switch len(found) {
	case 1:
		return found[0][0], found[0][1], nil
	case 0:
		if valid(s) && s != "" {
			return s, s, nil // a single version: exactly that one
		}
		return "", "", fmt.Errorf("version range %q: want MIN-MAX with semantic versions, e.g. 1.2.0-1.4.0, 1.2.0- or -1.4.0", s)
	}
	return "", "", fmt.Errorf("version range %q is ambiguous (pre-release versions contain '-'); use an ImageSetConfiguration file", s)
}

// OperatorFor picks the operators[] entry of cfg for the catalog INDEX:
// the one whose catalog names the same image, or the only one.
func OperatorFor(cfg *imageset.ImageSetConfiguration, file, index string) (*imageset.Operator, error) {
	ops := cfg.Mirror.Operators
	if len(ops) == 0 {
		return nil, fmt.Errorf("%s: no mirror.operators entry", file)
	}
	want, werr := ref.Parse(index)
	var names []string
	for i := range ops {
		names = append(names, ops[i].Catalog)
		if ops[i].Catalog == index {
			return &ops[i], nil
		}
		if werr == nil {
			if r, err := ref.Parse(ops[i].Catalog); err == nil && r.Name() == want.Name() {
				return &ops[i], nil
			}
		}
	}
	if len(ops) == 1 {
		return &ops[0], nil
	}
	return nil, fmt.Errorf("%s: no mirror.operators entry for catalog %s (entries: %s)", file, index, strings.Join(names, ", "))
}

// LocalCatalogName names a catalog read from disk: a directory by its
// name (community-operators-v4.18 keeps its ".18"), a file without its
// extension (index.db => index).
func LocalCatalogName(p string) string {
	base := filepath.Base(filepath.Clean(p))
	if st, err := os.Stat(p); err == nil && !st.IsDir() {
		base = strings.TrimSuffix(base, filepath.Ext(base))
	}
	return base
}
