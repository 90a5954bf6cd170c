package mirror_test

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"sigs.k8s.io/yaml"

	"github.com/airlock-mirror/airlock/internal/release"
	"github.com/airlock-mirror/airlock/internal/release/releasetest"
	"github.com/airlock-mirror/airlock/internal/testutil/clitest"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

// realBootImages is the REAL coreos-bootimages file of the 4.12.0 payload.
func realBootImages(t *testing.T) []byte {
	t.Helper()
	f, err := os.Open(shared("release", "ocp-4.12.0-x86_64", "release-manifests-layer.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not in the payload layer: %v", release.BootImagesPath, err)
		}
		if strings.TrimPrefix(h.Name, "./") == release.BootImagesPath {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
}

// withKubeVirt is the real boot-images file with a KubeVirt container disk
// entry for x86_64, as 4.13+ payloads carry one.
func withKubeVirt(t *testing.T, data []byte, digestRef string) []byte {
	t.Helper()
	var cm map[string]any
	if err := yaml.Unmarshal(data, &cm); err != nil {
		t.Fatal(err)
	}
	d := cm["data"].(map[string]any)
	var stream map[string]any
	if err := json.Unmarshal([]byte(d["stream"].(string)), &stream); err != nil {
		t.Fatal(err)
	}
	x86 := stream["architectures"].(map[string]any)["x86_64"].(map[string]any)
	x86["images"].(map[string]any)["kubevirt"] = map[string]any{"release": "412.86.202212081411-0",
		"image": strings.Split(digestRef, "@")[0] + ":412.86.202212081411-0", "digest-ref": digestRef}
	s, _ := json.Marshal(stream)
	d["stream"] = string(s)
	out, err := yaml.Marshal(cm)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestKubeVirtContainer: mirror.platform.kubeVirtContainer mirrors the
// KubeVirt container disk the payload's coreos-bootimages names (by
// digest) beside the release components, and the release mirror sets
// cover it; a payload without one (the REAL 4.12.0 file has none) is still
// mirrored, with a warning; without the field the disk is not mirrored.
func TestKubeVirtContainer(t *testing.T) {
	src := regtest.Start(t)
	rel, err := releasetest.Build(src.Host, releasetest.Options{Components: 3})
	if err != nil {
		t.Fatal(err)
	}
	disk, err := synth.Image(9001, synth.WithLayerSize(1024))
	if err != nil {
		t.Fatal(err)
	}
	diskRepo := src.Host + "/openshift-release-dev/ocp-v4.0-art-dev"
	diskDigest, err := synth.Push(disk, diskRepo+":rhcos-kubevirt", remote.WithTransport(src.Transport))
	if err != nil {
		t.Fatal(err)
	}
	top, err := releasetest.TarLayer(map[string][]byte{release.BootImagesPath: withKubeVirt(t, realBootImages(t), diskRepo+"@"+diskDigest)})
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(rel.Image, top)
	if err != nil {
		t.Fatal(err)
	}
	kvRelease := src.Host + "/openshift-release-dev/ocp-release:4.12.0-kubevirt"
	if _, err := synth.Push(img, kvRelease, remote.WithTransport(src.Transport)); err != nil {
		t.Fatal(err)
	}

	work := t.TempDir()
	config := func(name, payload string, kubeVirt bool) string {
		text := "apiVersion: mirror.openshift.io/v2alpha1\nkind: ImageSetConfiguration\nmirror:\n  platform:\n    release: " + payload + "\n"
		if kubeVirt {
			text += "    kubeVirtContainer: true\n"
		}
		p := filepath.Join(work, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	dst := regtest.Start(t)
	ws := filepath.Join(work, "ws")
	run(t, "mirror", "-c", config("kv.yaml", kvRelease, true), "--workspace", "file://"+ws, "docker://"+dst.Host+"/m")
	kvDest := dst.Host + "/m/openshift/release:4.12.0-x86_64-kube-virt-container"
	if got := dst.DigestOf(t, kvDest); got != diskDigest {
		t.Errorf("%s: %q, want the disk %s", kvDest, got, diskDigest)
	}
	idms := mustRead(t, filepath.Join(ws, "working-dir", "cluster-resources", "idms-oc-mirror.yaml"))
	if !strings.Contains(idms, "source: "+src.Host+"/openshift-release-dev/ocp-v4.0-art-dev") {
		t.Errorf("the release mirror set does not cover the disk's repository:\n%s", idms)
	}
	if !strings.Contains(mustRead(t, filepath.Join(ws, "working-dir", "mapping.txt")), diskRepo+"@"+diskDigest+"=") {
		t.Errorf("the verify mapping lacks the disk")
	}

	// Not asked for: not mirrored.
	dst2 := regtest.Start(t)
	run(t, "mirror", "-c", config("plain.yaml", kvRelease, false), "--workspace", "file://"+filepath.Join(work, "ws2"), "docker://"+dst2.Host+"/m")
	if got := dst2.DigestOf(t, dst2.Host+"/m/openshift/release:4.12.0-x86_64-kube-virt-container"); got != "" {
		t.Errorf("the disk was mirrored without kubeVirtContainer: %s", got)
	}

	// A payload that names no disk: mirrored, with a warning that says so.
	dst3 := regtest.Start(t)
	out, errOut, err := clitest.Run(t, "mirror", "-c", config("old.yaml", rel.Ref, true), "--workspace", "file://"+filepath.Join(work, "ws3"), "docker://"+dst3.Host+"/m")
	if err != nil || !strings.Contains(errOut, "mirror.platform.kubeVirtContainer: release 4.12.0: no KubeVirt container disk image for x86_64") {
		t.Errorf("payload without a disk: %v\n%s%s", err, out, errOut)
	}
	if dst3.DigestOf(t, dst3.Host+"/m/openshift/release-images:4.12.0-x86_64") != rel.Digest {
		t.Error("the release without a disk was not mirrored")
	}
}
