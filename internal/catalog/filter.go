package catalog

import (
	"context"
	"errors"

	"github.com/airlock-mirror/airlock/internal/imageset"
)

// FilterReport says what a filter kept and why it added what was not asked for.
type FilterReport struct {
	// Packages lists, per kept package, the channels and bundles kept.
	Packages []FilteredPackage `json:"packages"`
	// Dependencies lists what was added because a kept bundle requires it.
	Dependencies []AddedDependency `json:"dependencies,omitempty"`
	// Warnings are tolerated problems (a requirement no bundle in the
	// catalog satisfies, an invalid image reference, ...).
	Warnings []Warning `json:"warnings,omitempty"`
}

// FilteredPackage is one package of a filtered catalog.
type FilteredPackage struct {
	Name           string            `json:"name"`
	DefaultChannel string            `json:"defaultChannel"`
	Channels       []FilteredChannel `json:"channels"`
	// Dependency is true when the package was not requested and is only
	// there because a kept bundle requires it.
	Dependency bool `json:"dependency,omitempty"`
}

// FilteredChannel is one kept channel with its kept entries.
type FilteredChannel struct {
	Name    string   `json:"name"`
	Head    string   `json:"head"`
	Bundles []string `json:"bundles"`
}

// AddedDependency is one bundle added to satisfy a requirement.
type AddedDependency struct {
	Package string `json:"package"`
	Channel string `json:"channel"`
	Bundle  string `json:"bundle"`
	// RequiredBy is the bundle (package/bundle) whose requirement it satisfies.
	RequiredBy string `json:"requiredBy"`
	// Requirement is the requirement, e.g. `olm.package.required etcd >=0.9.0`
	// or `olm.gvk.required etcd.database.coreos.com/v1beta2 EtcdCluster`.
	Requirement string `json:"requirement"`
}

// Filter returns the part of c that op selects, with the semantics of
// oc-mirror v2's operators[] entries:
//
//   - no packages and full: the whole catalog, unchanged;
//   - no packages, not full: every package, each channel reduced to its head;
//   - a package without channels: all its channels, heads only unless full;
//   - a package with channels: only those channels;
//   - minVersion/maxVersion (package level, or per channel — not both):
//     the entries in range, plus the entries the upgrade graph needs so
//     each channel keeps a single head; full keeps every entry of the kept
//     channels instead of heads;
//   - defaultChannel overrides the package's default channel, and is
//     required when the kept channels exclude the original default.
//
// Beyond oc-mirror, unless op.SkipDependencies is set the bundles the kept
// bundles require (olm.package.required with its version range,
// olm.gvk.required resolved against providers' olm.gvk) are added
// transitively — the head of the range that satisfies each requirement, in
// the dependency package's default channel when it has one — and reported.
//
// The result is validated with operator-registry's model (no empty
// channel, an existing default channel, no dangling reference); when the
// request cannot give a valid catalog the error names the package and
// channel and says why. c is not modified.
func Filter(ctx context.Context, c *Catalog, op imageset.Operator) (*Catalog, *FilterReport, error) {
	return nil, nil, errors.New("catalog.Filter: not implemented yet")
}
