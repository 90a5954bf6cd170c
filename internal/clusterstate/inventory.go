package clusterstate

import (
	"fmt"
	"sort"
	"strings"

	"github.com/airlock-mirror/airlock/internal/clusterres"
	"github.com/airlock-mirror/airlock/internal/imageset"
)

// InventoryOptions shape the ImageSetConfiguration.
type InventoryOptions struct {
	// UpgradeTo is the target version of a planned upgrade; the channel
	// range then runs from the installed version to it (shortest path).
	UpgradeTo string
}

// releaseRepoPrefix is where OpenShift release payloads and their
// components live; pod images below it are mirrored with the release.
const releaseRepoPrefix = "quay.io/openshift-release-dev/"

// Inventory is the ImageSetConfiguration that mirrors what the cluster runs:
// its release channel from the installed version (to UpgradeTo), each
// subscription's catalog, package and channel with the installed version as
// minVersion, and every running pod image that neither the release nor an
// installed operator brings as additionalImages. Names a cluster pulls
// through a mirror are mapped back to their source with its mirror sets.
func Inventory(st *State, o InventoryOptions) (*imageset.ImageSetConfiguration, []string, error) {
	cfg := &imageset.ImageSetConfiguration{APIVersion: imageset.APIVersion, Kind: imageset.Kind}
	var notes []string
	if v := st.Version; v.Version != "" {
		if v.Channel == "" {
			return nil, nil, fmt.Errorf("ClusterVersion has no spec.channel: set one (oc adm upgrade channel stable-X.Y) or write platform.release yourself")
		}
		ch := imageset.ReleaseChannel{Name: v.Channel, MinVersion: v.Version, MaxVersion: v.Version}
		target := o.UpgradeTo
		if target == "" {
			target = v.DesiredVersion
		}
		if target != "" && target != v.Version {
			ch.MaxVersion, ch.ShortestPath = target, true
		}
		cfg.Mirror.Platform.Channels = []imageset.ReleaseChannel{ch}
	}
	covered := map[string]bool{}
	byCatalog := map[string]*imageset.Operator{}
	var catalogs []string
	for _, s := range st.Subscriptions {
		csKey := s.SourceNamespace + "/" + s.Source
		if s.SourceNamespace == "" {
			csKey = s.Namespace + "/" + s.Source
		}
		cs, ok := st.CatalogSources[csKey]
		if !ok || cs.Image == "" {
			return nil, nil, fmt.Errorf("subscription %s/%s: catalog source %s is not in the export (add catalogsources to the oc get command)", s.Namespace, s.Name, csKey)
		}
		catalog := sourceName(st.MirrorSets, cs.Image)
		covered[catalog] = true
		covered[cs.Image] = true
		op := byCatalog[catalog]
		if op == nil {
			op = &imageset.Operator{Catalog: catalog}
			byCatalog[catalog] = op
			catalogs = append(catalogs, catalog)
		}
		pkg := imageset.IncludePackage{Name: s.Package}
		ch := imageset.IncludeChannel{Name: s.Channel}
		if csv, ok := st.CSVs[s.Namespace+"/"+s.InstalledCSV]; ok {
			ch.MinVersion = csv.Version
			for _, img := range csv.Images {
				covered[sourceName(st.MirrorSets, img)] = true
			}
		} else if s.InstalledCSV != "" {
			notes = append(notes, fmt.Sprintf("subscription %s/%s: CSV %s not in the export; no minVersion (the whole channel head is mirrored)", s.Namespace, s.Name, s.InstalledCSV))
		}
		if s.Channel == "" {
			notes = append(notes, fmt.Sprintf("subscription %s/%s has no channel: the package's default channel is mirrored", s.Namespace, s.Name))
			pkg.MinVersion = ch.MinVersion
		} else {
			pkg.Channels = []imageset.IncludeChannel{ch}
		}
		op.Packages = append(op.Packages, pkg)
	}
	sort.Strings(catalogs)
	for _, c := range catalogs {
		op := byCatalog[c]
		sort.Slice(op.Packages, func(i, j int) bool { return op.Packages[i].Name < op.Packages[j].Name })
		cfg.Mirror.Operators = append(cfg.Mirror.Operators, *op)
	}
	// Release components live next to the release image the cluster runs
	// (quay.io/openshift-release-dev/ocp-release -> .../ocp-v4.0-art-dev).
	releaseNS := []string{releaseRepoPrefix}
	if img := sourceName(st.MirrorSets, st.Version.Image); strings.Count(img, "/") >= 2 {
		releaseNS = append(releaseNS, img[:strings.LastIndex(strings.SplitN(img, "@", 2)[0], "/")+1])
	}
	extra := map[string]bool{}
	for _, p := range st.Pods {
		for _, img := range p.Images {
			src := sourceName(st.MirrorSets, img)
			if covered[src] || covered[img] || hasAnyPrefix(src, releaseNS) {
				continue
			}
			extra[src] = true
		}
	}
	names := make([]string, 0, len(extra))
	for n := range extra {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		cfg.Mirror.AdditionalImages = append(cfg.Mirror.AdditionalImages, imageset.AdditionalImage{Name: n})
	}
	if err := cfg.Validate(); err != nil {
		return nil, nil, fmt.Errorf("inventory: %w", err)
	}
	return cfg, notes, nil
}

// sourceName maps an image pulled as a mirror name back to the source a
// mirror-set rule mirrors it from; other names are returned as they are.
func sourceName(ms clusterres.MirrorSets, image string) string {
	for _, r := range ms.Rules {
		for _, m := range r.Mirrors {
			if rest, ok := below(image, m); ok {
				return r.Source + rest
			}
		}
	}
	return image
}

// below reports whether image is prefix or below it (the next character
// '/', ':' or '@', as containers/image matches prefixes) and returns the
// rest after the prefix.
func below(image, prefix string) (string, bool) {
	if !strings.HasPrefix(image, prefix) {
		return "", false
	}
	rest := image[len(prefix):]
	if rest == "" || rest[0] == '/' || rest[0] == ':' || rest[0] == '@' {
		return rest, true
	}
	return "", false
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
