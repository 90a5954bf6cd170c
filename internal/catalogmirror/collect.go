package catalogmirror

import (
	"fmt"
	"sort"
	"strings"

	"github.com/airlock-mirror/airlock/internal/catalog"
	"github.com/airlock-mirror/airlock/internal/clusterres"
	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
)

// Options say where a catalog is mirrored.
type Options struct {
	// Index is the catalog image being mirrored; nil when the catalog was
	// read from a local directory or index.db (nothing to copy for it).
	Index *ref.Ref
	// IndexDest overrides where the catalog image goes (e.g. a rebuilt,
	// filtered catalog pushed elsewhere); zero means Mount(Index, Dest).
	IndexDest ref.Ref
	// Dest is the DEST argument: docker://registry[/prefix] or file://dir.
	Dest ref.Ref
	// MaxComponents is --max-components (0: no limit).
	MaxComponents int
}

// Result is the plan of a catalog mirror plus what was noticed on the way.
type Result struct {
	Plan plan.Plan
	// IndexDest is where the catalog image goes (zero without Options.Index).
	IndexDest ref.Ref
	// Warnings name the package, bundle and field of every image reference
	// that was skipped.
	Warnings []catalog.Warning
	// Pairs are the (original source repository -> mirror repository) pairs
	// for IDMS/ICSP. They differ from what the plan's sources say when the
	// catalog is uploaded from the local store: the plan then reads
	// file:// copies, but the cluster still asks for the original names.
	Pairs []clusterres.Pair
}

// Collect builds the plan for mirroring c: the catalog image (when
// o.Index is set), then every bundle image and related image of c, each
// once, sorted by source, with the packages and bundles it serves as its
// origin. Unusable references are skipped with a warning instead of
// failing the whole catalog.
func Collect(c *catalog.Catalog, o Options) (*Result, error) {
	if o.Dest.Transport != ref.Docker && o.Dest.Transport != ref.File {
		return nil, fmt.Errorf("destination %s: want a registry (docker://host[/prefix]) or a local store (file://dir)", o.Dest)
	}
	if o.Dest.HasTagOrDigest() {
		return nil, fmt.Errorf("destination %s: give a registry or repository prefix without tag or digest; each image keeps its own tag", o.Dest)
	}
	if o.MaxComponents < 0 {
		return nil, fmt.Errorf("max components %d: must be 0 (no limit) or more", o.MaxComponents)
	}
	res := &Result{}
	catName := ""
	if o.Index != nil {
		catName = o.Index.String()
		if !o.Index.HasTagOrDigest() && o.Index.Transport != ref.OCI {
			return nil, fmt.Errorf("catalog image %s: give a tag or digest", o.Index)
		}
		res.IndexDest = o.IndexDest
		if res.IndexDest.Path == "" {
			named := *o.Index
			switch named.Transport {
			case ref.File:
				// The store path is <dest prefix>/<namespace>/<name>; the
				// prefix chosen when writing to disk is not the catalog's.
				named.Path = lastComponents(named.Path, 2)
			case ref.OCI:
				// A layout directory is no repository name: use its base
				// name, made a valid path component.
				named.Path = clusterres.SanitizeName(IndexName(named), 128)
				if !named.HasTagOrDigest() {
					named.Tag = "latest"
				}
			}
			res.IndexDest = Mount(named, o.Dest, o.MaxComponents)
		}
		res.Plan.Add(plan.Item{
			Source: *o.Index,
			Dests:  []ref.Ref{res.IndexDest},
			Kind:   plan.KindCatalog,
			Origin: plan.Origin{Catalog: catName},
			Digest: o.Index.Digest,
		})
	} else if c.Source != "" {
		catName = c.Source
	}

	imgs, ws := catalog.RelatedImages(c)
	res.Warnings = ws
	root := fileRoot(o.Index, o.Dest)
	// Uploading from the local store (INDEX is file://...): the images were
	// written below the index's own path by an earlier mirror to file://,
	// named as Mount names them there.
	fromStore := o.Index != nil && o.Index.Transport == ref.File

	// The catalog may spell one image several ways (short Docker Hub names,
	// index.docker.io/...): one plan item per normalised reference.
	byName := map[string]*plan.Item{}
	for _, img := range imgs {
		src, kind := Source(img)
		key := src.Name()
		it := byName[key]
		if it == nil {
			from := src
			if fromStore {
				from = Mount(src, ref.Ref{Transport: ref.File, Path: o.Index.Path}, 0)
				if src.Digest != "" {
					// Read by digest, as oc does; the tag was only there
					// to keep the manifest referenced in the store.
					from = from.ByDigest(src.Digest)
				}
			}
			it = &plan.Item{
				Source: from,
				Dests:  []ref.Ref{Mount(src, root, o.MaxComponents)},
				Kind:   kind,
				Origin: plan.Origin{Catalog: catName},
				Digest: src.Digest,
			}
			byName[key] = it
		}
		if kind == plan.KindBundle {
			it.Kind = plan.KindBundle
		}
		it.Origin.Packages = mergeSorted(it.Origin.Packages, img.Packages)
		it.Origin.Bundles = mergeSorted(it.Origin.Bundles, img.Bundles)
	}
	keys := make([]string, 0, len(byName))
	for k := range byName {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	// Two sources that differ only by registry (quay.io/a/b:v1 and
	// docker.io/a/b:v1) land on the same destination tag; the second copy
	// would silently retag the first. Say so instead.
	claimed := map[string]string{}
	if res.IndexDest.Path != "" {
		claimed[res.IndexDest.Name()] = o.Index.Name()
	}
	for _, k := range keys {
		it := byName[k]
		d := it.Dests[0].Name()
		if prev, ok := claimed[d]; ok {
			res.Warnings = append(res.Warnings, catalog.Warning{
				Package: first(it.Origin.Packages), Bundle: first(it.Origin.Bundles),
				Message: fmt.Sprintf("%s and %s both map to %s; the later copy replaces the tag (use --max-components 0 or another destination prefix)", prev, it.Source.Name(), d),
			})
		}
		claimed[d] = it.Source.Name()
		res.Plan.Add(*it)
		if d := it.Dests[0]; d.Transport == ref.Docker {
			orig, _ := ref.Parse(k)
			res.Pairs = append(res.Pairs, clusterres.Pair{Source: orig.Repository(), Mirror: d.Repository(), Digest: orig.Digest != "", Tag: orig.Digest == ""})
		}
	}
	if err := res.Plan.Validate(); err != nil {
		return nil, err
	}
	return res, nil
}

// Source is a catalog image as a plan source, normalised (docker://,
// latest when it names neither tag nor digest), and its plan kind.
func Source(img catalog.Image) (ref.Ref, plan.Kind) {
	src := img.Parsed
	if src.Transport == "" {
		src.Transport = ref.Docker
	}
	if !src.HasTagOrDigest() {
		src.Tag = "latest"
	}
	if img.Kind == catalog.KindBundle {
		return src, plan.KindBundle
	}
	return src, plan.KindRelated
}

// MergeSorted is the sorted union of a and b.
func MergeSorted(a, b []string) []string { return mergeSorted(a, b) }

func mergeSorted(a, b []string) []string {
	seen := make(map[string]bool, len(a)+len(b))
	var out []string
	for _, s := range append(append([]string{}, a...), b...) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

func lastComponents(p string, n int) string {
	parts := strings.Split(p, "/")
	if len(parts) > n {
		parts = parts[len(parts)-n:]
	}
	return strings.Join(parts, "/")
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}
