package catalogmirror

import (
	"bytes"
	"fmt"
	"path/filepath"
	"sort"
	"time"

	"github.com/airlock-mirror/airlock/internal/atomicfile"
	"github.com/airlock-mirror/airlock/internal/clusterres"
	"github.com/airlock-mirror/airlock/internal/mapping"
	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
)

// CatalogLabel marks the mirror sets a catalog mirror writes, as oc does.
const CatalogLabel = "operators.openshift.org/catalog"

// ManifestOptions configure WriteManifests.
type ManifestOptions struct {
	// Name is the base name of the objects (IndexName of the catalog).
	Name string
	// Scope and MaxBytes are --idms-scope and --max-idms-size.
	Scope    clusterres.Scope
	MaxBytes int
	// CatalogSource fields; Image is filled from the result.
	CatalogSource clusterres.CatalogSourceOptions
	// CatalogRebuilt says the catalog image is not copied but rebuilt with
	// a selection: its mapping line would claim a copy that never happens
	// (and `airlock verify` would rightly report a digest mismatch), so it
	// is written as a comment naming where the rebuilt catalog goes.
	CatalogRebuilt bool
}

// Files are the names WriteManifests uses, as oc names them.
const (
	FileMapping       = "mapping.txt"
	FileICSP          = "imageContentSourcePolicy.yaml"
	FileIDMS          = "imageDigestMirrorSet.yaml"
	FileITMS          = "imageTagMirrorSet.yaml"
	FileCatalogSource = "catalogSource.yaml"
)

// WriteManifests writes mapping.txt and, when the destination is a
// registry, imageContentSourcePolicy.yaml and imageDigestMirrorSet.yaml
// (digest references), imageTagMirrorSet.yaml (tag references, which oc
// leaves out) and, when a catalog image was mirrored, catalogSource.yaml
// into dir. Every
// file is built in memory first and written atomically, so an error leaves
// no half-written file. It returns the paths written.
func WriteManifests(dir string, res *Result, o ManifestOptions) ([]string, error) {
	files := map[string][]byte{FileMapping: mappingFile(res.Plan, o.CatalogRebuilt)}

	// A cluster cannot pull from a local store: mirror sets and a
	// CatalogSource make sense only for registry destinations.
	toRegistry := false
	for _, it := range res.Plan.Items {
		for _, d := range it.Dests {
			if d.Transport == ref.Docker {
				toRegistry = true
			}
		}
	}
	if toRegistry {
		// The catalog image is pulled by tag and is not a mirror of the
		// source catalog (it may be rebuilt): it belongs in the
		// CatalogSource, not in the mirror sets.
		pairs := res.Pairs
		if pairs == nil {
			pairs = clusterres.PairsFromPlan(res.Plan, func(it plan.Item) bool { return it.Kind != plan.KindCatalog })
		}
		so := clusterres.SetOptions{Name: o.Name, Scope: o.Scope, MaxBytes: o.MaxBytes, Labels: map[string]string{CatalogLabel: "true"}}
		icsp, err := clusterres.ImageContentSourcePolicies(pairs, so)
		if err != nil {
			return nil, err
		}
		idms, err := clusterres.ImageDigestMirrorSets(pairs, so)
		if err != nil {
			return nil, err
		}
		// oc writes no ITMS, so related images a catalog names by tag (half
		// of the community catalog's) were never redirected to the mirror
		// and failed to pull offline; airlock writes one.
		itms, err := clusterres.ImageTagMirrorSets(pairs, so)
		if err != nil {
			return nil, err
		}
		if len(itms) > 0 {
			if files[FileITMS], err = clusterres.YAML(itms...); err != nil {
				return nil, err
			}
		}
		if len(icsp) > 0 {
			if files[FileICSP], err = clusterres.YAML(icsp...); err != nil {
				return nil, err
			}
			if files[FileIDMS], err = clusterres.YAML(idms...); err != nil {
				return nil, err
			}
		}
		if res.IndexDest.Transport == ref.Docker && res.IndexDest.Path != "" {
			cso := o.CatalogSource
			if cso.Name == "" {
				cso.Name = clusterres.CatalogSourceName(o.Name)
			}
			cso.Image = res.IndexDest.Name()
			cs, err := clusterres.NewCatalogSource(cso)
			if err != nil {
				return nil, err
			}
			b, err := clusterres.YAML(cs)
			if err != nil {
				return nil, err
			}
			files[FileCatalogSource] = b
		}
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var written []string
	for _, n := range names {
		p := filepath.Join(dir, n)
		if err := atomicfile.Write(p, files[n], 0o644); err != nil {
			return written, err
		}
		written = append(written, p)
	}
	return written, nil
}

// DefaultManifestsDir is oc's default --to-manifests:
// manifests-<index name>-<unix seconds>.
func DefaultManifestsDir(name string, now time.Time) string {
	return fmt.Sprintf("manifests-%s-%d", name, now.Unix())
}

// mappingFile is mapping.txt for the plan; see ManifestOptions.CatalogRebuilt.
func mappingFile(p plan.Plan, catalogRebuilt bool) []byte {
	if !catalogRebuilt {
		return mapping.Format(p)
	}
	var copies plan.Plan
	var notes bytes.Buffer
	for _, it := range p.Items {
		if it.Kind != plan.KindCatalog {
			copies.Add(it)
			continue
		}
		for _, d := range it.Dests {
			fmt.Fprintf(&notes, "# %s is not copied: it is rebuilt with the selected operators and pushed to %s\n", it.Source, d)
		}
	}
	return append(notes.Bytes(), mapping.Format(copies)...)
}
