// Package imageset holds the ImageSetConfiguration of oc-mirror v2
// (apiVersion mirror.openshift.io/v2alpha1): the declarative list of
// releases, operator catalogs, additional images and helm charts a mirror
// run collects. airlock reads the same files so existing users keep them.
//
// Parsing is strict: an unknown field is an error naming the field and the
// file, because a misspelt key (minversion, channel) silently widening or
// narrowing a mirror is exactly the kind of surprise this tool exists to
// remove.
package imageset

// APIVersion and Kind are the only values accepted in a config file.
const (
	APIVersion = "mirror.openshift.io/v2alpha1"
	Kind       = "ImageSetConfiguration"
	// KindDelete is the kind of a DeleteImageSetConfiguration.
	KindDelete = "DeleteImageSetConfiguration"
)

// ImageSetConfiguration is the top-level document.
type ImageSetConfiguration struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// ArchiveSize is the maximum size in GiB of one archive segment; 0 means
	// the default (500).
	ArchiveSize int64  `json:"archiveSize,omitempty"`
	Mirror      Mirror `json:"mirror"`

	// file and lines are where the config was parsed from, so problems
	// found later (a package the catalog lacks) name the line too.
	file  string
	lines lineIndex
}

// DeleteImageSetConfiguration lists what a delete run removes.
type DeleteImageSetConfiguration struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Delete     Delete `json:"delete"`
}

// Delete has the same collectors as Mirror, minus blockedImages.
type Delete struct {
	Platform         Platform          `json:"platform,omitempty"`
	Operators        []Operator        `json:"operators,omitempty"`
	AdditionalImages []AdditionalImage `json:"additionalImages,omitempty"`
	Helm             Helm              `json:"helm,omitempty"`
	Samples          []SampleImage     `json:"samples,omitempty"`
}

// Mirror lists everything one run collects.
type Mirror struct {
	Platform         Platform          `json:"platform,omitempty"`
	Operators        []Operator        `json:"operators,omitempty"`
	AdditionalImages []AdditionalImage `json:"additionalImages,omitempty"`
	BlockedImages    []BlockedImage    `json:"blockedImages,omitempty"`
	Helm             Helm              `json:"helm,omitempty"`
	// Samples is declared by oc-mirror but not implemented there either;
	// accepted so existing files parse.
	Samples []SampleImage `json:"samples,omitempty"`
}

// Platform selects OpenShift release payloads.
type Platform struct {
	Channels []ReleaseChannel `json:"channels,omitempty"`
	// Graph builds and mirrors the Cincinnati graph-data image.
	Graph bool `json:"graph,omitempty"`
	// Release mirrors one specific release image (tag or digest reference).
	Release           string `json:"release,omitempty"`
	KubeVirtContainer bool   `json:"kubeVirtContainer,omitempty"`
	// Architectures is deprecated in favour of Platforms; amd64, arm64,
	// ppc64le, s390x or multi. The two are mutually exclusive.
	Architectures []string     `json:"architectures,omitempty"`
	Platforms     []OSPlatform `json:"platforms,omitempty"`
}

// OSPlatform is one os/architecture[/variant] pair.
type OSPlatform struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant,omitempty"`
}

// String renders os/arch[/variant].
func (p OSPlatform) String() string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// ReleaseChannel selects versions of one release channel.
type ReleaseChannel struct {
	Name string `json:"name"`
	// Type is ocp (default) or okd.
	Type       string `json:"type,omitempty"`
	MinVersion string `json:"minVersion,omitempty"`
	MaxVersion string `json:"maxVersion,omitempty"`
	// ShortestPath keeps only the upgrade path from MinVersion to MaxVersion.
	ShortestPath bool `json:"shortestPath,omitempty"`
	// Full mirrors every version of the channel.
	Full bool `json:"full,omitempty"`
}

// Operator selects content of one operator catalog.
type Operator struct {
	// Catalog is the catalog image reference (registry reference, or
	// oci:// / file:// path).
	Catalog string `json:"catalog"`
	// TargetCatalog replaces the catalog's repository path (path components
	// only, no registry, no tag) at the destination.
	TargetCatalog string `json:"targetCatalog,omitempty"`
	// TargetTag replaces the catalog's tag at the destination.
	TargetTag string `json:"targetTag,omitempty"`
	// Full keeps every bundle of the selected channels instead of heads only;
	// with no Packages it keeps the whole catalog unfiltered.
	Full bool `json:"full,omitempty"`
	// SkipDependencies turns off the inclusion of the packages the kept
	// bundles require (olm.package.required, olm.gvk.required). oc-mirror
	// declares the field but ignores it; airlock resolves dependencies by
	// default so operators install offline.
	SkipDependencies bool `json:"skipDependencies,omitempty"`
	// TargetCatalogSourceTemplate is a file holding a CatalogSource used as
	// a template for the generated one.
	TargetCatalogSourceTemplate string           `json:"targetCatalogSourceTemplate,omitempty"`
	Platforms                   []OSPlatform     `json:"platforms,omitempty"`
	Packages                    []IncludePackage `json:"packages,omitempty"`
}

// IncludePackage selects one package of a catalog. A version range is given
// either at package level (MinVersion/MaxVersion) or per channel, not both.
type IncludePackage struct {
	Name string `json:"name"`
	// DefaultChannel overrides the package's default channel; required when
	// the selected channels exclude the catalog's default channel.
	DefaultChannel string           `json:"defaultChannel,omitempty"`
	MinVersion     string           `json:"minVersion,omitempty"`
	MaxVersion     string           `json:"maxVersion,omitempty"`
	Channels       []IncludeChannel `json:"channels,omitempty"`
	// Bundles selects bundles by name (oc-mirror v2's packages[].bundles)
	// instead of by version range.
	Bundles []SelectedBundle `json:"bundles,omitempty"`
}

// SelectedBundle is one bundle of IncludePackage.Bundles.
type SelectedBundle struct {
	Name string `json:"name"`
}

// IncludeChannel selects one channel of a package, optionally a range.
type IncludeChannel struct {
	Name       string `json:"name"`
	MinVersion string `json:"minVersion,omitempty"`
	MaxVersion string `json:"maxVersion,omitempty"`
}

// AdditionalImage is one extra image to mirror.
type AdditionalImage struct {
	Name string `json:"name"`
	// TargetRepo and TargetTag override the destination repository path and tag.
	TargetRepo string       `json:"targetRepo,omitempty"`
	TargetTag  string       `json:"targetTag,omitempty"`
	Platforms  []OSPlatform `json:"platforms,omitempty"`
}

// BlockedImage is a Go regular expression matched against source and
// destination references; matching images are never mirrored.
type BlockedImage struct {
	Name string `json:"name"`
}

// SampleImage is declared by oc-mirror and not implemented.
type SampleImage struct {
	Name string `json:"name"`
}

// Helm lists helm charts whose images are mirrored.
type Helm struct {
	Repositories []HelmRepository `json:"repositories,omitempty"`
	Local        []HelmChart      `json:"local,omitempty"`
}

// HelmRepository is a remote chart repository.
type HelmRepository struct {
	Name   string      `json:"name"`
	URL    string      `json:"url"`
	Charts []HelmChart `json:"charts,omitempty"`
}

// HelmChart is a chart, remote (Name+Version) or local (Name+Path).
type HelmChart struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	Path    string `json:"path,omitempty"`
	// ImagePaths are JSONPath expressions locating images in rendered manifests.
	ImagePaths []string     `json:"imagePaths,omitempty"`
	Platforms  []OSPlatform `json:"platforms,omitempty"`
	// Values override the chart's values when it is rendered to find its
	// images (oc-mirror v2's charts[].values), like helm template --values:
	// a site's registry or an optional component switched on.
	Values map[string]any `json:"values,omitempty"`
}
