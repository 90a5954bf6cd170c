package clusterres

import (
	"fmt"
	"strings"
)

// DefaultTrustedCAName is the name airlock gives the ConfigMap that
// image.config.openshift.io/cluster spec.additionalTrustedCA points at.
const DefaultTrustedCAName = "airlock-mirror-ca"

// ImageConfig is the part of config.openshift.io/v1 Image (the singleton
// "cluster") that trusting a mirror changes. Marshalled, it is a JSON merge
// patch: `oc patch image.config.openshift.io/cluster --type merge
// --patch-file FILE` sets spec.additionalTrustedCA and leaves every other
// field (allowedRegistries, registrySources, ...) as it is.
type ImageConfig struct {
	TypeMeta
	Metadata ObjectMeta      `json:"metadata"`
	Spec     ImageConfigSpec `json:"spec"`
}

// ImageConfigSpec holds additionalTrustedCA only.
type ImageConfigSpec struct {
	AdditionalTrustedCA ConfigMapName `json:"additionalTrustedCA"`
}

// ConfigMapName references a ConfigMap in openshift-config.
type ConfigMapName struct {
	Name string `json:"name"`
}

// TrustObjects returns the additional-trusted-CA ConfigMap holding one key
// per registry ("host..port") and the image.config.openshift.io/cluster
// merge patch that points the cluster at it. A cluster has a single
// additionalTrustedCA, so every mirror registry goes into one ConfigMap:
// applying a second ConfigMap and patch would replace the first.
func TrustObjects(name, caPEM string, registries []string) (ConfigMap, ImageConfig, error) {
	if len(registries) == 0 {
		return ConfigMap{}, ImageConfig{}, fmt.Errorf("trust: no registry given (--registry HOST:PORT)")
	}
	if name == "" {
		name = DefaultTrustedCAName
	}
	by := make(map[string]string, len(registries))
	for _, r := range registries {
		if err := checkRegistryHost(r); err != nil {
			return ConfigMap{}, ImageConfig{}, err
		}
		if _, dup := by[r]; dup {
			return ConfigMap{}, ImageConfig{}, fmt.Errorf("trust: registry %s given twice", r)
		}
		by[r] = caPEM
	}
	cm, err := TrustedCAConfigMap(name, by)
	if err != nil {
		return ConfigMap{}, ImageConfig{}, err
	}
	patch := ImageConfig{
		TypeMeta: TypeMeta{"config.openshift.io/v1", "Image"},
		Metadata: ObjectMeta{Name: "cluster"},
		Spec:     ImageConfigSpec{AdditionalTrustedCA: ConfigMapName{Name: name}},
	}
	return cm, patch, nil
}

// checkRegistryHost rejects values that are not a bare registry host[:port]
// (a scheme or a repository path would make a key the cluster never looks up).
func checkRegistryHost(r string) error {
	switch {
	case r == "":
		return fmt.Errorf("registry: empty host")
	case strings.ContainsAny(r, "/@ \t") || len(r) > 253:
		return fmt.Errorf("registry %q: want HOST or HOST:PORT, without scheme or path", r)
	}
	return nil
}
