package clusterres

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/airlock-mirror/airlock/internal/testutil/golden"
)

const testCA = "-----BEGIN CERTIFICATE-----\nMIIBdemo\n-----END CERTIFICATE-----\n"

func TestTrustObjects(t *testing.T) {
	cm, patch, err := TrustObjects("", testCA, []string{"mirror.example.com:5000", "registry.local"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cm.Data["mirror.example.com..5000"]; !ok {
		t.Errorf("no host..port key: %v", cm.Data)
	}
	y, err := YAML[any](cm, patch)
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "trust.yaml", y)
	for _, bad := range [][]string{nil, {"https://mirror:5000"}, {"mirror:5000/ocp"}, {"a:1", "a:1"}} {
		if _, _, err := TrustObjects("", testCA, bad); err == nil {
			t.Errorf("registries %q accepted", bad)
		}
	}
	if _, _, err := TrustObjects("", "not a cert", []string{"a:1"}); err == nil {
		t.Error("non-PEM CA accepted")
	}
}

const (
	clusterPS  = `{"auths":{"cloud.openshift.com":{"auth":"Y2xvdWQ6c2VjcmV0","email":"me@example.com"},"mirror.example.com:5000":{"auth":"b2xkOm9sZA=="},"quay.io":{"auth":"cXVheTpzZWNyZXQ="}},"credsStore":"keep-me"}`
	mirrorAuth = `{"auths":{"mirror.example.com:5000":{"auth":"YWRtaW46bmV3"},"mirror.example.com:5000/ocp4":{"auth":"b2NwOm5ldw=="},"other.example":{"auth":"b3RoZXI6eA=="}}}`
)

func TestMergePullSecret(t *testing.T) {
	res, err := MergePullSecret([]byte(clusterPS), "pull-secret.json", []byte(mirrorAuth), "auth.json", []string{"mirror.example.com:5000"})
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "pull-secret-merged.json", res.JSON)
	if strings.Join(res.Added, ",") != "mirror.example.com:5000/ocp4" || strings.Join(res.Replaced, ",") != "mirror.example.com:5000" || res.Kept != 2 {
		t.Errorf("added %v replaced %v kept %d", res.Added, res.Replaced, res.Kept)
	}
	var got struct {
		Auths map[string]struct {
			Auth  string `json:"auth"`
			Email string `json:"email"`
		} `json:"auths"`
		CredsStore string `json:"credsStore"`
	}
	if err := json.Unmarshal(res.JSON, &got); err != nil {
		t.Fatal(err)
	}
	if got.Auths["mirror.example.com:5000"].Auth != "YWRtaW46bmV3" || got.Auths["cloud.openshift.com"].Email != "me@example.com" ||
		got.CredsStore != "keep-me" || len(got.Auths) != 4 {
		t.Errorf("merged: %+v", got)
	}
	// Every registry of the authfile when none is named.
	all, err := MergePullSecret([]byte(clusterPS), "pull-secret.json", []byte(mirrorAuth), "auth.json", nil)
	if err != nil || len(all.Added) != 2 {
		t.Errorf("all: %+v %v", all.Added, err)
	}
	y, err := YAML(PullSecretObject(res.JSON))
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "pull-secret-secret.yaml", y)
	if got := SetPullSecretCommand("/tmp/my dir/pull-secret.json"); got != "oc set data secret/pull-secret -n openshift-config --from-file=.dockerconfigjson='/tmp/my dir/pull-secret.json'" {
		t.Errorf("command: %s", got)
	}
}

func TestMergePullSecretErrorsNameNoSecret(t *testing.T) {
	cases := map[string][2]string{
		"no credentials for registry nope.example": {clusterPS, mirrorAuth},
		"not a JSON pull secret":                   {`{"auths": YWRtaW46bmV3`, mirrorAuth},
		"has no \"auth\"":                          {clusterPS, `{"auths":{"nope.example":{"username":"YWRtaW46bmV3"}}}`},
	}
	for want, in := range cases {
		_, err := MergePullSecret([]byte(in[0]), "pull-secret.json", []byte(in[1]), "auth.json", []string{"nope.example"})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want %q", err, want)
			continue
		}
		if strings.Contains(err.Error(), "YWRtaW46bmV3") {
			t.Errorf("error leaks a credential: %v", err)
		}
	}
}

const clusterResources = `---
apiVersion: config.openshift.io/v1
kind: ImageDigestMirrorSet
metadata:
  name: idms-release-0
spec:
  imageDigestMirrors:
  - mirrors:
    - mirror.example.com:5000/ocp4/openshift-release-dev/ocp-release
    source: quay.io/openshift-release-dev/ocp-release
    mirrorSourcePolicy: NeverContactSource
  - mirrors:
    - mirror.example.com:5000/ocp4/openshift-release-dev/ocp-v4.0-art-dev
    source: quay.io/openshift-release-dev/ocp-v4.0-art-dev
---
apiVersion: config.openshift.io/v1
kind: ImageTagMirrorSet
metadata:
  name: itms-generic-0
spec:
  imageTagMirrors:
  - mirrors: [mirror.example.com:5000/ocp4/ubi9/ubi]
    source: registry.redhat.io/ubi9/ubi
---
apiVersion: operators.coreos.com/v1alpha1
kind: CatalogSource
metadata: {name: cs-redhat-operator-index, namespace: openshift-marketplace}
spec: {image: mirror.example.com:5000/ocp4/redhat/redhat-operator-index:v4.18, sourceType: grpc}
`

// An `oc get imagecontentsourcepolicy -o json` List, as a cluster export has it.
const icspList = `{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"operator.openshift.io/v1alpha1","kind":"ImageContentSourcePolicy",
 "metadata":{"name":"redhat-operator-index-0"},"spec":{"repositoryDigestMirrors":[
 {"source":"quay.io/openshift-release-dev/ocp-release","mirrors":["old.mirror:5000/ocp4/openshift-release-dev/ocp-release","mirror.example.com:5000/ocp4/openshift-release-dev/ocp-release"]},
 {"source":"registry.redhat.io/openshift4/ose-oauth-proxy","mirrors":["mirror.example.com:5000/olm/openshift4-ose-oauth-proxy"]}]}}]}`

func TestParseMirrorSetsAndInstallConfig(t *testing.T) {
	a, err := ParseMirrorSets([]byte(clusterResources), "cluster-resources.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseMirrorSets([]byte(icspList), "icsp.json")
	if err != nil {
		t.Fatal(err)
	}
	ms := MirrorSets{Rules: append(a.Rules, b.Rules...)}
	if len(ms.Rules) != 5 || ms.Rules[0].Policy != "NeverContactSource" || ms.Rules[2].Digest() || ms.Rules[3].Object != "redhat-operator-index-0" {
		t.Fatalf("rules: %+v", ms.Rules)
	}
	digest := ms.DigestMirrors()
	if len(digest) != 3 || len(digest[0].Mirrors) != 2 {
		t.Fatalf("digest mirrors: %+v", digest)
	}
	ps := []byte("{\n  \"auths\": {\"mirror.example.com:5000\": {\"auth\": \"YWRtaW46cGFzcw==\"}}\n}\n")
	cur, legacy, err := InstallConfigFragments(digest, testCA, ps)
	if err != nil {
		t.Fatal(err)
	}
	y, err := YAML(cur, legacy)
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "install-config-fragments.yaml", y)
	if _, _, err := InstallConfigFragments(nil, "", nil); err == nil || !strings.Contains(err.Error(), "no digest mirror set") {
		t.Errorf("empty: %v", err)
	}
	if _, err := ParseMirrorSets([]byte("kind: ImageDigestMirrorSet\nmetadata: {name: x}\nspec:\n  imageDigestMirrors:\n  - mirrors: [a/b]\n"), "bad.yaml"); err == nil ||
		!strings.Contains(err.Error(), "bad.yaml") || !strings.Contains(err.Error(), "no source") {
		t.Errorf("entry without source: %v", err)
	}
}
