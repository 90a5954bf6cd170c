package catalog_test

import "github.com/airlock-mirror/airlock/internal/imageset"

func imagesetOperator(pkg string) imageset.Operator {
	return imageset.Operator{Packages: []imageset.IncludePackage{{Name: pkg}}}
}
