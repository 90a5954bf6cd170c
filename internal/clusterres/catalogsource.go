package clusterres

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// MarketplaceNamespace is where OLM looks for cluster-wide CatalogSources.
const MarketplaceNamespace = "openshift-marketplace"

// CatalogSourceOptions describe one grpc CatalogSource.
type CatalogSourceOptions struct {
	Name        string // DNS-1123 label; see CatalogSourceName
	Namespace   string // default openshift-marketplace
	Image       string // the mirrored catalog image, as the cluster pulls it
	DisplayName string
	Publisher   string
	// RegistryPoll, when non-zero, makes OLM re-pull a tagged catalog image
	// at this interval (spec.updateStrategy.registryPoll.interval).
	RegistryPoll time.Duration
	// MemoryTarget (a Kubernetes quantity such as "30Mi") sets
	// grpcPodConfig.memoryTarget, which lets OLM size GOMEMLIMIT and the
	// memory request of the catalog pod instead of letting it OOM-loop.
	MemoryTarget string
	// ExtractContent, when set, makes OLM copy the catalog and cache out of
	// the image and run them with its own opm: needed for catalogs built on
	// a scratch base (no opm inside).
	ExtractContent *ExtractContent
	Labels         map[string]string
	Annotations    map[string]string
}

// ExtractContent is grpcPodConfig.extractContent.
type ExtractContent struct {
	CatalogDir string `json:"catalogDir"`
	CacheDir   string `json:"cacheDir"`
}

// CatalogSource is operators.coreos.com/v1alpha1 CatalogSource.
type CatalogSource struct {
	TypeMeta
	Metadata ObjectMeta        `json:"metadata"`
	Spec     CatalogSourceSpec `json:"spec"`
}

// CatalogSourceSpec holds the spec fields airlock sets.
type CatalogSourceSpec struct {
	SourceType     string          `json:"sourceType"`
	Image          string          `json:"image"`
	DisplayName    string          `json:"displayName,omitempty"`
	Publisher      string          `json:"publisher,omitempty"`
	UpdateStrategy *UpdateStrategy `json:"updateStrategy,omitempty"`
	GRPCPodConfig  *GRPCPodConfig  `json:"grpcPodConfig,omitempty"`
}

// UpdateStrategy is spec.updateStrategy.
type UpdateStrategy struct {
	RegistryPoll struct {
		Interval string `json:"interval"`
	} `json:"registryPoll"`
}

// GRPCPodConfig is the part of spec.grpcPodConfig airlock sets.
type GRPCPodConfig struct {
	MemoryTarget   string          `json:"memoryTarget,omitempty"`
	ExtractContent *ExtractContent `json:"extractContent,omitempty"`
}

var quantityRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$`)

// NewCatalogSource validates o and builds the CatalogSource.
func NewCatalogSource(o CatalogSourceOptions) (CatalogSource, error) {
	if errs := validateLabel(o.Name); errs != "" {
		return CatalogSource{}, fmt.Errorf("CatalogSource name %q: %s", o.Name, errs)
	}
	if o.Image == "" {
		return CatalogSource{}, fmt.Errorf("CatalogSource %s: no image", o.Name)
	}
	ns := o.Namespace
	if ns == "" {
		ns = MarketplaceNamespace
	}
	if errs := validateLabel(ns); errs != "" {
		return CatalogSource{}, fmt.Errorf("CatalogSource %s: namespace %q: %s", o.Name, ns, errs)
	}
	cs := CatalogSource{
		TypeMeta: TypeMeta{"operators.coreos.com/v1alpha1", "CatalogSource"},
		Metadata: ObjectMeta{Name: o.Name, Namespace: ns, Labels: copyMap(o.Labels), Annotations: copyMap(o.Annotations)},
		Spec:     CatalogSourceSpec{SourceType: "grpc", Image: o.Image, DisplayName: o.DisplayName, Publisher: o.Publisher},
	}
	if o.RegistryPoll < 0 {
		return CatalogSource{}, fmt.Errorf("CatalogSource %s: registry poll interval %s is negative", o.Name, o.RegistryPoll)
	}
	if o.RegistryPoll > 0 {
		cs.Spec.UpdateStrategy = &UpdateStrategy{}
		// OLM parses this with time.ParseDuration and silently falls back to
		// 15m on error; Duration.String always round-trips.
		cs.Spec.UpdateStrategy.RegistryPoll.Interval = o.RegistryPoll.String()
	}
	if o.MemoryTarget != "" || o.ExtractContent != nil {
		if o.MemoryTarget != "" && !quantityRE.MatchString(o.MemoryTarget) {
			return CatalogSource{}, fmt.Errorf("CatalogSource %s: memory target %q is not a Kubernetes quantity (e.g. 30Mi, 1Gi)", o.Name, o.MemoryTarget)
		}
		if ec := o.ExtractContent; ec != nil && (!strings.HasPrefix(ec.CatalogDir, "/") || !strings.HasPrefix(ec.CacheDir, "/")) {
			return CatalogSource{}, fmt.Errorf("CatalogSource %s: extractContent needs absolute catalogDir and cacheDir, got %q and %q", o.Name, ec.CatalogDir, ec.CacheDir)
		}
		cs.Spec.GRPCPodConfig = &GRPCPodConfig{MemoryTarget: o.MemoryTarget, ExtractContent: o.ExtractContent}
	}
	return cs, nil
}

// CatalogSourceName turns a catalog repository's last path component(s),
// such as "redhat/redhat-operator-index" or "certified-operator-index",
// into a valid object name: lowercase, every run of other characters
// replaced by "-", at most 63 characters.
func CatalogSourceName(s string) string {
	return SanitizeName(s, 63)
}

var nonName = regexp.MustCompile(`[^a-z0-9]+`)

// SanitizeName maps s to a DNS-1123 label-like name of at most max
// characters ("." "/" "_" and other characters become "-").
func SanitizeName(s string, max int) string {
	s = nonName.ReplaceAllString(strings.ToLower(s), "-")
	s = strings.Trim(s, "-")
	if len(s) > max {
		s = strings.TrimRight(s[:max], "-")
	}
	if s == "" {
		s = "catalog"
	}
	return s
}

var labelRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// validateLabel checks a DNS-1123 label (names of namespaces and of
// CatalogSources, which OLM also uses as label values).
func validateLabel(s string) string {
	if s == "" {
		return "empty"
	}
	if len(s) > 63 {
		return "longer than 63 characters"
	}
	if !labelRE.MatchString(s) {
		return "must be lowercase letters, digits and '-', starting and ending with a letter or digit"
	}
	return ""
}

var subdomainRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

// validateName checks a DNS-1123 subdomain (most object names).
func validateName(s string) string {
	if s == "" {
		return "empty"
	}
	if len(s) > 253 {
		return "longer than 253 characters"
	}
	if !subdomainRE.MatchString(s) {
		return "must be lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"
	}
	return ""
}

// ClusterCatalog is olm.operatorframework.io/v1 ClusterCatalog: how OLM v1
// (operator-controller) reaches a catalog image, the cluster-scoped
// counterpart of a CatalogSource. oc-mirror v2 writes one per catalog
// (cc-*.yaml) beside the cs-*.yaml.
type ClusterCatalog struct {
	TypeMeta
	Metadata ObjectMeta         `json:"metadata"`
	Spec     ClusterCatalogSpec `json:"spec"`
}

// ClusterCatalogSpec is spec of a ClusterCatalog; Priority is always
// written (0 included), as oc-mirror's struct does.
type ClusterCatalogSpec struct {
	Priority int                  `json:"priority"`
	Source   ClusterCatalogSource `json:"source"`
}

// ClusterCatalogSource is spec.source: an image reference.
type ClusterCatalogSource struct {
	Type  string `json:"type"`
	Image struct {
		Ref string `json:"ref"`
	} `json:"image"`
}

// NewClusterCatalog is the ClusterCatalog for a mirrored catalog image.
func NewClusterCatalog(name, image string) (ClusterCatalog, error) {
	if msg := validateName(name); msg != "" {
		return ClusterCatalog{}, fmt.Errorf("ClusterCatalog name %q: %s", name, msg)
	}
	if image == "" {
		return ClusterCatalog{}, fmt.Errorf("ClusterCatalog %s: no image", name)
	}
	cc := ClusterCatalog{TypeMeta: TypeMeta{APIVersion: "olm.operatorframework.io/v1", Kind: "ClusterCatalog"},
		Metadata: ObjectMeta{Name: name}}
	cc.Spec.Source.Type = "Image"
	cc.Spec.Source.Image.Ref = image
	return cc, nil
}

// UpdateService is updateservice.operator.openshift.io/v1 UpdateService:
// the OpenShift Update Service serving the mirrored releases' update graph
// from the graph-data image.
type UpdateService struct {
	TypeMeta
	Metadata ObjectMeta        `json:"metadata"`
	Spec     UpdateServiceSpec `json:"spec"`
}

// UpdateServiceSpec is spec of an UpdateService.
type UpdateServiceSpec struct {
	Replicas       int    `json:"replicas"`
	Releases       string `json:"releases"`
	GraphDataImage string `json:"graphDataImage"`
}

// NewUpdateService is oc-mirror's update-service-oc-mirror object in
// openshift-update-service, for release images mirrored to releases and
// the graph-data image at graphDataImage.
func NewUpdateService(releases, graphDataImage string) UpdateService {
	return UpdateService{TypeMeta: TypeMeta{APIVersion: "updateservice.operator.openshift.io/v1", Kind: "UpdateService"},
		Metadata: ObjectMeta{Name: "update-service-oc-mirror", Namespace: "openshift-update-service"},
		Spec:     UpdateServiceSpec{Replicas: 2, Releases: releases, GraphDataImage: graphDataImage}}
}
