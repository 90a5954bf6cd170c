package ref

import "testing"

func TestParse(t *testing.T) {
	const d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	cases := []struct {
		in   string
		want Ref
		str  string
	}{
		{"ubuntu", Ref{Transport: Docker, Registry: "docker.io", Path: "library/ubuntu"}, "docker.io/library/ubuntu"},
		{"index.docker.io/foo/bar:1", Ref{Transport: Docker, Registry: "docker.io", Path: "foo/bar", Tag: "1"}, "docker.io/foo/bar:1"},
		{"quay.io/a/b:v1@" + d, Ref{Transport: Docker, Registry: "quay.io", Path: "a/b", Tag: "v1", Digest: d}, "quay.io/a/b:v1@" + d},
		{"docker://localhost:5000/x/y@" + d, Ref{Transport: Docker, Registry: "localhost:5000", Path: "x/y", Digest: d}, "localhost:5000/x/y@" + d},
		{"127.0.0.1:5101/ns/repo@" + d, Ref{Transport: Docker, Registry: "127.0.0.1:5101", Path: "ns/repo", Digest: d}, "127.0.0.1:5101/ns/repo@" + d},
		{"file://openshift/release:4.12.0-x86_64", Ref{Transport: File, Path: "openshift/release", Tag: "4.12.0-x86_64"}, "file://openshift/release:4.12.0-x86_64"},
		{"oci:///tmp/lay:latest", Ref{Transport: OCI, Path: "/tmp/lay", Tag: "latest"}, "oci:///tmp/lay:latest"},
	}
	for _, c := range cases {
		got, err := Parse(c.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.in, err)
			continue
		}
		if got != c.want {
			t.Errorf("Parse(%q) = %+v, want %+v", c.in, got, c.want)
		}
		if got.String() != c.str {
			t.Errorf("Parse(%q).String() = %q, want %q", c.in, got.String(), c.str)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{"", "Upper/Case", "quay.io/a@sha256:short", "s3://x/y", "quay.io/a/b:", "quay.io//b", "a b"} {
		if _, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) succeeded, want error", in)
		}
	}
}
