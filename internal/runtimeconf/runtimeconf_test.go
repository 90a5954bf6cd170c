package runtimeconf

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/containerd/containerd/remotes/docker"
	dockerconfig "github.com/containerd/containerd/remotes/docker/config"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
	"go.podman.io/image/v5/types"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/airlock-mirror/airlock/internal/clusterres"
	"github.com/airlock-mirror/airlock/internal/testutil/golden"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

// releaseRules are the mirror sets of a release and an operator mirrored
// with the source path kept (oc-mirror naming), plus a tag mirror.
func releaseRules(mirror string) []clusterres.Rule {
	return []clusterres.Rule{
		{Kind: "ImageDigestMirrorSet", Object: "idms-release-0", Source: "quay.io/openshift-release-dev/ocp-release", Mirrors: []string{mirror + "/openshift-release-dev/ocp-release"}, Policy: "NeverContactSource"},
		{Kind: "ImageDigestMirrorSet", Object: "idms-release-0", Source: "quay.io/openshift-release-dev/ocp-v4.0-art-dev", Mirrors: []string{mirror + "/openshift-release-dev/ocp-v4.0-art-dev"}},
		{Kind: "ImageDigestMirrorSet", Object: "idms-operator-0", Source: "registry.redhat.io/openshift4", Mirrors: []string{mirror + "/openshift4"}},
		{Kind: "ImageTagMirrorSet", Object: "itms-generic-0", Source: "registry.redhat.io/ubi9/ubi", Mirrors: []string{mirror + "/ubi9/ubi"}},
	}
}

func TestGolden(t *testing.T) {
	o := Options{Rules: releaseRules("mirror.example.com:5000/ocp"), CAFile: "/etc/pki/airlock/ca.crt"}
	files, err := Containerd(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files[0].Path != "certs.d/quay.io/hosts.toml" || files[1].Path != "certs.d/registry.redhat.io/hosts.toml" {
		t.Fatalf("containerd files: %+v", files)
	}
	golden.Check(t, "hosts-quay.io.toml", files[0].Data)
	golden.Check(t, "hosts-registry.redhat.io.toml", files[1].Data)
	rc, err := RegistriesConf(o)
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "registries.conf", rc[0].Data)
	k3, err := K3s(o)
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "registries.yaml", k3[0].Data)
}

// TestRegistriesConfParsedBySysregistries reads the drop-in back with
// containers/image (the code CRI-O, podman and skopeo run): every source
// resolves to its mirror with the pull-from-mirror the rule kind implies,
// and the NeverContactSource source is blocked.
func TestRegistriesConfParsedBySysregistries(t *testing.T) {
	files, err := RegistriesConf(Options{Rules: releaseRules("mirror.example.com:5000/ocp")})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "registries.conf")
	if err := os.WriteFile(path, files[0].Data, 0o644); err != nil {
		t.Fatal(err)
	}
	// Strict TOML: no key the format does not know.
	var raw map[string]any
	md, err := toml.DecodeFile(path, &raw)
	if err != nil {
		t.Fatal(err)
	}
	var v2 sysregistriesv2.V2RegistriesConf
	if md, err = toml.DecodeFile(path, &v2); err != nil {
		t.Fatal(err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		t.Fatalf("keys sysregistriesv2 does not know: %v", und)
	}
	sys := &types.SystemContext{SystemRegistriesConfPath: path, SystemRegistriesConfDirPath: t.TempDir()}
	sysregistriesv2.InvalidateCache()
	const dg = "@sha256:0123456789012345678901234567890123456789012345678901234567890123"
	cases := []struct {
		image, wantFirst string
		blocked          bool
		sources          int
	}{
		{"quay.io/openshift-release-dev/ocp-release" + dg, "mirror.example.com:5000/ocp/openshift-release-dev/ocp-release" + dg, true, 2},
		{"quay.io/openshift-release-dev/ocp-v4.0-art-dev" + dg, "mirror.example.com:5000/ocp/openshift-release-dev/ocp-v4.0-art-dev" + dg, false, 2},
		{"registry.redhat.io/openshift4/ose-cli" + dg, "mirror.example.com:5000/ocp/openshift4/ose-cli" + dg, false, 2},
		// digest-only mirrors are not used for tags ...
		{"registry.redhat.io/openshift4/ose-cli:v4.18", "registry.redhat.io/openshift4/ose-cli:v4.18", false, 1},
		// ... and tag-only mirrors not for digests.
		{"registry.redhat.io/ubi9/ubi:9.4", "mirror.example.com:5000/ocp/ubi9/ubi:9.4", false, 2},
		{"registry.redhat.io/ubi9/ubi" + dg, "registry.redhat.io/ubi9/ubi" + dg, false, 1},
	}
	for _, c := range cases {
		reg, err := sysregistriesv2.FindRegistry(sys, c.image)
		if err != nil || reg == nil {
			t.Fatalf("%s: no registry entry (%v)", c.image, err)
		}
		if reg.Blocked != c.blocked {
			t.Errorf("%s: blocked = %v, want %v", c.image, reg.Blocked, c.blocked)
		}
		named, err := reference.ParseNamed(c.image)
		if err != nil {
			t.Fatal(err)
		}
		srcs, err := reg.PullSourcesFromReference(named)
		if err != nil {
			t.Fatal(err)
		}
		if len(srcs) != c.sources || srcs[0].Reference.String() != c.wantFirst {
			var got []string
			for _, s := range srcs {
				got = append(got, s.Reference.String())
			}
			t.Errorf("%s: pull sources %v, want %d starting with %s", c.image, got, c.sources, c.wantFirst)
		}
	}
}

// mirrorWorld starts a TLS registry holding one image under the mirror
// path and returns the registry, the rules pointing upstream.example at
// it, and the image digest.
func mirrorWorld(t *testing.T) (*regtest.Registry, []clusterres.Rule, string) {
	t.Helper()
	reg := regtest.Start(t, regtest.WithTLS())
	img, err := synth.Image(42)
	if err != nil {
		t.Fatal(err)
	}
	dg, err := synth.Push(img, reg.Ref("mirror/team/app:1.0"), remote.WithTransport(reg.Transport))
	if err != nil {
		t.Fatal(err)
	}
	rules := []clusterres.Rule{
		{Kind: "ImageDigestMirrorSet", Object: "idms-0", Source: "upstream.example/team/app", Mirrors: []string{reg.Host + "/mirror/team/app"}},
		{Kind: "ImageTagMirrorSet", Object: "itms-0", Source: "upstream.example/team/app", Mirrors: []string{reg.Host + "/mirror/team/app"}},
	}
	return reg, rules, dg
}

// TestSkopeoPullsThroughRegistriesConf: the real skopeo, given only the
// generated registries.conf, inspects upstream.example images (a name that
// does not resolve) by digest and by tag from the mirror on 127.0.0.1.
func TestSkopeoPullsThroughRegistriesConf(t *testing.T) {
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Fatal("skopeo is required (apt-get install skopeo; .ci/run installs it)")
	}
	reg, rules, dg := mirrorWorld(t)
	files, err := RegistriesConf(Options{Rules: rules})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "registries.conf")
	if err := os.WriteFile(conf, files[0].Data, 0o644); err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(dir, "policy.json")
	if err := os.WriteFile(policy, []byte(`{"default":[{"type":"insecureAcceptAnything"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, image := range []string{"upstream.example/team/app@" + dg, "upstream.example/team/app:1.0"} {
		cmd := exec.Command(skopeo, "--registries-conf", conf, "--policy", policy, "inspect", "--raw", "--cert-dir", reg.CertDir, "docker://"+image)
		cmd.Env = append(os.Environ(), "HOME="+dir, "REGISTRY_AUTH_FILE="+filepath.Join(dir, "auth.json"), "CONTAINERS_REGISTRIES_CONF_DIR="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("skopeo inspect %s through the generated registries.conf: %v\n%s", image, err, out)
		}
		if !strings.Contains(string(out), `"layers"`) {
			t.Fatalf("skopeo inspect %s: not a manifest:\n%s", image, out)
		}
	}
	// Without the file the same name does not resolve: the mirror did the work.
	cmd := exec.Command(skopeo, "--policy", policy, "inspect", "--raw", "--retry-times", "0", "docker://upstream.example/team/app@"+dg)
	cmd.Env = append(os.Environ(), "HOME="+dir, "REGISTRY_AUTH_FILE="+filepath.Join(dir, "auth.json"))
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("upstream.example resolved without the mirror config:\n%s", out)
	}
}

// TestContainerdResolvesThroughHostsToml: containerd's own hosts.toml
// loader and resolver, pointed at the generated certs.d, resolve and fetch
// upstream.example images from the mirror with the CA from the file.
func TestContainerdResolvesThroughHostsToml(t *testing.T) {
	reg, rules, dg := mirrorWorld(t)
	files, err := Containerd(Options{Rules: rules, CAFile: reg.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	for _, f := range files {
		p := filepath.Join(root, f.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	hostsFn := dockerconfig.ConfigureHosts(context.Background(), dockerconfig.HostOptions{HostDir: dockerconfig.HostDirFromRoot(filepath.Join(root, "certs.d"))})
	hosts, err := hostsFn("upstream.example")
	if err != nil {
		t.Fatal(err)
	}
	// The mirror first, then the upstream server as containerd's fallback.
	if len(hosts) != 2 || hosts[0].Host != reg.Host || hosts[0].Path != "/v2/mirror" || hosts[1].Host != "upstream.example" {
		t.Fatalf("containerd hosts for upstream.example: %+v", hosts)
	}
	if hosts[0].Capabilities.Has(docker.HostCapabilityPush) || !hosts[0].Capabilities.Has(docker.HostCapabilityResolve) {
		t.Errorf("mirror capabilities %v: want pull and resolve only", hosts[0].Capabilities)
	}
	resolver := docker.NewResolver(docker.ResolverOptions{Hosts: hostsFn})
	for _, image := range []string{"upstream.example/team/app@" + dg, "upstream.example/team/app:1.0"} {
		_, desc, err := resolver.Resolve(context.Background(), image)
		if err != nil {
			t.Fatalf("containerd resolving %s through the generated hosts.toml: %v", image, err)
		}
		if desc.Digest.String() != dg {
			t.Errorf("%s resolved to %s, want %s", image, desc.Digest, dg)
		}
		f, err := resolver.Fetcher(context.Background(), image)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := f.Fetch(context.Background(), desc)
		if err != nil {
			t.Fatalf("containerd fetching %s: %v", image, err)
		}
		rc.Close()
	}
}

// k3sRegistries is the registries.yaml schema as documented for k3s and
// RKE2 (mirrors.<registry>.endpoint/rewrite, configs.<host>.tls/auth);
// decoded strictly so a misspelt key fails.
type k3sRegistries struct {
	Mirrors map[string]struct {
		Endpoint []string          `json:"endpoint"`
		Rewrite  map[string]string `json:"rewrite,omitempty"`
	} `json:"mirrors"`
	Configs map[string]struct {
		TLS struct {
			CAFile             string `json:"ca_file,omitempty"`
			CertFile           string `json:"cert_file,omitempty"`
			KeyFile            string `json:"key_file,omitempty"`
			InsecureSkipVerify bool   `json:"insecure_skip_verify,omitempty"`
		} `json:"tls"`
	} `json:"configs,omitempty"`
}

func TestK3sRegistriesYAML(t *testing.T) {
	files, err := K3s(Options{Rules: releaseRules("mirror.example.com:5000/ocp"), CAFile: "/etc/pki/airlock/ca.crt"})
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSON(files[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	var r k3sRegistries
	if strict, err := kjson.UnmarshalStrict(js, &r); err != nil || len(strict) > 0 {
		t.Fatalf("registries.yaml: %v %v", err, strict)
	}
	q := r.Mirrors["quay.io"]
	if len(q.Endpoint) != 1 || q.Endpoint[0] != "https://mirror.example.com:5000" || q.Rewrite["^(.*)$"] != "ocp/$1" {
		t.Errorf("quay.io mirror: %+v", q)
	}
	if r.Configs["mirror.example.com:5000"].TLS.CAFile != "/etc/pki/airlock/ca.crt" {
		t.Errorf("configs: %+v", r.Configs)
	}
}

// TestRegistryWideRuntimesRefuseRenamedPaths: a mirror that renames the
// path (oc adm catalog mirror's --max-components mangling) cannot be
// expressed for containerd or k3s; the error names the rule.
func TestRegistryWideRuntimesRefuseRenamedPaths(t *testing.T) {
	rules := []clusterres.Rule{{Kind: "ImageContentSourcePolicy", Object: "redhat-operator-index-0", Source: "registry.redhat.io/openshift4/ose-oauth-proxy", Mirrors: []string{"myregistry.com/olm/openshift4-ose-oauth-proxy"}}}
	for name, gen := range map[string]func(Options) ([]File, error){"containerd": Containerd, "k3s": K3s} {
		_, err := gen(Options{Rules: rules})
		if err == nil || !strings.Contains(err.Error(), "redhat-operator-index-0") || !strings.Contains(err.Error(), "does not keep the path") {
			t.Errorf("%s: err = %v, want one naming the rule and the path", name, err)
		}
	}
	// registries.conf maps repositories one by one, so it works.
	if _, err := RegistriesConf(Options{Rules: rules}); err != nil {
		t.Errorf("registries.conf: %v", err)
	}
}
