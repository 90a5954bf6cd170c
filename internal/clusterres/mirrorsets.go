// Package clusterres builds the Kubernetes/OpenShift objects that point a
// cluster at mirrored content: ImageDigestMirrorSet, ImageTagMirrorSet,
// ImageContentSourcePolicy, CatalogSource, the release-signature and
// additional-trusted-CA ConfigMaps and the OperatorHub object.
//
// Everything here is a pure function of its inputs (usually derived from a
// plan.Plan) and the output is sorted, so the same plan always gives the
// same bytes: golden files can test it and users can diff two runs. The
// objects are small hand-written structs marshalled with sigs.k8s.io/yaml
// rather than the openshift/api types, which would pull a large dependency
// tree for a dozen fields.
package clusterres

import (
	"fmt"
	"sort"
	"strings"

	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
	"sigs.k8s.io/yaml"
)

// Pair says that the images of one source repository are mirrored to one
// mirror repository. Digest and Tag say how the cluster refers to the
// source: digest references need an IDMS/ICSP entry, tag references an ITMS
// entry. A pair may be both.
type Pair struct {
	Source string // source repository, host/path without tag or digest
	Mirror string // mirror repository, host/path without tag or digest
	Digest bool   // the cluster pulls some image of Source by digest
	Tag    bool   // the cluster pulls some image of Source by tag
}

// PairsFromPlan lists the source → mirror repository pairs of a plan's
// registry-to-registry copies. Only docker:// sources and destinations
// count: a cluster cannot pull from a local store or OCI layout. keep, when
// not nil, selects the items to include (e.g. leave out the catalog image).
// An item whose source has a digest (with or without a tag) is a digest
// pair, a tag-only source a tag pair. The result is sorted and merged.
func PairsFromPlan(p plan.Plan, keep func(plan.Item) bool) []Pair {
	type key struct{ src, dst string }
	seen := map[key]*Pair{}
	for _, it := range p.Items {
		if keep != nil && !keep(it) {
			continue
		}
		if !isRegistry(it.Source) {
			continue
		}
		for _, d := range it.Dests {
			if !isRegistry(d) {
				continue
			}
			k := key{it.Source.Repository(), d.Repository()}
			pr := seen[k]
			if pr == nil {
				pr = &Pair{Source: k.src, Mirror: k.dst}
				seen[k] = pr
			}
			if it.Source.Digest != "" {
				pr.Digest = true
			} else if it.Source.Tag != "" {
				pr.Tag = true
			}
		}
	}
	out := make([]Pair, 0, len(seen))
	for _, pr := range seen {
		out = append(out, *pr)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Source != out[j].Source {
			return out[i].Source < out[j].Source
		}
		return out[i].Mirror < out[j].Mirror
	})
	return out
}

func isRegistry(r ref.Ref) bool { return r.Transport == ref.Docker || r.Transport == "" }

// Scope is how wide one mirror entry's source is.
type Scope string

const (
	// ScopeRepository maps each source repository on its own (always correct).
	ScopeRepository Scope = "repository"
	// ScopeNamespace maps host/namespace when the mirror keeps the source
	// path (mirror ends with "/<source path>"), as oc-mirror does.
	ScopeNamespace Scope = "namespace"
	// ScopeRegistry maps a whole source registry to the mirror prefix.
	ScopeRegistry Scope = "registry"
)

// ParseScope checks a --idms-scope style flag value.
func ParseScope(s string) (Scope, error) {
	switch Scope(s) {
	case ScopeRepository, ScopeNamespace, ScopeRegistry:
		return Scope(s), nil
	case "":
		return ScopeRepository, nil
	}
	return "", fmt.Errorf("scope %q: want repository, namespace or registry", s)
}

// Mirror is one entry of a mirror set: a source and where it is mirrored.
type Mirror struct {
	Source  string   `json:"source"`
	Mirrors []string `json:"mirrors"`
	// MirrorSourcePolicy is NeverContactSource or AllowContactingSource
	// (the cluster's default when empty); IDMS and ITMS only.
	MirrorSourcePolicy string `json:"mirrorSourcePolicy,omitempty"`
}

// Entries turns pairs into mirror entries at the requested scope, one per
// source, mirrors sorted and deduplicated, entries sorted by source.
//
// A wider scope is used only where it is correct: namespace scope needs the
// mirror to end with the source path (so every image below the source
// namespace is found at the same place below the mirror namespace), and
// registry scope needs the mirror to be "<prefix>/<source path>". Pairs that
// do not qualify (for example names mangled by --max-components) stay at
// repository scope. oc maps registry scope to the bare destination host even
// when that is wrong; clusters then fail to pull from the mirror, so airlock
// does not copy that.
func Entries(pairs []Pair, scope Scope) []Mirror {
	bySource := map[string]map[string]bool{}
	for _, p := range pairs {
		src, dst := widen(p.Source, p.Mirror, scope)
		if bySource[src] == nil {
			bySource[src] = map[string]bool{}
		}
		bySource[src][dst] = true
	}
	out := make([]Mirror, 0, len(bySource))
	for src, dsts := range bySource {
		m := Mirror{Source: src}
		for d := range dsts {
			m.Mirrors = append(m.Mirrors, d)
		}
		sort.Strings(m.Mirrors)
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Source < out[j].Source })
	return out
}

// widen returns the source and mirror at the requested scope, or the
// repository pair when that scope would be wrong for this pair.
func widen(src, dst string, scope Scope) (string, string) {
	host, path, ok := strings.Cut(src, "/")
	if !ok {
		return src, dst
	}
	switch scope {
	case ScopeNamespace:
		i := strings.LastIndex(path, "/")
		if i < 0 || !strings.HasSuffix(dst, "/"+path) {
			return src, dst
		}
		last := path[i:] // "/name"
		return strings.TrimSuffix(src, last), strings.TrimSuffix(dst, last)
	case ScopeRegistry:
		if !strings.HasSuffix(dst, "/"+path) {
			return src, dst
		}
		prefix := strings.TrimSuffix(dst, "/"+path)
		if prefix == "" {
			return src, dst
		}
		return host, prefix
	}
	return src, dst
}

// MaxObjectBytes is the size limit of one mirror-set object; larger sets are
// split. It is the limit oc uses (and the default of --max-icsp-size): an
// etcd object must stay well under 1.5 MiB and the machine-config operator
// renders every mirror set into registries.conf.
const MaxObjectBytes = 250000

// SetOptions name and label the mirror-set objects.
type SetOptions struct {
	// Name is the base name; objects are named "<Name>-0", "<Name>-1", ...
	Name  string
	Scope Scope
	// MaxBytes is the largest marshalled size of one object (default and
	// maximum MaxObjectBytes).
	MaxBytes    int
	Labels      map[string]string
	Annotations map[string]string
	// MirrorSourcePolicy is copied to every IDMS/ITMS entry when set.
	MirrorSourcePolicy string
}

// TypeMeta is apiVersion and kind.
type TypeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

// ObjectMeta is the part of metadata airlock sets.
type ObjectMeta struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// ImageDigestMirrorSet is config.openshift.io/v1 ImageDigestMirrorSet.
type ImageDigestMirrorSet struct {
	TypeMeta
	Metadata ObjectMeta `json:"metadata"`
	Spec     struct {
		ImageDigestMirrors []Mirror `json:"imageDigestMirrors"`
	} `json:"spec"`
}

// ImageTagMirrorSet is config.openshift.io/v1 ImageTagMirrorSet.
type ImageTagMirrorSet struct {
	TypeMeta
	Metadata ObjectMeta `json:"metadata"`
	Spec     struct {
		ImageTagMirrors []Mirror `json:"imageTagMirrors"`
	} `json:"spec"`
}

// RepositoryDigestMirror is one ICSP entry (no mirrorSourcePolicy there).
type RepositoryDigestMirror struct {
	Source  string   `json:"source"`
	Mirrors []string `json:"mirrors"`
}

// ImageContentSourcePolicy is operator.openshift.io/v1alpha1
// ImageContentSourcePolicy, deprecated by IDMS but still what clusters
// before 4.13 understand.
type ImageContentSourcePolicy struct {
	TypeMeta
	Metadata ObjectMeta `json:"metadata"`
	Spec     struct {
		RepositoryDigestMirrors []RepositoryDigestMirror `json:"repositoryDigestMirrors"`
	} `json:"spec"`
}

// ImageDigestMirrorSets builds the IDMS objects for the digest pairs.
// It returns no objects when no pair is by digest.
func ImageDigestMirrorSets(pairs []Pair, o SetOptions) ([]ImageDigestMirrorSet, error) {
	entries := Entries(filterPairs(pairs, true), o.Scope)
	setPolicy(entries, o.MirrorSourcePolicy)
	build := func(i int, part []Mirror) any {
		obj := ImageDigestMirrorSet{TypeMeta: TypeMeta{"config.openshift.io/v1", "ImageDigestMirrorSet"}, Metadata: meta(o, i)}
		obj.Spec.ImageDigestMirrors = part
		return obj
	}
	objs, err := split(entries, o, build)
	if err != nil {
		return nil, fmt.Errorf("building ImageDigestMirrorSet %s: %w", o.Name, err)
	}
	out := make([]ImageDigestMirrorSet, len(objs))
	for i, x := range objs {
		out[i] = x.(ImageDigestMirrorSet)
	}
	return out, nil
}

// ImageTagMirrorSets builds the ITMS objects for the tag pairs.
func ImageTagMirrorSets(pairs []Pair, o SetOptions) ([]ImageTagMirrorSet, error) {
	entries := Entries(filterPairs(pairs, false), o.Scope)
	setPolicy(entries, o.MirrorSourcePolicy)
	build := func(i int, part []Mirror) any {
		obj := ImageTagMirrorSet{TypeMeta: TypeMeta{"config.openshift.io/v1", "ImageTagMirrorSet"}, Metadata: meta(o, i)}
		obj.Spec.ImageTagMirrors = part
		return obj
	}
	objs, err := split(entries, o, build)
	if err != nil {
		return nil, fmt.Errorf("building ImageTagMirrorSet %s: %w", o.Name, err)
	}
	out := make([]ImageTagMirrorSet, len(objs))
	for i, x := range objs {
		out[i] = x.(ImageTagMirrorSet)
	}
	return out, nil
}

// ImageContentSourcePolicies builds the ICSP objects for the digest pairs.
func ImageContentSourcePolicies(pairs []Pair, o SetOptions) ([]ImageContentSourcePolicy, error) {
	entries := Entries(filterPairs(pairs, true), o.Scope)
	build := func(i int, part []Mirror) any {
		obj := ImageContentSourcePolicy{TypeMeta: TypeMeta{"operator.openshift.io/v1alpha1", "ImageContentSourcePolicy"}, Metadata: meta(o, i)}
		obj.Spec.RepositoryDigestMirrors = make([]RepositoryDigestMirror, len(part))
		for j, m := range part {
			obj.Spec.RepositoryDigestMirrors[j] = RepositoryDigestMirror{Source: m.Source, Mirrors: m.Mirrors}
		}
		return obj
	}
	objs, err := split(entries, o, build)
	if err != nil {
		return nil, fmt.Errorf("building ImageContentSourcePolicy %s: %w", o.Name, err)
	}
	out := make([]ImageContentSourcePolicy, len(objs))
	for i, x := range objs {
		out[i] = x.(ImageContentSourcePolicy)
	}
	return out, nil
}

func filterPairs(pairs []Pair, digest bool) []Pair {
	var out []Pair
	for _, p := range pairs {
		if (digest && p.Digest) || (!digest && p.Tag) {
			out = append(out, p)
		}
	}
	return out
}

func setPolicy(entries []Mirror, policy string) {
	for i := range entries {
		entries[i].MirrorSourcePolicy = policy
	}
}

func meta(o SetOptions, i int) ObjectMeta {
	return ObjectMeta{
		Name:        fmt.Sprintf("%s-%d", o.Name, i),
		Labels:      copyMap(o.Labels),
		Annotations: copyMap(o.Annotations),
	}
}

func copyMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// split packs entries, in order, into as few objects as fit o.MaxBytes each.
// Sizes are estimated per entry (marshalling a growing object for every
// entry would be quadratic on catalogs with thousands of repositories) and
// then checked exactly; an object found too big gives its last entry to the
// next one.
func split(entries []Mirror, o SetOptions, build func(int, []Mirror) any) ([]any, error) {
	if o.Name == "" {
		return nil, fmt.Errorf("no object name given")
	}
	if errs := validateName(o.Name + "-0"); errs != "" {
		return nil, fmt.Errorf("object name %q: %s", o.Name, errs)
	}
	if len(entries) == 0 {
		return nil, nil
	}
	limit := o.MaxBytes
	if limit <= 0 || limit > MaxObjectBytes {
		limit = MaxObjectBytes
	}
	// Header cost: the object with no entries (a large index keeps the
	// name suffix width safe for any realistic count).
	empty, err := yaml.Marshal(build(999999, nil))
	if err != nil {
		return nil, err
	}
	header := len(empty)
	var parts [][]Mirror
	var cur []Mirror
	size := header
	for _, e := range entries {
		b, err := yaml.Marshal([]Mirror{e})
		if err != nil {
			return nil, err
		}
		// Nested under spec.<field>, each line is indented two more spaces.
		cost := len(b) + 2*strings.Count(string(b), "\n")
		if header+cost > limit {
			return nil, fmt.Errorf("mirror entry for %s alone is %d bytes, more than the %d-byte limit", e.Source, header+cost, limit)
		}
		if len(cur) > 0 && size+cost > limit {
			parts = append(parts, cur)
			cur, size = nil, header
		}
		cur = append(cur, e)
		size += cost
	}
	parts = append(parts, cur)

	var objs []any
	for i := 0; i < len(parts); i++ {
		for {
			obj := build(i, parts[i])
			b, err := yaml.Marshal(obj)
			if err != nil {
				return nil, err
			}
			if len(b) <= limit {
				objs = append(objs, obj)
				break
			}
			if len(parts[i]) == 1 {
				return nil, fmt.Errorf("mirror entry for %s alone is %d bytes, more than the %d-byte limit", parts[i][0].Source, len(b), limit)
			}
			last := parts[i][len(parts[i])-1]
			parts[i] = parts[i][:len(parts[i])-1]
			if i+1 == len(parts) {
				parts = append(parts, nil)
			}
			parts[i+1] = append([]Mirror{last}, parts[i+1]...)
		}
	}
	return objs, nil
}
