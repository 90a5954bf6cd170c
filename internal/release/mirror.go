package release

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/airlock-mirror/airlock/internal/clusterres"
	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
)

// StoreRepo is the repository a release is written to in a local store
// (--to-dir), as oc adm release mirror names it.
const StoreRepo = "openshift/release"

// Layout is how destination names are made.
type Layout int

const (
	// LayoutOC is `oc adm release mirror`: everything in the To
	// repository, the release as To:<version><archExt>, components as
	// To:<version><archExt>-<component>.
	LayoutOC Layout = iota
	// LayoutOCMirror is oc-mirror's (ImageSetConfiguration platform
	// releases): To is a registry prefix; the release goes to
	// To/openshift/release-images:<version><archExt> and components to
	// To/openshift/release:<version><archExt>-<component>.
	LayoutOCMirror
)

// Repositories of LayoutOCMirror, below the destination prefix.
const (
	OCMirrorReleaseRepo   = "openshift/release-images"
	OCMirrorComponentRepo = "openshift/release"
)

// MirrorSpec says what to mirror where. It is plain data so the plan is a
// pure function of it.
type MirrorSpec struct {
	// Layout picks the naming scheme (default LayoutOC).
	Layout Layout
	// Release is the release image as read: a reference pinned by digest
	// (a tag may be kept alongside for messages).
	Release ref.Ref
	Payload *Payload
	// To is the destination repository (docker:// or file://), without tag.
	To ref.Ref
	// ToRelease, when set, is where the release image goes instead of
	// To:<version><archExt> (oc's --to-release-image).
	ToRelease *ref.Ref
	// KeepManifestList mirrors a multi-arch release as the whole list and
	// names it -multi.
	KeepManifestList bool
	// FromStore reads the components from this store repository (oc's
	// --from-dir) by the tags a --to-dir run gave them, instead of from the
	// registries image-references names.
	FromStore *ref.Ref
}

// componentRepo and releaseRepo are where components and (by default)
// the release image go.
func (s MirrorSpec) componentRepo() ref.Ref {
	if s.Layout == LayoutOCMirror {
		return below(s.To, OCMirrorComponentRepo)
	}
	return s.To
}

func below(r ref.Ref, sub string) ref.Ref {
	r = r.Repo()
	// Trimmed so an empty prefix (the root of a local store) gives "sub".
	r.Path = strings.Trim(strings.TrimSuffix(r.Path, "/")+"/"+sub, "/")
	return r
}

func (s MirrorSpec) releaseRepo() ref.Ref {
	if s.Layout == LayoutOCMirror {
		return below(s.To, OCMirrorReleaseRepo)
	}
	return s.To
}

// ReleaseDestination is where the release image goes.
func (s MirrorSpec) ReleaseDestination() ref.Ref {
	if s.ToRelease != nil {
		return *s.ToRelease
	}
	return s.releaseRepo().WithTag(s.TagPrefix())
}

// TagPrefix is "<version><archExt>", the tag of the release image and the
// prefix of every component tag.
func (s MirrorSpec) TagPrefix() string {
	return s.Payload.Version + ArchExt(s.Payload.Architecture, s.KeepManifestList)
}

var tagRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// PlanMirror builds the copy plan. Components that are the same image
// (same digest) become one item with several destination tags, so the
// engine reads them once.
func PlanMirror(s MirrorSpec) (plan.Plan, error) {
	var p plan.Plan
	if s.Payload == nil || s.Payload.Version == "" {
		return p, fmt.Errorf("release mirror: no payload version")
	}
	if s.Release.Digest == "" {
		return p, fmt.Errorf("release mirror: release image %s is not resolved to a digest", s.Release)
	}
	if s.To.Tag != "" || s.To.Digest != "" {
		return p, fmt.Errorf("--to %s: give a repository without tag or digest; tags are derived from the release version (use --to-release-image to name the release image)", s.To)
	}
	prefix := s.TagPrefix()
	if !tagRE.MatchString(prefix) {
		return p, fmt.Errorf("release version %q gives the invalid tag %q", s.Payload.Version, prefix)
	}
	relDest := s.ReleaseDestination()
	comps := s.componentRepo()
	// Registries are read by digest so the mirrored release is exactly the
	// one inspected; a store is read by its tag (the expected digest is
	// still checked through Item.Digest).
	src := s.Release.ByDigest(s.Release.Digest)
	if s.Release.Transport != ref.Docker && s.Release.Tag != "" {
		src = s.Release.WithDigest("")
	}
	p.Add(plan.Item{
		Source: src,
		Dests:  []ref.Ref{relDest},
		Kind:   plan.KindRelease,
		Origin: plan.Origin{Release: s.Payload.Version},
		Digest: s.Release.Digest,
	})
	bySource := map[string]int{}
	for _, c := range s.Payload.Components {
		tag := prefix + "-" + c.Name
		if !tagRE.MatchString(tag) {
			return p, fmt.Errorf("component %q: destination tag %q is not a valid tag (at most 128 letters, digits, '.', '_', '-')", c.Name, tag)
		}
		csrc := c.Image
		if s.FromStore != nil {
			csrc = s.FromStore.Repo().WithTag(tag)
		}
		key := csrc.String()
		if s.FromStore == nil {
			key = c.Image.Repository() + "@" + c.Image.Digest
		}
		if i, ok := bySource[key]; ok {
			p.Items[i].Dests = append(p.Items[i].Dests, comps.WithTag(tag))
			p.Items[i].Origin.Component += "," + c.Name
			continue
		}
		bySource[key] = len(p.Items)
		p.Add(plan.Item{
			Source: csrc,
			Dests:  []ref.Ref{comps.WithTag(tag)},
			Kind:   plan.KindReleaseComponent,
			Origin: plan.Origin{Component: c.Name, Release: s.Payload.Version},
			Digest: c.Image.Digest,
		})
	}
	return p, p.Validate()
}

// MirrorPairs are the source -> mirror repository pairs a cluster needs:
// every component repository and the release image's repository, all
// mirrored to the --to repository (oc prints exactly these). releaseRepo
// may be empty when it is unknown (reading from a store).
func MirrorPairs(s MirrorSpec, releaseRepo string) []clusterres.Pair {
	mirror := s.componentRepo().Repository()
	seen := map[string]bool{}
	var pairs []clusterres.Pair
	add := func(src, dst string) {
		if src == "" || seen[src+"="+dst] {
			return
		}
		seen[src+"="+dst] = true
		pairs = append(pairs, clusterres.Pair{Source: src, Mirror: dst, Digest: true})
	}
	// With --to-release-image the release image lives elsewhere; the
	// components stay in --to.
	relMirror := s.ReleaseDestination().Repository()
	add(releaseRepo, relMirror)
	for _, c := range s.Payload.Components {
		add(c.Image.Repository(), mirror)
	}
	sort.Slice(pairs, func(i, j int) bool { return pairs[i].Source+pairs[i].Mirror < pairs[j].Source+pairs[j].Mirror })
	return pairs
}

type snippetEntry struct {
	Mirrors []string `json:"mirrors"`
	Source  string   `json:"source"`
}

// InstallConfigSnippets returns the imageContentSources and
// imageDigestSources sections for install-config.yaml (the first for
// installers before 4.14, the second for 4.14 and later).
func InstallConfigSnippets(pairs []clusterres.Pair) (contentSources, digestSources string, err error) {
	entries := clusterres.Entries(pairs, clusterres.ScopeRepository)
	list := make([]snippetEntry, len(entries))
	for i, e := range entries {
		list[i] = snippetEntry{Mirrors: e.Mirrors, Source: e.Source}
	}
	a, err := yaml.Marshal(map[string]any{"imageContentSources": list})
	if err != nil {
		return "", "", err
	}
	b, err := yaml.Marshal(map[string]any{"imageDigestSources": list})
	if err != nil {
		return "", "", err
	}
	return string(a), string(b), nil
}

// ClusterResources returns the ImageDigestMirrorSet and the
// ImageContentSourcePolicy (for clusters before 4.13) as YAML documents.
func ClusterResources(pairs []clusterres.Pair, name string) (idms, icsp []byte, err error) {
	o := clusterres.SetOptions{Name: name, Scope: clusterres.ScopeRepository}
	sets, err := clusterres.ImageDigestMirrorSets(pairs, o)
	if err != nil {
		return nil, nil, err
	}
	if idms, err = clusterres.YAML(sets...); err != nil {
		return nil, nil, err
	}
	pols, err := clusterres.ImageContentSourcePolicies(pairs, o)
	if err != nil {
		return nil, nil, err
	}
	if icsp, err = clusterres.YAML(pols...); err != nil {
		return nil, nil, err
	}
	return idms, icsp, nil
}

// ResourceName is the base name of the mirror-set objects of a release:
// "release-<version>", lower-cased with characters Kubernetes names reject
// replaced by '-'.
func ResourceName(version string) string {
	var b strings.Builder
	for _, r := range strings.ToLower("release-" + version) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '-' || r == '.' {
			b.WriteRune(r)
		} else {
			b.WriteRune('-')
		}
	}
	return strings.Trim(b.String(), "-.")
}
