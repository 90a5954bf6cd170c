package helm

import (
	"bytes"
	"fmt"
	"path"
	"reflect"
	"sort"
	"strings"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	"k8s.io/client-go/util/jsonpath"
	"sigs.k8s.io/yaml"
)

// DefaultImagePaths are where images are looked for in every rendered
// object: oc-mirror v2's four (pod templates of Deployments, StatefulSets,
// DaemonSets, Jobs, ReplicaSets, and bare Pods, init containers included),
// plus the CronJob job template, which oc-mirror misses.
var DefaultImagePaths = []string{
	"{.spec.template.spec.initContainers[*].image}",
	"{.spec.template.spec.containers[*].image}",
	"{.spec.initContainers[*].image}",
	"{.spec.containers[*].image}",
	"{.spec.jobTemplate.spec.template.spec.initContainers[*].image}",
	"{.spec.jobTemplate.spec.template.spec.containers[*].image}",
}

// FoundImage is one image reference a chart's rendered manifests name.
type FoundImage struct {
	Image string // as written in the manifest
	// Where is the first template and object that names it, for messages.
	Where string
}

// loadChart parses a chart archive.
func loadChart(archive []byte) (*chartv2.Chart, error) {
	c, err := loader.LoadArchive(bytes.NewReader(archive))
	if err != nil {
		return nil, err
	}
	if c.Metadata == nil || c.Metadata.Name == "" || c.Metadata.Version == "" {
		return nil, fmt.Errorf("Chart.yaml has no name or version")
	}
	return c, nil
}

// renderImages renders c with its default values overridden by values (as
// `helm template --values` merges them), as `helm template` does (release
// name = chart name, namespace "default", install), and returns the images
// found at DefaultImagePaths and extra, sorted and unique.
func renderImages(c *chartv2.Chart, extra []string, values map[string]any) ([]FoundImage, error) {
	paths, err := compilePaths(append(append([]string(nil), DefaultImagePaths...), extra...))
	if err != nil {
		return nil, err
	}
	if values == nil {
		values = map[string]any{}
	}
	vals, err := util.ToRenderValues(c, values,
		common.ReleaseOptions{Name: c.Name(), Namespace: "default", IsInstall: true}, common.DefaultCapabilities)
	if err != nil {
		return nil, fmt.Errorf("computing the values: %w", err)
	}
	rendered, err := engine.Render(c, vals)
	if err != nil {
		return nil, fmt.Errorf("rendering templates: %w", err)
	}
	names := make([]string, 0, len(rendered))
	for n := range rendered {
		names = append(names, n)
	}
	sort.Strings(names)
	seen := map[string]bool{}
	var out []FoundImage
	for _, n := range names {
		// Only manifests: NOTES.txt and other text files are not objects.
		if ext := path.Ext(n); ext != ".yaml" && ext != ".yml" && ext != ".json" {
			continue
		}
		docs := releaseutil.SplitManifests(rendered[n])
		keys := make([]string, 0, len(docs))
		for k := range docs {
			keys = append(keys, k)
		}
		sort.Sort(releaseutil.BySplitManifestsOrder(keys))
		for _, k := range keys {
			doc := strings.TrimSpace(docs[k])
			if doc == "" {
				continue
			}
			var obj map[string]any
			if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
				return nil, fmt.Errorf("rendered %s is not valid YAML: %w", n, err)
			}
			if obj == nil {
				continue
			}
			where := fmt.Sprintf("%s (%v %v)", n, obj["kind"], nameOf(obj))
			imgs, err := findImages(paths, obj)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			for _, img := range imgs {
				if !seen[img] {
					seen[img] = true
					out = append(out, FoundImage{Image: img, Where: where})
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Image < out[j].Image })
	return out, nil
}

func nameOf(obj map[string]any) any {
	if md, ok := obj["metadata"].(map[string]any); ok {
		return md["name"]
	}
	return ""
}

type compiledPath struct {
	expr string
	jp   *jsonpath.JSONPath
}

// compilePaths parses image paths with Kubernetes JSONPath, the syntax
// oc-mirror's imagePaths use ("{.spec.template.spec.containers[*].image}").
func compilePaths(exprs []string) ([]compiledPath, error) {
	var out []compiledPath
	seen := map[string]bool{}
	for _, e := range exprs {
		if seen[e] {
			continue
		}
		seen[e] = true
		jp := jsonpath.New(e).AllowMissingKeys(true)
		if err := jp.Parse(e); err != nil {
			return nil, fmt.Errorf("imagePaths %q: %w (want a JSONPath such as {.spec.template.spec.containers[*].image})", e, err)
		}
		out = append(out, compiledPath{expr: e, jp: jp})
	}
	return out, nil
}

// findImages evaluates every path on obj; non-empty string results are
// images, anything else at an image path is an error naming the path.
func findImages(paths []compiledPath, obj map[string]any) ([]string, error) {
	var out []string
	for _, p := range paths {
		results, err := p.jp.FindResults(obj)
		if err != nil {
			// A path through a value of the wrong type (a string where a
			// list is expected) means "not in this object", as for a
			// missing key.
			continue
		}
		for _, rs := range results {
			for _, v := range rs {
				for v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer {
					if v.IsNil() {
						break
					}
					v = v.Elem()
				}
				if v.Kind() != reflect.String {
					return nil, fmt.Errorf("imagePaths %s selects a %s, not an image reference", p.expr, v.Kind())
				}
				if s := strings.TrimSpace(v.String()); s != "" {
					out = append(out, s)
				}
			}
		}
	}
	return out, nil
}
