package deletion

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/airlock-mirror/airlock/internal/registry"
)

// inProcessHost names the embedded registry opened on its storage.
const inProcessHost = "airlock.internal"

// ApplyEmbedded deletes l from the embedded registry's storage (filesystem
// root, or st when it names a driver): through the registry API of an
// in-process server on that storage, so distribution's own delete logic
// runs, then, with the server closed, garbage collection, which removes the
// blobs only deleted manifests used. The storage must not be served
// meanwhile (the caller checks the serve lock). The GC result is nil when
// deleting failed: a partial delete is reported and gc left to rerun.
func ApplyEmbedded(ctx context.Context, l List, root string, st configuration.Storage, log *slog.Logger) (Result, *registry.GCResult, error) {
	if log == nil {
		log = slog.Default()
	}
	srv, err := registry.New(ctx, registry.Options{Root: root, Storage: st, Logger: log})
	if err != nil {
		return Result{}, nil, err
	}
	res, aerr := Apply(ctx, l, Access{Registry: inProcessHost, Remote: []remote.Option{remote.WithTransport(srv.InProcessTransport())}})
	srv.Close() // garbage collection must not run beside the registry app
	if aerr != nil {
		return res, nil, aerr
	}
	gc, err := registry.GC(ctx, root, st, registry.GCOptions{Logger: log})
	if err != nil {
		return res, nil, fmt.Errorf("deleted %d manifests, but garbage collection failed (run 'airlock registry gc'): %w", len(res.Deleted), err)
	}
	return res, &gc, nil
}
