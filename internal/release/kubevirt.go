package release

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"sigs.k8s.io/yaml"
)

// BootImagesPath is the payload file listing the RHCOS boot images
// (coreos-bootimages ConfigMap, data.stream: CoreOS stream metadata),
// where the KubeVirt container disk of the release is named.
const BootImagesPath = "release-manifests/0000_50_installer_coreos-bootimages.yaml"

// ErrNoKubeVirt says the payload's stream metadata names no KubeVirt
// container disk for the architecture (releases before 4.13 have none).
var ErrNoKubeVirt = errors.New("no KubeVirt container disk image")

// ReadFile returns one file of a release image, read from the top layer
// down like ReadFiles; nil when no layer has it.
func ReadFile(img v1.Image, name string) ([]byte, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("listing layers: %w", err)
	}
	var data []byte
	want := map[string]*[]byte{name: &data}
	hidden := map[string]bool{}
	for i := len(layers) - 1; i >= 0 && len(want) > 0; i-- {
		if err := scanLayer(layers[i], want, hidden); err != nil {
			d, _ := layers[i].Digest()
			return nil, fmt.Errorf("reading layer %d (%s): %w", i+1, d, err)
		}
	}
	return data, nil
}

// streamArch is the CoreOS stream metadata's name of an architecture.
var streamArch = map[string]string{"amd64": "x86_64", "arm64": "aarch64", "ppc64le": "ppc64le", "s390x": "s390x"}

// KubeVirtImage is the KubeVirt container disk image (the RHCOS disk
// OpenShift Virtualization boots hosted-cluster nodes from) that the
// coreos-bootimages file names for arch (amd64, arm64, ...), by digest:
// architectures.<arch>.images.kubevirt.digest-ref.
func KubeVirtImage(bootImages []byte, arch string) (string, error) {
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(bootImages, &cm); err != nil {
		return "", fmt.Errorf("%s: %w", BootImagesPath, err)
	}
	stream, ok := cm.Data["stream"]
	if !ok {
		return "", fmt.Errorf("%s: no data.stream", BootImagesPath)
	}
	var s struct {
		Architectures map[string]struct {
			Images map[string]json.RawMessage `json:"images"`
		} `json:"architectures"`
	}
	if err := json.Unmarshal([]byte(stream), &s); err != nil {
		return "", fmt.Errorf("%s: data.stream: %w", BootImagesPath, err)
	}
	sa := streamArch[arch]
	if sa == "" {
		sa = arch
	}
	raw, ok := s.Architectures[sa].Images["kubevirt"]
	if !ok {
		return "", fmt.Errorf("%w for %s in %s", ErrNoKubeVirt, sa, BootImagesPath)
	}
	var kv struct {
		Image     string `json:"image"`
		DigestRef string `json:"digest-ref"`
	}
	if err := json.Unmarshal(raw, &kv); err != nil {
		return "", fmt.Errorf("%s: architectures.%s.images.kubevirt: %w", BootImagesPath, sa, err)
	}
	// The digest reference, so the mirror holds exactly the disk the
	// release was built with; a tag-only entry would drift.
	if kv.DigestRef == "" || !strings.Contains(kv.DigestRef, "@sha256:") {
		return "", fmt.Errorf("%s: architectures.%s.images.kubevirt has no digest-ref (image %q)", BootImagesPath, sa, kv.Image)
	}
	return kv.DigestRef, nil
}
