package catalog_test

import (
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/airlock-mirror/airlock/internal/imageset"
)

func imagesetOperator(pkg string) imageset.Operator {
	return imageset.Operator{Packages: []imageset.IncludePackage{{Name: pkg}}}
}

func mustMT(idx v1.ImageIndex) types.MediaType {
	mt, _ := idx.MediaType()
	return mt
}

func emptyIndex() v1.ImageIndex { return empty.Index }

func mustName(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
