package catalogimage

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/airlock-mirror/airlock/internal/catalog"
	"github.com/airlock-mirror/airlock/internal/ref"
)

// ReplaceDatabase writes to dst a copy of the legacy sqlite catalog image
// src whose index database (the file named by the database label) is
// replaced by dbFile — a pruned copy of it — on every platform. The format,
// command and opm of the image are kept, so clusters whose catalog pods run
// that old opm keep working.
func ReplaceDatabase(ctx context.Context, imgs Images, src ref.Ref, dbFile string, dst ref.Ref) (*Result, error) {
	data, err := os.ReadFile(dbFile)
	if err != nil {
		return nil, fmt.Errorf("reading pruned database: %w", err)
	}
	holder := &catalog.Catalog{DatabasePath: dbFile}
	return rebuildWith(ctx, imgs, src, dst, func(lc *layerCache) func(v1.Image) (v1.Image, error) {
		return func(img v1.Image) (v1.Image, error) { return replaceDatabase(img, data) }
	}, holder)
}

func replaceDatabase(img v1.Image, data []byte) (v1.Image, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading image config: %w", err)
	}
	db := cf.Config.Labels[LabelDatabase]
	if db == "" {
		return nil, fmt.Errorf("not a legacy sqlite catalog image: label %s is not set", LabelDatabase)
	}
	mt, err := img.MediaType()
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "airlock-db-layer-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	clean := path.Clean("/" + db)
	if err := os.WriteFile(filepath.Join(tmp, filepath.Base(clean)), data, 0o644); err != nil {
		return nil, err
	}
	tarData, err := tarDir(tmp, path.Dir(clean)[1:])
	if err != nil {
		return nil, err
	}
	lmt := layerMediaType(mt)
	l, err := bytesLayer(tarData, lmt)
	if err != nil {
		return nil, err
	}
	return mutate.Append(img, mutate.Addendum{Layer: l, MediaType: lmt, History: v1.History{CreatedBy: "airlock catalog rebuild: pruned " + clean, Comment: "airlock"}})
}
