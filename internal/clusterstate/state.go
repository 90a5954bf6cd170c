// Package clusterstate reads what a cluster runs — from an export
// (`oc get clusterversion,subscriptions,clusterserviceversions,catalogsources,pods,imagedigestmirrorsets,imagetagmirrorsets,imagecontentsourcepolicies -A -o json`)
// or a must-gather directory — and derives from it the ImageSetConfiguration
// that mirrors it (Inventory) and the list of images the mirror must hold
// before an upgrade (Check).
package clusterstate

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

	"github.com/airlock-mirror/airlock/internal/clusterres"
)

// State is the part of a cluster's objects airlock uses.
type State struct {
	Version        ClusterVersion
	Subscriptions  []Subscription
	CSVs           map[string]CSV // namespace/name
	CatalogSources map[string]CatalogSource
	Pods           []Pod
	MirrorSets     clusterres.MirrorSets
}

// ClusterVersion is config.openshift.io/v1 ClusterVersion "version".
type ClusterVersion struct {
	Channel string
	// Version and Image are the completed release the cluster runs (the
	// newest Completed history entry, else status.desired).
	Version, Image string
	// DesiredVersion and DesiredImage are spec.desiredUpdate, when set:
	// the upgrade being planned or in progress.
	DesiredVersion, DesiredImage string
}

// Subscription is operators.coreos.com/v1alpha1 Subscription.
type Subscription struct {
	Namespace, Name                  string
	Package, Channel                 string
	Source, SourceNamespace          string
	InstalledCSV, CurrentCSV         string
	StartingCSV, InstallPlanApproval string
}

// CSV is a ClusterServiceVersion: its version and the images it runs.
type CSV struct {
	Namespace, Name, Version string
	Images                   []string // spec.relatedImages and deployment containers
}

// CatalogSource is operators.coreos.com/v1alpha1 CatalogSource.
type CatalogSource struct {
	Namespace, Name, Image string
}

// Pod is one running pod's images.
type Pod struct {
	Namespace, Name string
	// Images are the images the pod runs, by digest where status.imageID
	// says it ("repo@sha256:..."), else spec image as written.
	Images []string
}

// Load reads an export file (JSON List, JSON objects, YAML documents) or a
// must-gather directory (every .yaml/.json below it).
func Load(path string) (*State, error) {
	st := newState()
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("reading cluster export: %w", err)
	}
	if !fi.IsDir() {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading cluster export: %w", err)
		}
		if err := st.parse(data, path); err != nil {
			return nil, err
		}
	} else {
		err = filepath.WalkDir(path, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			ext := strings.ToLower(filepath.Ext(p))
			if d.IsDir() || (ext != ".yaml" && ext != ".yml" && ext != ".json") {
				return nil
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return st.parse(data, p)
		})
		if err != nil {
			return nil, fmt.Errorf("reading must-gather: %w", err)
		}
	}
	if err := st.finish(); err != nil {
		return nil, fmt.Errorf("%s: %w; export with: %s > cluster.json", path, err, ExportCommand)
	}
	return st, nil
}

// ExportCommand is the read-only command that exports what Load reads.
const ExportCommand = "oc get clusterversion,subscriptions,clusterserviceversions,catalogsources,pods,imagedigestmirrorsets,imagetagmirrorsets,imagecontentsourcepolicies -A -o json"

func newState() *State {
	return &State{CSVs: map[string]CSV{}, CatalogSources: map[string]CatalogSource{}}
}

// finish puts the objects read into one order, whatever order the export
// file, the must-gather tree or the API server listed them in, so that
// every source of the same objects gives the same State (and the same
// inventory and check output). Mirror-set rules keep their order within
// an object: it is the order of the object's mirrors.
func (st *State) finish() error {
	sort.Slice(st.Subscriptions, func(i, j int) bool {
		a, b := st.Subscriptions[i], st.Subscriptions[j]
		return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
	})
	sort.Slice(st.Pods, func(i, j int) bool {
		return st.Pods[i].Namespace+"/"+st.Pods[i].Name < st.Pods[j].Namespace+"/"+st.Pods[j].Name
	})
	sort.SliceStable(st.MirrorSets.Rules, func(i, j int) bool {
		a, b := st.MirrorSets.Rules[i], st.MirrorSets.Rules[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Object < b.Object
	})
	if st.Version.Version == "" && len(st.Subscriptions) == 0 && len(st.Pods) == 0 {
		return errors.New("no ClusterVersion, Subscription or Pod found")
	}
	return nil
}

func (st *State) parse(data []byte, name string) error {
	dec := kyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for doc := 1; ; doc++ {
		var obj map[string]any
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: document %d: %w", name, doc, err)
		}
		if err := st.add(obj, fmt.Sprintf("%s: document %d", name, doc)); err != nil {
			return err
		}
	}
}

// object is the union of the fields read from every kind.
type object struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Spec struct {
		// ClusterVersion
		Channel       string `json:"channel"`
		DesiredUpdate *struct {
			Version string `json:"version"`
			Image   string `json:"image"`
		} `json:"desiredUpdate"`
		// Subscription
		Name                string `json:"name"`
		Source              string `json:"source"`
		SourceNamespace     string `json:"sourceNamespace"`
		StartingCSV         string `json:"startingCSV"`
		InstallPlanApproval string `json:"installPlanApproval"`
		// CatalogSource
		Image string `json:"image"`
		// CSV
		Version       string `json:"version"`
		RelatedImages []struct {
			Image string `json:"image"`
		} `json:"relatedImages"`
		Install struct {
			Spec struct {
				Deployments []struct {
					Spec struct {
						Template podTemplate `json:"template"`
					} `json:"spec"`
				} `json:"deployments"`
			} `json:"spec"`
		} `json:"install"`
		// Pod
		Containers     []container `json:"containers"`
		InitContainers []container `json:"initContainers"`
	} `json:"spec"`
	Status struct {
		// ClusterVersion
		Desired struct {
			Version string `json:"version"`
			Image   string `json:"image"`
		} `json:"desired"`
		History []struct {
			State   string `json:"state"`
			Version string `json:"version"`
			Image   string `json:"image"`
		} `json:"history"`
		// Subscription
		InstalledCSV string `json:"installedCSV"`
		CurrentCSV   string `json:"currentCSV"`
		// Pod
		Phase                 string            `json:"phase"`
		ContainerStatuses     []containerStatus `json:"containerStatuses"`
		InitContainerStatuses []containerStatus `json:"initContainerStatuses"`
	} `json:"status"`
}

type podTemplate struct {
	Spec struct {
		Containers     []container `json:"containers"`
		InitContainers []container `json:"initContainers"`
	} `json:"spec"`
}

type container struct {
	Name  string `json:"name"`
	Image string `json:"image"`
}

type containerStatus struct {
	Name    string `json:"name"`
	Image   string `json:"image"`
	ImageID string `json:"imageID"`
}

func (st *State) add(raw map[string]any, where string) error {
	if raw == nil {
		return nil
	}
	kind, _ := raw["kind"].(string)
	if strings.HasSuffix(kind, "List") {
		items, _ := raw["items"].([]any)
		for i, it := range items {
			m, _ := it.(map[string]any)
			if err := st.add(m, fmt.Sprintf("%s: items[%d]", where, i)); err != nil {
				return err
			}
		}
		return nil
	}
	switch kind {
	case "ImageDigestMirrorSet", "ImageTagMirrorSet", "ImageContentSourcePolicy":
		b, _ := json.Marshal(raw)
		ms, err := clusterres.ParseMirrorSets(b, where)
		if err != nil {
			return err
		}
		st.MirrorSets.Rules = append(st.MirrorSets.Rules, ms.Rules...)
		return nil
	case "ClusterVersion", "Subscription", "ClusterServiceVersion", "CatalogSource", "Pod":
	default:
		return nil
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	var o object
	if err := json.Unmarshal(b, &o); err != nil {
		return fmt.Errorf("%s: %s %s: %w", where, kind, o.Metadata.Name, err)
	}
	key := o.Metadata.Namespace + "/" + o.Metadata.Name
	switch kind {
	case "ClusterVersion":
		cv := ClusterVersion{Channel: o.Spec.Channel, Version: o.Status.Desired.Version, Image: o.Status.Desired.Image}
		// history is newest first; the cluster runs the newest Completed.
		for _, h := range o.Status.History {
			if h.State == "Completed" {
				cv.Version, cv.Image = h.Version, h.Image
				break
			}
		}
		if d := o.Spec.DesiredUpdate; d != nil && (d.Version != cv.Version || d.Image != "" && d.Image != cv.Image) {
			cv.DesiredVersion, cv.DesiredImage = d.Version, d.Image
		}
		if cv.Version == "" {
			return fmt.Errorf("%s: ClusterVersion %s has no completed version in status.history or status.desired", where, o.Metadata.Name)
		}
		st.Version = cv
	case "Subscription":
		if o.Spec.Name == "" || o.Spec.Source == "" {
			return fmt.Errorf("%s: Subscription %s: spec.name and spec.source are required", where, key)
		}
		st.Subscriptions = append(st.Subscriptions, Subscription{
			Namespace: o.Metadata.Namespace, Name: o.Metadata.Name, Package: o.Spec.Name, Channel: o.Spec.Channel,
			Source: o.Spec.Source, SourceNamespace: o.Spec.SourceNamespace, InstalledCSV: o.Status.InstalledCSV,
			CurrentCSV: o.Status.CurrentCSV, StartingCSV: o.Spec.StartingCSV, InstallPlanApproval: o.Spec.InstallPlanApproval,
		})
	case "ClusterServiceVersion":
		c := CSV{Namespace: o.Metadata.Namespace, Name: o.Metadata.Name, Version: o.Spec.Version}
		for _, r := range o.Spec.RelatedImages {
			c.Images = appendUnique(c.Images, r.Image)
		}
		for _, d := range o.Spec.Install.Spec.Deployments {
			for _, ct := range append(d.Spec.Template.Spec.InitContainers, d.Spec.Template.Spec.Containers...) {
				c.Images = appendUnique(c.Images, ct.Image)
			}
		}
		st.CSVs[key] = c
	case "CatalogSource":
		st.CatalogSources[key] = CatalogSource{Namespace: o.Metadata.Namespace, Name: o.Metadata.Name, Image: o.Spec.Image}
	case "Pod":
		if o.Status.Phase != "" && o.Status.Phase != "Running" && o.Status.Phase != "Pending" {
			return nil // finished pods do not pull again
		}
		p := Pod{Namespace: o.Metadata.Namespace, Name: o.Metadata.Name}
		byName := map[string]string{}
		for _, s := range append(o.Status.InitContainerStatuses, o.Status.ContainerStatuses...) {
			if i := strings.Index(s.ImageID, "@sha256:"); i > 0 {
				byName[s.Name] = strings.TrimPrefix(s.ImageID, "docker-pullable://")
			}
		}
		for _, c := range append(o.Spec.InitContainers, o.Spec.Containers...) {
			img := c.Image
			if id, ok := byName[c.Name]; ok {
				img = pinned(c.Image, id)
			}
			p.Images = appendUnique(p.Images, img)
		}
		st.Pods = append(st.Pods, p)
	}
	return nil
}

// pinned names the spec image by the digest CRI-O reported. imageID may
// carry another repository (the one the image was first pulled as); the
// digest is what the node needs again, under the name the pod asks for.
func pinned(spec, imageID string) string {
	dg := imageID[strings.Index(imageID, "@sha256:")+1:]
	repo := spec
	if i := strings.Index(repo, "@"); i >= 0 {
		repo = repo[:i]
	}
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	return repo + "@" + dg
}

func appendUnique(s []string, v string) []string {
	if v == "" {
		return s
	}
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
