package registry_test

import "github.com/distribution/distribution/v3/configuration"

func toStorage(m map[string]map[string]any) configuration.Storage {
	st := configuration.Storage{}
	for k, v := range m {
		st[k] = v
	}
	return st
}
