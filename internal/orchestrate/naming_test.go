package orchestrate

import (
	"testing"

	"github.com/airlock-mirror/airlock/internal/imageset"
	"github.com/airlock-mirror/airlock/internal/ref"
)

const hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestDestForOCMirrorNaming(t *testing.T) {
	reg := ref.MustParse("docker://mirror.local:5000/prefix")
	store := ref.Ref{Transport: ref.File}
	cases := []struct {
		src  string
		root ref.Ref
		want string
	}{
		{"registry.redhat.io/ubi9/ubi:latest", reg, "mirror.local:5000/prefix/ubi9/ubi:latest"},
		{"registry.redhat.io/ubi9/ubi@sha256:" + hex, reg, "mirror.local:5000/prefix/ubi9/ubi:sha256-" + hex},
		{"quay.io/a/b:v1@sha256:" + hex, reg, "mirror.local:5000/prefix/a/b:v1"},
		{"quay.io/a/b@sha256:" + hex, store, "file://a/b:sha256-" + hex},
		{"oci:///tmp/layouts/my-catalog", reg, "mirror.local:5000/prefix/my-catalog:latest"},
	}
	for _, c := range cases {
		got := DestFor(ref.MustParse(c.src), c.root).String()
		if got != c.want {
			t.Errorf("DestFor(%s, %s) = %s, want %s", c.src, c.root, got, c.want)
		}
	}
}

func TestFoldNestedAndRebase(t *testing.T) {
	r := ref.MustParse("mirror.local/prefix/openshift4/ose-oauth-proxy:v4")
	if got := FoldNested(r, 2).String(); got != "mirror.local/prefix/openshift4-ose-oauth-proxy:v4" {
		t.Errorf("fold 2: %s", got)
	}
	if got := FoldNested(r, 0).String(); got != r.String() {
		t.Errorf("fold 0 changed %s to %s", r, got)
	}
	st := ref.Ref{Transport: ref.File, Path: "a/b/c", Tag: "v1"}
	if got := FoldNested(st, 1); got.Path != "a/b/c" {
		t.Errorf("a store path was folded: %s", got)
	}
	if got := Rebase(st, ref.MustParse("docker://reg:5000/x")).String(); got != "reg:5000/x/a/b/c:v1" {
		t.Errorf("rebase: %s", got)
	}
}

func TestCatalogDest(t *testing.T) {
	root := ref.MustParse("docker://reg:5000/mirror")
	src := ref.MustParse("registry.redhat.io/redhat/redhat-operator-index:v4.18")
	if got := CatalogDest(src, "sha256:"+hex, imageset.Operator{}, root).String(); got != "reg:5000/mirror/redhat/redhat-operator-index:v4.18" {
		t.Errorf("plain: %s", got)
	}
	if got := CatalogDest(src, "sha256:"+hex, imageset.Operator{TargetCatalog: "my/idx", TargetTag: "v1"}, root).String(); got != "reg:5000/mirror/my/idx:v1" {
		t.Errorf("target: %s", got)
	}
	byDigest := ref.MustParse("registry.redhat.io/redhat/redhat-operator-index@sha256:" + hex)
	if got := CatalogDest(byDigest, "sha256:"+hex, imageset.Operator{}, root).String(); got != "reg:5000/mirror/redhat/redhat-operator-index:sha256-"+hex {
		t.Errorf("digest-only: %s", got)
	}
}
