// Package catalog reads OLM operator catalogs — file-based catalogs (FBC)
// and legacy sqlite index databases — into one in-memory form, queries
// them, and filters them with the ImageSetConfiguration operators[]
// semantics plus dependency resolution.
//
// Every catalog, whatever its source format, is held as an
// operator-registry declcfg.DeclarativeConfig: sqlite databases are
// converted on load (without cgo, over modernc.org/sqlite), so queries,
// filters and writers have a single code path.
package catalog

import (
	"fmt"

	"github.com/operator-framework/operator-registry/alpha/declcfg"
)

// Format is the on-disk form a catalog was read from.
type Format string

const (
	// FormatFBC is a file-based catalog (a directory of JSON/YAML blobs).
	FormatFBC Format = "fbc"
	// FormatSQLite is a legacy sqlite index database (index.db).
	FormatSQLite Format = "sqlite"
)

// Image labels that say where a catalog image keeps its content.
const (
	LabelConfigs  = "operators.operatorframework.io.index.configs.v1"
	LabelDatabase = "operators.operatorframework.io.index.database.v1"
)

// Catalog is a loaded operator catalog.
type Catalog struct {
	// Config holds the whole catalog. Blobs of unknown schemas are kept in
	// Config.Others so that writing the catalog back loses nothing.
	Config *declcfg.DeclarativeConfig
	// Format is the form it was read from.
	Format Format
	// Source names where it came from (directory, file or image
	// reference), for messages.
	Source string
	// Labels are the image config labels when the catalog was read from an
	// image; nil otherwise.
	Labels map[string]string
	// ConfigsDir is the FBC directory inside the image (value of
	// LabelConfigs, e.g. "/configs"); empty when not read from an FBC image.
	ConfigsDir string
	// DatabasePath is the sqlite database inside the image (value of
	// LabelDatabase, e.g. "/database/index.db"), or the local file for
	// LoadSQLite; empty for FBC.
	DatabasePath string
	// Warnings are problems that did not stop loading (a bundle or related
	// image with an empty or invalid reference). Each names the package,
	// bundle and field.
	Warnings []Warning
}

// Warning is a problem in the catalog's content that was tolerated.
type Warning struct {
	Package string `json:"package,omitempty"`
	Bundle  string `json:"bundle,omitempty"`
	// Field locates the value, e.g. `relatedImages[2].image` or `image`.
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func (w Warning) String() string {
	s := ""
	if w.Package != "" {
		s += "package " + w.Package + ": "
	}
	if w.Bundle != "" {
		s += "bundle " + w.Bundle + ": "
	}
	if w.Field != "" {
		s += w.Field + ": "
	}
	return s + w.Message
}

// Package returns the olm.package blob named name, or nil.
func (c *Catalog) Package(name string) *declcfg.Package {
	for i := range c.Config.Packages {
		if c.Config.Packages[i].Name == name {
			return &c.Config.Packages[i]
		}
	}
	return nil
}

// errNotFound names what was asked for and what exists, so the user can
// correct a typo without listing the catalog first.
func errNotFound(kind, name string, have []string) error {
	const max = 20
	if len(have) > max {
		have = append(have[:max:max], "...")
	}
	return fmt.Errorf("%s %q not found in catalog (have: %v)", kind, name, have)
}
