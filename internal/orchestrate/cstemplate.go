package orchestrate

import (
	"fmt"
	"os"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/airlock-mirror/airlock/internal/clusterres"
	"github.com/airlock-mirror/airlock/internal/imageset"
)

// csTemplate is a parsed mirror.operators[].targetCatalogSourceTemplate:
// the CatalogSource the generated one starts from, so what a site sets
// (priority, updateStrategy, grpcPodConfig, icon, secrets, labels) is kept.
type csTemplate struct {
	file string
	obj  map[string]any
}

// CheckCatalogSourceTemplates is every problem of the config's
// targetCatalogSourceTemplate files (`config validate`, also --offline:
// they are local files).
func CheckCatalogSourceTemplates(cfg *imageset.ImageSetConfiguration) imageset.Problems {
	_, ps := catalogSourceTemplates(cfg)
	return ps
}

// catalogSourceTemplates reads and checks every targetCatalogSourceTemplate
// of cfg before anything is copied, keyed by the field path of its operator
// entry ("mirror.operators[1]"). Like oc-mirror v2 it accepts only a grpc
// operators.coreos.com/v1alpha1 CatalogSource; name, namespace, sourceType
// and image are airlock's. Each problem names the config's file, line and
// field and the template file.
func catalogSourceTemplates(cfg *imageset.ImageSetConfiguration) (map[string]csTemplate, imageset.Problems) {
	out := map[string]csTemplate{}
	var ps imageset.Problems
	for i, op := range cfg.Mirror.Operators {
		if op.TargetCatalogSourceTemplate == "" {
			continue
		}
		at := fmt.Sprintf("mirror.operators[%d]", i)
		t, err := readCatalogSourceTemplate(op.TargetCatalogSourceTemplate)
		if err != nil {
			ps = append(ps, cfg.ProblemAt(at+".targetCatalogSourceTemplate", "%s: %v", op.TargetCatalogSourceTemplate, err))
			continue
		}
		out[at] = t
	}
	return out, ps
}

func readCatalogSourceTemplate(file string) (csTemplate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return csTemplate{}, err
	}
	var obj map[string]any
	if err := yaml.Unmarshal(data, &obj); err != nil {
		return csTemplate{}, fmt.Errorf("not a YAML object: %v", err)
	}
	if obj["apiVersion"] != "operators.coreos.com/v1alpha1" || obj["kind"] != "CatalogSource" {
		return csTemplate{}, fmt.Errorf("apiVersion %v, kind %v: want an operators.coreos.com/v1alpha1 CatalogSource", obj["apiVersion"], obj["kind"])
	}
	spec, ok := obj["spec"].(map[string]any)
	if obj["spec"] != nil && !ok {
		return csTemplate{}, fmt.Errorf("spec is not a mapping")
	}
	if st, _ := spec["sourceType"].(string); st != "" && st != "grpc" {
		return csTemplate{}, fmt.Errorf("spec.sourceType %q: the mirrored catalog is an image, want grpc (or leave it out)", st)
	}
	for _, f := range []string{"configMap", "address"} {
		if spec[f] != nil {
			return csTemplate{}, fmt.Errorf("spec.%s is set: the CatalogSource serves the mirrored catalog image; remove it", f)
		}
	}
	if md := obj["metadata"]; md != nil {
		if _, ok := md.(map[string]any); !ok {
			return csTemplate{}, fmt.Errorf("metadata is not a mapping")
		}
	}
	return csTemplate{file: file, obj: obj}, nil
}

// render is the template with the generated CatalogSource's name,
// namespace, sourceType and image.
func (t csTemplate) render(name, image string) ([]byte, error) {
	// A copy per catalog: the template may serve several.
	b, err := yaml.Marshal(t.obj)
	if err != nil {
		return nil, err
	}
	var obj map[string]any
	if err := yaml.Unmarshal(b, &obj); err != nil {
		return nil, err
	}
	md, _ := obj["metadata"].(map[string]any)
	if md == nil {
		md = map[string]any{}
	}
	md["name"], md["namespace"] = name, clusterres.MarketplaceNamespace
	obj["metadata"] = md
	spec, _ := obj["spec"].(map[string]any)
	if spec == nil {
		spec = map[string]any{}
	}
	spec["sourceType"], spec["image"] = "grpc", image
	obj["spec"] = spec
	out, err := clusterres.YAML(obj)
	if err != nil {
		return nil, fmt.Errorf("CatalogSource from template %s: %w", t.file, err)
	}
	return out, nil
}

// templateFor is the template of the operator entry a catalog item came
// from: its Origin.File lists "FILE: mirror.operators[i]" (comma-joined
// when two entries name the same catalog).
func templateFor(ts map[string]csTemplate, originFile string) (csTemplate, bool) {
	for _, o := range strings.Split(originFile, ",") {
		_, at, ok := strings.Cut(o, ": ")
		if t, found := ts[at]; ok && found {
			return t, true
		}
	}
	return csTemplate{}, false
}
