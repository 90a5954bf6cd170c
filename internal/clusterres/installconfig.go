package clusterres

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// ImageSource is one install-config.yaml imageDigestSources or
// imageContentSources entry.
type ImageSource struct {
	Source  string   `json:"source"`
	Mirrors []string `json:"mirrors"`
}

// InstallConfigFragment holds the install-config.yaml fields a
// disconnected installation sets. The installer refuses imageDigestSources
// and imageContentSources together, so a fragment carries one of them.
type InstallConfigFragment struct {
	ImageDigestSources  []ImageSource `json:"imageDigestSources,omitempty"`
	ImageContentSources []ImageSource `json:"imageContentSources,omitempty"`
	// AdditionalTrustBundlePolicy "Always" makes the nodes trust the bundle
	// (the default, Proxyonly, uses it only for a proxy).
	AdditionalTrustBundlePolicy string `json:"additionalTrustBundlePolicy,omitempty"`
	AdditionalTrustBundle       string `json:"additionalTrustBundle,omitempty"`
	PullSecret                  string `json:"pullSecret,omitempty"`
}

// InstallConfigFragments builds the install-config.yaml fragment for
// OpenShift 4.14 and later (imageDigestSources) and the legacy one for
// older installers (imageContentSources) from the digest mirrors. caPEM
// and pullSecret are optional; pullSecret is the JSON a cluster pulls with.
// Tag mirrors (ITMS) have no install-config field: apply them after
// installation.
func InstallConfigFragments(digest []Mirror, caPEM string, pullSecret []byte) (current, legacy InstallConfigFragment, err error) {
	if len(digest) == 0 {
		return current, legacy, fmt.Errorf("install-config: no digest mirror set (IDMS or ICSP) entries found")
	}
	srcs := make([]ImageSource, len(digest))
	for i, m := range digest {
		if len(m.Mirrors) == 0 {
			return current, legacy, fmt.Errorf("install-config: source %s has no mirrors", m.Source)
		}
		srcs[i] = ImageSource{Source: m.Source, Mirrors: m.Mirrors}
	}
	var base InstallConfigFragment
	if caPEM != "" {
		if !strings.Contains(caPEM, "-----BEGIN CERTIFICATE-----") {
			return current, legacy, fmt.Errorf("install-config: additionalTrustBundle is not a PEM certificate bundle")
		}
		base.AdditionalTrustBundlePolicy = "Always"
		base.AdditionalTrustBundle = strings.TrimRight(caPEM, "\n") + "\n"
	}
	if len(pullSecret) > 0 {
		// install-config holds the pull secret as a one-line JSON string.
		var b bytes.Buffer
		if err := json.Compact(&b, pullSecret); err != nil {
			return current, legacy, fmt.Errorf("install-config: pull secret is not JSON: %w", err)
		}
		base.PullSecret = b.String()
	}
	current, legacy = base, base
	current.ImageDigestSources = srcs
	legacy.ImageContentSources = srcs
	return current, legacy, nil
}
