package clusterres

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	kyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// Rule is one entry of a mirror set found on a cluster or in a
// cluster-resources directory: the images below Source are pulled from
// Mirrors. Digest rules (IDMS, ICSP) apply to pulls by digest, tag rules
// (ITMS) to pulls by tag, as CRI-O applies them.
type Rule struct {
	Kind    string // ImageDigestMirrorSet, ImageTagMirrorSet or ImageContentSourcePolicy
	Object  string // the object's metadata.name
	Source  string
	Mirrors []string
	// Policy is mirrorSourcePolicy (IDMS/ITMS): NeverContactSource or
	// AllowContactingSource (empty).
	Policy string
}

// Digest reports whether the rule applies to pulls by digest.
func (r Rule) Digest() bool { return r.Kind != "ImageTagMirrorSet" }

// MirrorSets are the rules of every mirror-set object read.
type MirrorSets struct {
	Rules []Rule
}

// DigestMirrors returns the digest rules merged per source (mirrors in
// first-seen order, deduplicated), sorted by source: the shape of
// install-config's imageDigestSources.
func (m MirrorSets) DigestMirrors() []Mirror {
	by := map[string]*Mirror{}
	var order []string
	for _, r := range m.Rules {
		if !r.Digest() {
			continue
		}
		e := by[r.Source]
		if e == nil {
			e = &Mirror{Source: r.Source}
			by[r.Source] = e
			order = append(order, r.Source)
		}
		for _, mi := range r.Mirrors {
			if !contains(e.Mirrors, mi) {
				e.Mirrors = append(e.Mirrors, mi)
			}
		}
	}
	sort.Strings(order)
	out := make([]Mirror, 0, len(order))
	for _, s := range order {
		out = append(out, *by[s])
	}
	return out
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// ParseMirrorSets reads IDMS, ITMS and ICSP objects from YAML (several
// documents) or JSON (an object or a List, as `oc get ... -o json`
// writes). Other kinds are skipped: a cluster-resources directory also holds
// CatalogSources and signature ConfigMaps. name prefixes every error.
func ParseMirrorSets(data []byte, name string) (MirrorSets, error) {
	var ms MirrorSets
	dec := kyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for doc := 1; ; doc++ {
		var obj map[string]any
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return MirrorSets{}, fmt.Errorf("%s: document %d: %w", name, doc, err)
		}
		if obj == nil {
			continue
		}
		if err := ms.add(obj, fmt.Sprintf("%s: document %d", name, doc)); err != nil {
			return MirrorSets{}, err
		}
	}
	return ms, nil
}

// mirrorSetObject is the shape shared by the three kinds.
type mirrorSetObject struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		ImageDigestMirrors      []Mirror `json:"imageDigestMirrors"`
		ImageTagMirrors         []Mirror `json:"imageTagMirrors"`
		RepositoryDigestMirrors []Mirror `json:"repositoryDigestMirrors"`
	} `json:"spec"`
}

func (ms *MirrorSets) add(obj map[string]any, where string) error {
	kind, _ := obj["kind"].(string)
	if strings.HasSuffix(kind, "List") {
		items, _ := obj["items"].([]any)
		for i, it := range items {
			m, ok := it.(map[string]any)
			if !ok {
				return fmt.Errorf("%s: items[%d] is not an object", where, i)
			}
			if err := ms.add(m, fmt.Sprintf("%s: items[%d]", where, i)); err != nil {
				return err
			}
		}
		return nil
	}
	switch kind {
	case "ImageDigestMirrorSet", "ImageTagMirrorSet", "ImageContentSourcePolicy":
	default:
		return nil
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	var o mirrorSetObject
	if err := json.Unmarshal(raw, &o); err != nil {
		return fmt.Errorf("%s: %s %s: %w", where, kind, o.Metadata.Name, err)
	}
	entries := map[string][]Mirror{
		"ImageDigestMirrorSet":     o.Spec.ImageDigestMirrors,
		"ImageTagMirrorSet":        o.Spec.ImageTagMirrors,
		"ImageContentSourcePolicy": o.Spec.RepositoryDigestMirrors,
	}[kind]
	for i, e := range entries {
		if e.Source == "" {
			return fmt.Errorf("%s: %s %s: entry %d has no source", where, kind, o.Metadata.Name, i)
		}
		ms.Rules = append(ms.Rules, Rule{Kind: kind, Object: o.Metadata.Name, Source: e.Source, Mirrors: e.Mirrors, Policy: e.MirrorSourcePolicy})
	}
	return nil
}

// ReadMirrorSetDir reads every .yaml, .yml and .json file below dir (a
// cluster-resources or manifests directory written by airlock, oc-mirror or
// oc adm release/catalog mirror), in name order.
func ReadMirrorSetDir(dir string) (MirrorSets, error) {
	var ms MirrorSets
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch strings.ToLower(filepath.Ext(path)) {
		case ".yaml", ".yml", ".json":
		default:
			return nil
		}
		if d.IsDir() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		one, err := ParseMirrorSets(data, path)
		if err != nil {
			return err
		}
		ms.Rules = append(ms.Rules, one.Rules...)
		return nil
	})
	if err != nil {
		return MirrorSets{}, fmt.Errorf("reading mirror sets: %w", err)
	}
	return ms, nil
}
