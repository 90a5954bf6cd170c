package ocicompat

import (
	"context"
	"errors"
	"fmt"

	"github.com/distribution/distribution/v3/configuration"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/factory"
)

// NewDriver builds a storage driver over the same storage distribution is
// configured with (the "storage" section: filesystem root, s3-aws bucket,
// ...), for Options.Driver. distribution's App does not expose its own
// driver; a second driver over the same root or bucket sees the same data.
// The storage driver packages must be linked in by the caller (blank
// imports), as for distribution itself.
func NewDriver(ctx context.Context, storage configuration.Storage) (storagedriver.StorageDriver, error) {
	typ := storage.Type()
	if typ == "" {
		return nil, errors.New("ocicompat: the storage configuration names no driver")
	}
	if typ == "inmemory" {
		// A second inmemory driver would be a second, empty store.
		return nil, errors.New("ocicompat: the inmemory storage driver cannot be shared with distribution; use filesystem storage")
	}
	drv, err := factory.Create(ctx, typ, storage.Parameters())
	if err != nil {
		return nil, fmt.Errorf("ocicompat: opening %s storage: %w", typ, err)
	}
	return drv, nil
}
