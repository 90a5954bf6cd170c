package catalogmirror

import (
	"testing"

	"github.com/airlock-mirror/airlock/internal/ref"
)

// TestMountMatchesOC checks Mount against the destinations oc's own tests
// expect (pkg/cli/admin/catalog mirror_test.go, TestMappingForImages) and
// the facts' --max-components example.
func TestMountMatchesOC(t *testing.T) {
	const d154 = "sha256:154d7e0295a94fb3d2a97309d711186a98a7308da37a5cd3d50360c6b2ba57de"
	cases := []struct {
		name, src, dest string
		max             int
		want            string
	}{
		{"tagged image to registry", "docker.io/my/image:tag", "quay.io", 2, "quay.io/my/image:tag"},
		{"namespaceless image to registry", "registry.access.redhat.com/ubi8-minimal@sha256:9285da611437622492f9ef4229877efe302589f1401bbd4052e9bb261b3d4387", "quay.io", 2, "quay.io/ubi8-minimal:51f124fa"},
		{"untagged image to registry", "docker.io/my/image", "quay.io", 2, "quay.io/my/image:latest"},
		{"digest image to registry", "docker.io/my/image@" + d154, "quay.io", 2, "quay.io/my/image:a1d77056"},
		{"tagged image to registry with port", "docker.io/my/image:tag", "localhost:5000", 2, "localhost:5000/my/image:tag"},
		{"tagged image to org", "docker.io/my/image:tag", "quay.io/my-org", 2, "quay.io/my-org/my-image:tag"},
		{"digest image to org", "docker.io/my/image@" + d154, "quay.io/my-org", 2, "quay.io/my-org/my-image:a1d77056"},
		{"tagged image to org, max 3", "docker.io/my/image:tag", "quay.io/my-org", 3, "quay.io/my-org/my/image:tag"},
		{"digest image to nested org, max 3", "docker.io/my/image@" + d154, "quay.io/my-org/sub-org", 3, "quay.io/my-org/sub-org/my-image:a1d77056"},
		{"digest image to nested org, max 4", "docker.io/my/image@" + d154, "quay.io/my-org/sub-org", 4, "quay.io/my-org/sub-org/my/image:a1d77056"},
		{"digest image to nested org, no max", "docker.io/my/image@" + d154, "quay.io/my-org/sub-org", 0, "quay.io/my-org/sub-org/my/image:a1d77056"},
		{"dest is local file", "docker.io/my/digest-image@" + d154, "file://my-local-index/index", 2, "file://my-local-index/index/my/digest-image:dcbadf49"},
		{"facts example", "registry.redhat.io/openshift4/ose-oauth-proxy@sha256:c0301e4686c3ed4206e370b42de5a3bd2229b9fb4906cf85f3f30650424abec2", "myregistry.com/olm", 2, "myregistry.com/olm/openshift4-ose-oauth-proxy:"},
		{"facts example, bare registry", "registry.redhat.io/openshift4/ose-oauth-proxy@sha256:c0301e4686c3ed4206e370b42de5a3bd2229b9fb4906cf85f3f30650424abec2", "myregistry.com", 2, "myregistry.com/openshift4/ose-oauth-proxy:"},
		{"tag and digest keeps the tag", "quay.io/a/b:v1@" + d154, "m.io/olm", 2, "m.io/olm/a-b:v1"},
	}
	for _, c := range cases {
		src := ref.MustParse(c.src)
		dest, err := ParseDest(c.dest)
		if err != nil {
			t.Fatal(err)
		}
		got := Mount(src, dest, c.max).String()
		want := c.want
		if want[len(want)-1] == ':' {
			want += DigestTag(src)
		}
		if got != want {
			t.Errorf("%s: Mount(%s, %s, %d) = %s, want %s", c.name, c.src, c.dest, c.max, got, want)
		}
	}
}

func TestDigestTag(t *testing.T) {
	// From oc's TestMirror: not zero-padded (7 hex digits here).
	cases := map[string]string{
		"quay.io/coreos/etcd-operator@sha256:c0301e4686c3ed4206e370b42de5a3bd2229b9fb4906cf85f3f30650424abec2":       "2f1eb95",
		"quay.io/coreos/prometheus-operator@sha256:5037b4e90dbb03ebdefaa547ddf6a1f748c8eeebeedf6b9d9f0913ad662b5731": "76771fef",
		"quay.io/coreos/etcd-operator@sha256:db563baa8194fcfe39d1df744ed70024b0f1f9e9b55b5923c2f3a413c44dc6b8":       "b56e2636",
	}
	for in, want := range cases {
		if got := DigestTag(ref.MustParse(in)); got != want {
			t.Errorf("DigestTag(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestIndexName(t *testing.T) {
	cases := map[string]string{
		"registry.redhat.io/redhat/redhat-operator-index:v4.18": "redhat-operator-index",
		"quay.io/a/b/c:1":          "b-c",
		"localhost:5000/index:1":   "index",
		"oci:///tmp/my-catalog:v1": "my-catalog",
	}
	for in, want := range cases {
		if got := IndexName(ref.MustParse(in)); got != want {
			t.Errorf("IndexName(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestParseDest(t *testing.T) {
	good := map[string]string{
		"quay.io":                 "quay.io",
		"docker://localhost:5000": "localhost:5000",
		"myregistry.com/olm":      "myregistry.com/olm",
		"127.0.0.1:5000/a/b":      "127.0.0.1:5000/a/b",
		"file://local/index":      "file://local/index",
		"docker://[::1]:5000/olm": "[::1]:5000/olm",
	}
	for in, want := range good {
		r, err := ParseDest(in)
		if err != nil {
			t.Errorf("ParseDest(%s): %v", in, err)
			continue
		}
		got := r.String()
		if r.Path == "" {
			got = r.Registry
		}
		if got != want {
			t.Errorf("ParseDest(%s) = %s, want %s", in, got, want)
		}
	}
	for _, bad := range []string{"myregistry", "quay.io/olm:tag", "oci:///tmp/x", "Quay.io/UPPER", "ftp://x"} {
		if _, err := ParseDest(bad); err == nil {
			t.Errorf("ParseDest(%s) accepted", bad)
		}
	}
}
