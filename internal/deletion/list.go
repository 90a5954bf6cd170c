// Package deletion holds oc-mirror v2's delete list (kind DeleteImageList,
// working-dir/delete/delete-images.yaml) and its application to a registry.
//
// A delete runs in two steps, as with oc-mirror: `airlock delete --generate`
// turns a DeleteImageSetConfiguration into the list of images a mirror run
// with the same selection wrote (a pure function of the plan, FromPlan), the
// user reviews it, and `airlock delete --delete-yaml-file` removes those
// manifests. Unlike oc-mirror, which deletes manifests only and leaves the
// blobs to a registry garbage collection that rarely runs, airlock then
// collects the embedded registry's garbage so the space comes back.
package deletion

import (
	"fmt"
	"os"
	"strings"

	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/airlock-mirror/airlock/internal/atomicfile"
	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
)

// APIVersion and Kind of a delete list, as oc-mirror writes them.
const (
	APIVersion = "mirror.openshift.io/v2alpha1"
	Kind       = "DeleteImageList"
)

// List is a delete list.
type List struct {
	Kind       string `json:"kind"`
	APIVersion string `json:"apiVersion"`
	Items      []Item `json:"items"`
}

// Item is one mirrored image to delete.
type Item struct {
	// ImageName is the image the mirror copied (source reference).
	ImageName string `json:"imageName"`
	// ImageReference is where it was mirrored: docker://REG/PATH:TAG or @DIGEST.
	ImageReference string `json:"imageReference"`
	// Type is oc-mirror's image type (generic, operatorBundle, ...).
	Type string `json:"type"`
}

// typeOf maps plan kinds to oc-mirror's image type names.
func typeOf(k plan.Kind) string {
	switch k {
	case plan.KindCatalog:
		return "operatorCatalog"
	case plan.KindBundle:
		return "operatorBundle"
	case plan.KindRelated:
		return "operatorRelatedImage"
	case plan.KindRelease:
		return "ocpRelease"
	case plan.KindReleaseComponent:
		return "ocpReleaseContent"
	case plan.KindHelmChart:
		return "helmChart" // airlock only: oc-mirror does not mirror chart archives
	}
	return "generic"
}

// FromPlan lists every destination of every item of p that is a registry
// (file:// and oci:// destinations are not a registry's to delete), once,
// in plan order.
func FromPlan(p plan.Plan) List {
	l := List{Kind: Kind, APIVersion: APIVersion}
	seen := map[string]bool{}
	for _, it := range p.Items {
		name := it.Source
		if it.Digest != "" {
			name = name.ByDigest(it.Digest)
		}
		for _, d := range it.Dests {
			if d.Transport != ref.Docker && d.Transport != "" {
				continue
			}
			r := "docker://" + d.String()
			if seen[r] {
				continue
			}
			seen[r] = true
			l.Items = append(l.Items, Item{ImageName: name.String(), ImageReference: r, Type: typeOf(it.Kind)})
		}
	}
	return l
}

// Write stores l at path atomically (a reviewer never sees half a list).
func Write(path string, l List) error {
	b, err := yaml.Marshal(l)
	if err != nil {
		return fmt.Errorf("encoding delete list: %w", err)
	}
	if err := atomicfile.Write(path, b, 0o644); err != nil {
		return fmt.Errorf("writing delete list %s: %w", path, err)
	}
	return nil
}

// Load reads a delete list strictly: an unknown field, a wrong kind or a
// reference that is not a docker:// image is an error naming the file and
// item, since a typo here deletes the wrong thing.
func Load(path string) (List, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return List{}, fmt.Errorf("reading delete list: %w", err)
	}
	var l List
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return List{}, fmt.Errorf("%s: %w", path, err)
	}
	strict, err := kjson.UnmarshalStrict(js, &l)
	if err != nil {
		return List{}, fmt.Errorf("%s: %w", path, err)
	}
	if len(strict) > 0 {
		return List{}, fmt.Errorf("%s: %w", path, strict[0])
	}
	if l.Kind != Kind || l.APIVersion != APIVersion {
		return List{}, fmt.Errorf("%s: kind %q apiVersion %q: want %s %s (written by airlock delete --generate or oc-mirror delete --generate)",
			path, l.Kind, l.APIVersion, Kind, APIVersion)
	}
	if len(l.Items) == 0 {
		return List{}, fmt.Errorf("%s: lists no items", path)
	}
	for i, it := range l.Items {
		if _, err := it.Target(); err != nil {
			return List{}, fmt.Errorf("%s: items[%d]: %w", path, i, err)
		}
	}
	return l, nil
}

// Target parses ImageReference, which must be a pinned registry reference.
func (it Item) Target() (ref.Ref, error) {
	if !strings.HasPrefix(it.ImageReference, "docker://") {
		return ref.Ref{}, fmt.Errorf("imageReference %q: want docker://REGISTRY/PATH:TAG or @sha256:DIGEST", it.ImageReference)
	}
	r, err := ref.Parse(it.ImageReference)
	if err != nil {
		return ref.Ref{}, fmt.Errorf("imageReference: %w", err)
	}
	if !r.HasTagOrDigest() {
		return ref.Ref{}, fmt.Errorf("imageReference %q has neither tag nor digest", it.ImageReference)
	}
	return r, nil
}
