package catalogmirror

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/operator-framework/operator-registry/alpha/declcfg"

	"github.com/airlock-mirror/airlock/internal/catalog"
	"github.com/airlock-mirror/airlock/internal/clusterres"
)

// GlobalOperatorsNamespace already holds an AllNamespaces OperatorGroup on
// OpenShift; a second OperatorGroup there breaks every operator in it.
const GlobalOperatorsNamespace = "openshift-operators"

// InstallRequest is what `airlock catalog install-manifests` asks for.
type InstallRequest struct {
	Package         string
	Channel         string // default: the package's default channel
	Namespace       string // default: the package name
	Approval        string
	CatalogSource   string
	SourceNamespace string
}

// Install is the resolved request plus the objects to apply.
type Install struct {
	Options clusterres.InstallOptions
	// Objects are Namespace, OperatorGroup, Subscription — or only the
	// Subscription in openshift-operators.
	Objects []any
	// Notes explain decisions (install mode chosen, objects left out).
	Notes []string
}

// InstallFor resolves r against c: the channel (default channel unless
// given), its head bundle as startingCSV, and the OperatorGroup mode from
// the head's install modes (olm.csv.metadata, or the CSV in
// olm.bundle.object): AllNamespaces when supported, else OwnNamespace.
func InstallFor(c *catalog.Catalog, r InstallRequest) (*Install, error) {
	pkg := c.Package(r.Package)
	if pkg == nil {
		return nil, fmt.Errorf("package %q not found in catalog %s (have: %s)", r.Package, c.Source, strings.Join(c.PackageNames(), ", "))
	}
	ch := r.Channel
	if ch == "" {
		ch = pkg.DefaultChannel
	}
	chans, err := c.Channels(catalog.Selector{Packages: []string{r.Package}})
	if err != nil {
		return nil, err
	}
	var head string
	var have []string
	for _, ci := range chans {
		have = append(have, ci.Name)
		if ci.Name == ch {
			head = ci.Head
		}
	}
	if head == "" {
		return nil, fmt.Errorf("package %s has no channel %q (have: %s)", r.Package, ch, strings.Join(have, ", "))
	}
	ns := r.Namespace
	if ns == "" {
		ns = r.Package
	}
	in := &Install{}
	modes, found := installModes(c.Config, r.Package, head)
	all := false
	switch {
	case !found:
		all = true
		in.Notes = append(in.Notes, fmt.Sprintf("bundle %s declares no install modes in the catalog; assuming AllNamespaces", head))
	case modes["AllNamespaces"]:
		all = true
	case modes["OwnNamespace"]:
		all = false
	default:
		return nil, fmt.Errorf("bundle %s supports neither AllNamespaces nor OwnNamespace install mode (supported: %s); write the OperatorGroup by hand", head, supportedList(modes))
	}
	if ns == GlobalOperatorsNamespace && !all {
		return nil, fmt.Errorf("bundle %s does not support AllNamespaces, so it cannot be installed in %s; use --namespace", head, GlobalOperatorsNamespace)
	}
	in.Options = clusterres.InstallOptions{Package: r.Package, Channel: ch, StartingCSV: head, Namespace: ns, Approval: r.Approval,
		CatalogSource: r.CatalogSource, SourceNamespace: r.SourceNamespace, AllNamespaces: all}
	nsObj, og, sub, err := clusterres.InstallObjects(in.Options)
	if err != nil {
		return nil, err
	}
	if ns == GlobalOperatorsNamespace {
		in.Objects = []any{sub}
		in.Notes = append(in.Notes, GlobalOperatorsNamespace+" already has a global OperatorGroup: only the Subscription is written")
	} else {
		in.Objects = []any{nsObj, og, sub}
	}
	mode := "OwnNamespace"
	if all {
		mode = "AllNamespaces"
	}
	in.Notes = append(in.Notes, fmt.Sprintf("package %s, channel %s, head %s, install mode %s", r.Package, ch, head, mode))
	return in, nil
}

type installMode struct {
	Type      string `json:"type"`
	Supported bool   `json:"supported"`
}

// installModes reads the install modes of a bundle: from olm.csv.metadata,
// else from a ClusterServiceVersion in olm.bundle.object.
func installModes(cfg *declcfg.DeclarativeConfig, pkg, bundle string) (map[string]bool, bool) {
	for _, b := range cfg.Bundles {
		if b.Package != pkg || b.Name != bundle {
			continue
		}
		for _, p := range b.Properties {
			switch p.Type {
			case "olm.csv.metadata":
				var v struct {
					InstallModes []installMode `json:"installModes"`
				}
				if json.Unmarshal(p.Value, &v) == nil && len(v.InstallModes) > 0 {
					return modeMap(v.InstallModes), true
				}
			case "olm.bundle.object":
				var v struct {
					Data []byte `json:"data"`
				}
				if json.Unmarshal(p.Value, &v) != nil {
					continue
				}
				var obj struct {
					Kind string `json:"kind"`
					Spec struct {
						InstallModes []installMode `json:"installModes"`
					} `json:"spec"`
				}
				// encoding/json already base64-decoded Data.
				if json.Unmarshal(v.Data, &obj) == nil && obj.Kind == "ClusterServiceVersion" && len(obj.Spec.InstallModes) > 0 {
					return modeMap(obj.Spec.InstallModes), true
				}
			}
		}
	}
	return nil, false
}

func modeMap(ms []installMode) map[string]bool {
	out := map[string]bool{}
	for _, m := range ms {
		out[m.Type] = m.Supported
	}
	return out
}

func supportedList(m map[string]bool) string {
	var s []string
	for _, k := range []string{"AllNamespaces", "MultiNamespace", "SingleNamespace", "OwnNamespace"} {
		if m[k] {
			s = append(s, k)
		}
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
