// Package plan holds the list of image copies a run performs.
//
// Every front-end (image mirror, catalog mirror, release mirror, an
// ImageSetConfiguration) is a collector that produces a Plan; the engine
// executes any Plan; outputs such as mapping.txt or IDMS are pure functions
// of a Plan. Keeping the plan a plain list of values is what lets each of
// those parts be tested alone.
package plan

import (
	"fmt"

	"github.com/airlock-mirror/airlock/internal/ref"
)

// Kind says what role an image plays; reports and cluster resources group by it.
type Kind string

const (
	KindImage            Kind = "image"             // a plain image (mapping file, additionalImages)
	KindCatalog          Kind = "catalog"           // an operator catalog (index) image
	KindBundle           Kind = "operator-bundle"   // an operator bundle image
	KindRelated          Kind = "operator-related"  // an image a bundle references
	KindRelease          Kind = "release"           // an OpenShift release payload image
	KindReleaseComponent Kind = "release-component" // an image listed in a payload's image-references
	KindHelmChart        Kind = "helm-chart"        // a helm chart stored as an OCI artifact
	KindGraph            Kind = "graph-data"        // the Cincinnati graph-data image an OpenShift UpdateService serves
)

// Origin says why an image is in the plan, for reports and error messages.
type Origin struct {
	Catalog   string   `json:"catalog,omitempty"`
	Packages  []string `json:"packages,omitempty"`
	Bundles   []string `json:"bundles,omitempty"`
	Component string   `json:"component,omitempty"` // release component tag name
	Release   string   `json:"release,omitempty"`   // release version
	File      string   `json:"file,omitempty"`      // mapping file and line, "mapping.txt:12"
	Chart     string   `json:"chart,omitempty"`     // helm chart(s) "REPO/NAME:VERSION" whose templates name the image, or the chart itself
}

// Item is one source image copied to one or more destinations.
type Item struct {
	Source ref.Ref   `json:"source"`
	Dests  []ref.Ref `json:"destinations"`
	Kind   Kind      `json:"kind"`
	Origin Origin    `json:"origin,omitempty"`
	// Digest is the expected digest of the source when known (a digest
	// reference, or resolved during planning); Size its total bytes when known.
	Digest string `json:"digest,omitempty"`
	Size   int64  `json:"size,omitempty"`
}

// Plan is the ordered list of copies of one run.
type Plan struct {
	Items []Item `json:"items"`
}

// Add appends an item.
func (p *Plan) Add(it Item) { p.Items = append(p.Items, it) }

// Validate checks that every item names a pinned source and has at least
// one destination with a tag or digest to write; it names the first bad item.
func (p *Plan) Validate() error {
	for i, it := range p.Items {
		if !it.Source.HasTagOrDigest() {
			return fmt.Errorf("plan item %d: source %s has neither tag nor digest", i+1, it.Source)
		}
		if len(it.Dests) == 0 {
			return fmt.Errorf("plan item %d: source %s has no destination", i+1, it.Source)
		}
	}
	return nil
}
