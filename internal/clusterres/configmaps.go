package clusterres

import (
	"fmt"
	"regexp"
	"strings"
)

// ConfigMap is a v1 ConfigMap. BinaryData values are base64-encoded by the
// JSON/YAML marshaller, as the API expects.
type ConfigMap struct {
	TypeMeta
	Metadata   ObjectMeta        `json:"metadata"`
	Data       map[string]string `json:"data,omitempty"`
	BinaryData map[string][]byte `json:"binaryData,omitempty"`
}

// SignatureNamespace and SignatureLabel are where the cluster-version
// operator looks for release signatures it may trust offline.
const (
	SignatureNamespace = "openshift-config-managed"
	SignatureLabel     = "release.openshift.io/verification-signatures"
)

// ReleaseSignatures are the detached signatures of one release image.
type ReleaseSignatures struct {
	Digest     string   // "sha256:<hex>" of the release image
	Signatures [][]byte // in order; stored as sha256-<hex>-1, -2, ...
}

var sha256RE = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)

// SignatureConfigMap builds the ConfigMap holding release signatures. name
// empty means "sha256-<hex>" of the only release (oc adm release mirror's
// naming); several releases in one ConfigMap need an explicit name (oc-mirror
// uses "mirrored-release-signatures").
func SignatureConfigMap(name string, releases ...ReleaseSignatures) (ConfigMap, error) {
	if len(releases) == 0 {
		return ConfigMap{}, fmt.Errorf("signature ConfigMap: no release signatures given")
	}
	if name == "" {
		if len(releases) != 1 {
			return ConfigMap{}, fmt.Errorf("signature ConfigMap for %d releases needs a name", len(releases))
		}
		name = strings.Replace(releases[0].Digest, ":", "-", 1)
	}
	if errs := validateName(name); errs != "" {
		return ConfigMap{}, fmt.Errorf("signature ConfigMap name %q: %s", name, errs)
	}
	cm := ConfigMap{
		TypeMeta:   TypeMeta{"v1", "ConfigMap"},
		Metadata:   ObjectMeta{Name: name, Namespace: SignatureNamespace, Labels: map[string]string{SignatureLabel: ""}},
		BinaryData: map[string][]byte{},
	}
	for _, r := range releases {
		if !sha256RE.MatchString(r.Digest) {
			return ConfigMap{}, fmt.Errorf("release signature digest %q: want sha256:<64 hex>", r.Digest)
		}
		if len(r.Signatures) == 0 {
			return ConfigMap{}, fmt.Errorf("release %s: no signatures", r.Digest)
		}
		for i, s := range r.Signatures {
			if len(s) == 0 {
				return ConfigMap{}, fmt.Errorf("release %s: signature %d is empty", r.Digest, i+1)
			}
			key := fmt.Sprintf("%s-%d", strings.Replace(r.Digest, ":", "-", 1), i+1)
			if _, dup := cm.BinaryData[key]; dup {
				return ConfigMap{}, fmt.Errorf("release %s given twice", r.Digest)
			}
			cm.BinaryData[key] = s
		}
	}
	return cm, nil
}

// TrustedCANamespace is where image.config.openshift.io/cluster's
// spec.additionalTrustedCA.name ConfigMap must live.
const TrustedCANamespace = "openshift-config"

// TrustedCAConfigMap builds the ConfigMap referenced by
// image.config.openshift.io/cluster spec.additionalTrustedCA: one key per
// registry, "host" or "host..port" (a key cannot contain ':'), value the
// PEM bundle to trust for it.
func TrustedCAConfigMap(name string, caByRegistry map[string]string) (ConfigMap, error) {
	if errs := validateName(name); errs != "" {
		return ConfigMap{}, fmt.Errorf("trusted CA ConfigMap name %q: %s", name, errs)
	}
	if len(caByRegistry) == 0 {
		return ConfigMap{}, fmt.Errorf("trusted CA ConfigMap %s: no registries given", name)
	}
	cm := ConfigMap{
		TypeMeta: TypeMeta{"v1", "ConfigMap"},
		Metadata: ObjectMeta{Name: name, Namespace: TrustedCANamespace},
		Data:     map[string]string{},
	}
	for host, pem := range caByRegistry {
		if !strings.Contains(pem, "-----BEGIN CERTIFICATE-----") {
			return ConfigMap{}, fmt.Errorf("trusted CA for %s: not a PEM certificate bundle", host)
		}
		cm.Data[TrustedCAKey(host)] = pem
	}
	return cm, nil
}

// TrustedCAKey is the ConfigMap key for a registry host[:port].
func TrustedCAKey(hostPort string) string {
	if i := strings.LastIndex(hostPort, ":"); i >= 0 && !strings.HasSuffix(hostPort, "]") {
		return hostPort[:i] + ".." + hostPort[i+1:]
	}
	return hostPort
}

// OperatorHub is config.openshift.io/v1 OperatorHub (the singleton "cluster").
type OperatorHub struct {
	TypeMeta
	Metadata ObjectMeta `json:"metadata"`
	Spec     struct {
		DisableAllDefaultSources bool `json:"disableAllDefaultSources"`
	} `json:"spec"`
}

// OperatorHubDisableDefaults is the OperatorHub object that turns off the
// default (internet) catalog sources, so a disconnected cluster does not
// keep trying to pull them.
func OperatorHubDisableDefaults() OperatorHub {
	h := OperatorHub{TypeMeta: TypeMeta{"config.openshift.io/v1", "OperatorHub"}, Metadata: ObjectMeta{Name: "cluster"}}
	h.Spec.DisableAllDefaultSources = true
	return h
}

// OperatorHubPatch is the same change as a merge patch, for
// `oc patch operatorhub cluster --type merge -p "$(cat file)"`.
const OperatorHubPatch = `{"spec":{"disableAllDefaultSources":true}}` + "\n"
