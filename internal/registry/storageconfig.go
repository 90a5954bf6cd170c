package registry

import (
	"fmt"
	"os"

	"github.com/distribution/distribution/v3/configuration"
	"go.yaml.in/yaml/v2"
)

// StorageFile is what --storage-config holds: either a bare distribution
// storage section
//
//	s3-aws: {bucket: mirror, region: us-east-1, ...}
//	redirect: {disable: true}
//
// or a distribution configuration excerpt with a `storage:` key and,
// optionally, `http: {secret: ...}` (the upload-state secret every instance
// behind one load balancer must share).
type StorageFile struct {
	Storage    configuration.Storage
	HTTPSecret string
}

// LoadStorageFile reads and checks a --storage-config file.
func LoadStorageFile(path string) (StorageFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return StorageFile{}, fmt.Errorf("reading storage config: %w", err)
	}
	return ParseStorageFile(path, data)
}

// ParseStorageFile parses --storage-config content; name is used in errors.
func ParseStorageFile(name string, data []byte) (StorageFile, error) {
	// go.yaml.in/yaml/v2, as distribution's own parser: nested maps come out
	// as map[any]any, the shape distribution's drivers expect.
	var top map[string]any
	if err := yaml.Unmarshal(data, &top); err != nil {
		return StorageFile{}, fmt.Errorf("%s: not valid YAML: %w", name, err)
	}
	var out StorageFile
	if _, ok := top["storage"]; ok {
		var doc struct {
			Storage configuration.Storage `yaml:"storage"`
			HTTP    struct {
				Secret string `yaml:"secret"`
			} `yaml:"http"`
		}
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return StorageFile{}, fmt.Errorf("%s: storage section: %w", name, err)
		}
		out.Storage, out.HTTPSecret = doc.Storage, doc.HTTP.Secret
	} else {
		if err := yaml.Unmarshal(data, &out.Storage); err != nil {
			return StorageFile{}, fmt.Errorf("%s: storage section: %w", name, err)
		}
	}
	typ, err := storageType(out.Storage)
	if err != nil {
		return StorageFile{}, fmt.Errorf("%s: %w", name, err)
	}
	if typ == "" {
		return StorageFile{}, fmt.Errorf("%s: no storage driver section (want e.g. `s3-aws:` or `filesystem:`, optionally under `storage:`)", name)
	}
	if r, ok := out.Storage["redirect"]; ok {
		if _, isBool := r["disable"].(bool); !isBool {
			return StorageFile{}, fmt.Errorf("%s: redirect.disable must be true or false", name)
		}
	}
	return out, nil
}

// storageType is configuration.Storage.Type without its panic on several
// driver sections.
func storageType(st configuration.Storage) (t string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	return st.Type(), nil
}
