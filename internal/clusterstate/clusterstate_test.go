package clusterstate

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"sigs.k8s.io/yaml"

	"github.com/airlock-mirror/airlock/internal/release/releasetest"
	"github.com/airlock-mirror/airlock/internal/testutil/golden"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

// export writes testdata/cluster-export.json with the placeholders filled.
func export(t *testing.T, vals map[string]string) string {
	t.Helper()
	data, err := os.ReadFile("testdata/cluster-export.json")
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	for k, v := range vals {
		s = strings.ReplaceAll(s, "{{"+k+"}}", v)
	}
	if strings.Contains(s, "{{") {
		t.Fatalf("unfilled placeholder in export: %s", s[strings.Index(s, "{{"):][:20])
	}
	p := filepath.Join(t.TempDir(), "cluster.json")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func fakeDigest(c byte) string { return "sha256:" + strings.Repeat(string(c), 64) }

func fixedValues() map[string]string {
	return map[string]string{"MIRROR": "mirror.example.com:5000", "DG_RELEASE": fakeDigest('a'), "DG_OP100": fakeDigest('b'),
		"DG_ETCD": fakeDigest('c'), "DG_BUSYBOX": fakeDigest('d'), "DG_WEB": fakeDigest('e')}
}

func TestLoadExport(t *testing.T) {
	st, err := Load(export(t, fixedValues()))
	if err != nil {
		t.Fatal(err)
	}
	v := st.Version
	if v.Channel != "stable-4.12" || v.Version != "4.11.59" || v.DesiredVersion != "4.12.0" || !strings.HasSuffix(v.DesiredImage, fakeDigest('a')) {
		t.Errorf("cluster version: %+v", v)
	}
	if len(st.Subscriptions) != 1 || st.Subscriptions[0].InstalledCSV != "demo-operator.v1.0.0" || st.CSVs["demo-operator/demo-operator.v1.0.0"].Version != "1.0.0" {
		t.Errorf("subscriptions %+v csvs %+v", st.Subscriptions, st.CSVs)
	}
	// The Succeeded job pod is left out; images are pinned by imageID.
	if len(st.Pods) != 3 {
		t.Fatalf("pods: %+v", st.Pods)
	}
	if got := strings.Join(st.Pods[2].Images, ","); got != "docker.io/library/busybox@"+fakeDigest('d')+",registry.example.com/apps/web@"+fakeDigest('e') {
		t.Errorf("shop pod images: %s", got)
	}
	if len(st.MirrorSets.Rules) != 4 {
		t.Errorf("mirror rules: %+v", st.MirrorSets.Rules)
	}
}

// TestLoadMustGather reads the same objects laid out as a must-gather
// directory (one YAML file per object).
func TestLoadMustGather(t *testing.T) {
	var list struct{ Items []json.RawMessage }
	data, _ := os.ReadFile(export(t, fixedValues()))
	if err := json.Unmarshal(data, &list); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for i, it := range list.Items {
		y, err := yaml.JSONToYAML(it)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "namespaces", fmt.Sprintf("obj-%d", i), "object.yaml")
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, y, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	st, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Version.Version != "4.11.59" || len(st.Pods) != 3 || len(st.Subscriptions) != 1 {
		t.Errorf("must-gather: %+v", st)
	}
	if _, err := Load(t.TempDir()); err == nil || !strings.Contains(err.Error(), "oc get clusterversion") {
		t.Errorf("empty export: %v", err)
	}
}

func TestInventory(t *testing.T) {
	st, err := Load(export(t, fixedValues()))
	if err != nil {
		t.Fatal(err)
	}
	cfg, notes, err := Inventory(st, InventoryOptions{UpgradeTo: "4.12.2"})
	if err != nil {
		t.Fatal(err)
	}
	y, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "inventory.yaml", y)
	if len(notes) != 0 {
		t.Errorf("notes: %v", notes)
	}
}

// mirrorWorld fills a registry as a mirror run would, with three holes:
// one upgrade-payload component, one related image of the subscription's
// next bundle, and an app whose mirror set points at a wrong path.
func mirrorWorld(t *testing.T) (*regtest.Registry, map[string]string) {
	t.Helper()
	reg := regtest.Start(t)
	opts := []remote.Option{remote.WithTransport(reg.Transport)}
	push := func(seed int64, repo string) string {
		img, err := synth.Image(seed, synth.WithLayerSize(256))
		if err != nil {
			t.Fatal(err)
		}
		dg, err := synth.Push(img, reg.Ref(repo), opts...)
		if err != nil {
			t.Fatal(err)
		}
		return dg
	}
	digestOf := func(seed int64) string {
		img, _ := synth.Image(seed, synth.WithLayerSize(256))
		d, _ := img.Digest()
		return d.String()
	}
	art := "ocp4/openshift-release-dev/ocp-v4.0-art-dev"
	v := map[string]string{"MIRROR": reg.Host}
	v["DG_ETCD"] = push(1, art)
	dgAPI := push(2, art)
	dgMissing := digestOf(3) // in the payload, never mirrored
	refs := fmt.Sprintf(`{"kind":"ImageStream","apiVersion":"image.openshift.io/v1","metadata":{"name":"4.12.0"},"spec":{"tags":[
{"name":"etcd","from":{"kind":"DockerImage","name":"quay.io/openshift-release-dev/ocp-v4.0-art-dev@%s"}},
{"name":"cluster-kube-apiserver-operator","from":{"kind":"DockerImage","name":"quay.io/openshift-release-dev/ocp-v4.0-art-dev@%s"}},
{"name":"machine-config-operator","from":{"kind":"DockerImage","name":"quay.io/openshift-release-dev/ocp-v4.0-art-dev@%s"}}]}}`, v["DG_ETCD"], dgAPI, dgMissing)
	relImg, err := releasetest.Image([]byte(refs))
	if err != nil {
		t.Fatal(err)
	}
	v["DG_RELEASE"], err = synth.Push(relImg, reg.Ref("ocp4/openshift-release-dev/ocp-release:4.12.0-x86_64"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	v["DG_OP100"] = push(10, "olm/demo/demo-operator")
	dgOp110 := digestOf(11) // the next version's operator image: not mirrored
	dgBundle110 := push(12, "olm/demo/demo-operator-bundle")
	dgBundle100 := push(13, "olm/demo/demo-operator-bundle")
	v["DG_WEB"] = push(20, "apps/web") // mirrored, but the IDMS says wrong/apps
	v["DG_BUSYBOX"] = digestOf(21)
	fbc := fmt.Sprintf(`{"schema":"olm.package","name":"demo-operator","defaultChannel":"stable"}
{"schema":"olm.channel","name":"stable","package":"demo-operator","entries":[{"name":"demo-operator.v1.0.0"},{"name":"demo-operator.v1.1.0","replaces":"demo-operator.v1.0.0"}]}
{"schema":"olm.bundle","name":"demo-operator.v1.0.0","package":"demo-operator","image":"quay.io/demo/demo-operator-bundle@%[1]s","properties":[{"type":"olm.package","value":{"packageName":"demo-operator","version":"1.0.0"}}],"relatedImages":[{"name":"operator","image":"quay.io/demo/demo-operator@%[2]s"}]}
{"schema":"olm.bundle","name":"demo-operator.v1.1.0","package":"demo-operator","image":"quay.io/demo/demo-operator-bundle@%[3]s","properties":[{"type":"olm.package","value":{"packageName":"demo-operator","version":"1.1.0"}}],"relatedImages":[{"name":"operator","image":"quay.io/demo/demo-operator@%[4]s"},{"name":"bundle","image":"quay.io/demo/demo-operator-bundle@%[3]s"}]}
`, dgBundle100, v["DG_OP100"], dgBundle110, dgOp110)
	layer, err := releasetest.TarLayer(map[string][]byte{"configs/demo-operator/catalog.json": []byte(fbc)})
	if err != nil {
		t.Fatal(err)
	}
	cat, err := mutate.AppendLayers(mustImage(t, 30), layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := cat.ConfigFile()
	cf = cf.DeepCopy()
	cf.Config.Labels = map[string]string{"operators.operatorframework.io.index.configs.v1": "/configs"}
	if cat, err = mutate.ConfigFile(cat, cf); err != nil {
		t.Fatal(err)
	}
	r, _ := name.ParseReference(reg.Ref("olm/demo/demo-catalog:v1"), name.Insecure)
	if err := remote.Write(r, cat, opts...); err != nil {
		t.Fatal(err)
	}
	v["want-missing-component"] = "quay.io/openshift-release-dev/ocp-v4.0-art-dev@" + dgMissing
	v["want-missing-operator"] = "quay.io/demo/demo-operator@" + dgOp110
	return reg, v
}

func mustImage(t *testing.T, seed int64) v1.Image {
	img, err := synth.Image(seed, synth.WithLayerSize(64))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestCheck: against a real registry with synthetic content, every image
// the cluster runs, the upgrade payload's components and the next bundle's
// images are looked up through the cluster's mirror sets; the four holes
// are reported by name with their cause, everything else is found.
func TestCheck(t *testing.T) {
	reg, v := mirrorWorld(t)
	st, err := Load(export(t, v))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Check(context.Background(), st, CheckOptions{Mirror: reg.Host, Remote: []remote.Option{remote.WithTransport(reg.Transport)}, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Upgrade != "4.12.0" {
		t.Errorf("upgrade payload version %q", res.Upgrade)
	}
	got := map[string]Cause{}
	for _, f := range res.Missing {
		got[f.Image] = f.Cause
	}
	want := map[string]Cause{
		v["want-missing-component"]:                    CauseDigestAbsent,
		v["want-missing-operator"]:                     CauseDigestAbsent,
		"registry.example.com/apps/web@" + v["DG_WEB"]: CauseWrongPath,
		"docker.io/library/busybox@" + v["DG_BUSYBOX"]: CauseNoMirrorSet,
	}
	if len(got) != len(want) {
		t.Errorf("missing %d images, want %d: %+v", len(got), len(want), res.Missing)
	}
	for img, c := range want {
		if got[img] != c {
			t.Errorf("%s: cause %q, want %q", img, got[img], c)
		}
	}
	// 3 pods' 4 images + release image + 3 components (etcd shared with a
	// pod) + next bundle and its operator image.
	if res.Needed != 9 {
		t.Errorf("needed %d images, want 9", res.Needed)
	}
	for _, f := range res.Missing {
		if f.Image == v["want-missing-operator"] && !strings.Contains(f.Why, "demo-operator.v1.1.0") {
			t.Errorf("operator finding does not name the next bundle: %+v", f)
		}
		if f.Cause == CauseWrongPath && (len(f.Tried) != 1 || !strings.Contains(f.Tried[0], "/wrong/apps/web@") || !strings.Contains(f.Tried[0], "idms-apps-0")) {
			t.Errorf("wrong-path finding should name the mirror tried and the IDMS: %+v", f)
		}
	}
}

// TestInventoryReleaseNextToClusterImage: components in the namespace of
// the release image the cluster runs are the release's, whatever registry
// it came from; other pod images are additionalImages.
func TestInventoryReleaseNextToClusterImage(t *testing.T) {
	st := &State{
		Version: ClusterVersion{Channel: "stable-4.12", Version: "4.12.0", Image: "registry.local:5000/openshift-release-dev/ocp-release:4.12.0-x86_64"},
		Pods: []Pod{{Namespace: "openshift-etcd", Name: "etcd", Images: []string{"registry.local:5000/openshift-release-dev/ocp-v4.0-art-dev@" + fakeDigest('1')}},
			{Namespace: "shop", Name: "web", Images: []string{"registry.local:5000/shop/web@" + fakeDigest('2')}}},
	}
	cfg, _, err := Inventory(st, InventoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Mirror.AdditionalImages) != 1 || cfg.Mirror.AdditionalImages[0].Name != "registry.local:5000/shop/web@"+fakeDigest('2') {
		t.Errorf("additionalImages: %+v", cfg.Mirror.AdditionalImages)
	}
	if ch := cfg.Mirror.Platform.Channels; len(ch) != 1 || ch[0].MinVersion != "4.12.0" || ch[0].ShortestPath {
		t.Errorf("channels: %+v", ch)
	}
}
