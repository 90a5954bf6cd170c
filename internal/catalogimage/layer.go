// Package catalogimage builds operator catalog images: it rebuilds an
// existing catalog image around a filtered file-based catalog (keeping
// every platform of the source) and builds a new one from an FBC directory
// on an opm base image.
//
// The catalog content is added as new top layers — a whiteout layer that
// hides the old catalog directory and pre-built cache, then a /configs
// layer — so the base layers are reused untouched (at a registry they are
// mounted, not copied) and only the catalog bytes travel.
//
// The pre-built opm cache is NOT regenerated: the image's command loses
// --cache-dir, and the old cache directory is whited out, so `opm serve`
// builds its cache from /configs at pod start. A cache is an opm-version
// specific file whose integrity digest covers the catalog; one computed by
// airlock's operator-registry version for a base image carrying another
// opm would make `opm serve --cache-enforce-integrity` (the default with
// --cache-dir) exit, and a stale one crash-loops the catalog pod. oc-mirror
// took the same decision (PR #899 after #613 was reverted). The cost is a
// few seconds of cache building at pod start on a catalog that filtering
// already made small.
package catalogimage

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/airlock-mirror/airlock/internal/catalog"
)

// ConfigsDir is where the FBC goes in every image airlock builds, the
// location opm's generated Dockerfiles use.
const ConfigsDir = "/configs"

// LabelConfigs and LabelDatabase are the catalog location labels.
const (
	LabelConfigs  = catalog.LabelConfigs
	LabelDatabase = catalog.LabelDatabase
)

// epoch is the timestamp of every file airlock writes into a layer, so the
// same catalog always gives the same layer digest and a re-run pushes
// nothing new.
var epoch = time.Unix(0, 0).UTC()

// configsLayer writes c as FBC JSON (one directory per package) and packs
// it under ConfigsDir, owned by root, with fixed timestamps.
func configsLayer(c *catalog.Catalog, mt types.MediaType) (v1.Layer, error) {
	tmp, err := os.MkdirTemp("", "airlock-catalog-layer-*")
	if err != nil {
		return nil, fmt.Errorf("creating temporary directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "configs")
	if err := catalog.WriteDir(c, dir, "json"); err != nil {
		return nil, err
	}
	data, err := tarDir(dir, strings.TrimPrefix(ConfigsDir, "/"))
	if err != nil {
		return nil, fmt.Errorf("packing catalog layer: %w", err)
	}
	return bytesLayer(data, mt)
}

// tarDir packs dir as prefix/..., sorted, root-owned, timestamps at epoch.
func tarDir(dir, prefix string) ([]byte, error) {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		paths = append(paths, p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return nil, err
		}
		name := prefix
		if rel == "." && (prefix == "" || prefix == ".") {
			continue // the root itself: nothing to create
		}
		if rel != "." {
			name = path.Join(prefix, filepath.ToSlash(rel))
		}
		st, err := os.Lstat(p)
		if err != nil {
			return nil, err
		}
		hdr := &tar.Header{Name: name, ModTime: epoch, Uid: 0, Gid: 0, Format: tar.FormatPAX}
		switch {
		case st.IsDir():
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, name+"/", 0o755
		case st.Mode().IsRegular():
			hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, 0o644, st.Size()
		default:
			return nil, fmt.Errorf("%s: not a regular file or directory", p)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if hdr.Typeflag == tar.TypeReg {
			f, err := os.Open(p)
			if err != nil {
				return nil, err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			if err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// whiteoutLayer hides each of paths (absolute, e.g. "/configs",
// "/tmp/cache") from the layers below, with OCI/AUFS ".wh." entries.
func whiteoutLayer(paths []string, mt types.MediaType) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	seen := map[string]bool{}
	for _, p := range paths {
		clean := strings.TrimPrefix(path.Clean("/"+p), "/")
		if clean == "" || seen[clean] {
			continue
		}
		seen[clean] = true
		dir, base := path.Split(clean)
		hdr := &tar.Header{Name: dir + ".wh." + base, Typeflag: tar.TypeReg, Mode: 0o644, ModTime: epoch, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return bytesLayer(buf.Bytes(), mt)
}

// bytesLayer wraps an uncompressed tar as a gzip layer of media type mt.
func bytesLayer(data []byte, mt types.MediaType) (v1.Layer, error) {
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(mt))
}

// layerMediaType picks the layer media type that matches the manifest's
// family: mixing OCI layers into a Docker schema 2 manifest is rejected by
// some registries.
func layerMediaType(manifestMT types.MediaType) types.MediaType {
	if manifestMT == types.DockerManifestSchema2 {
		return types.DockerLayer
	}
	return types.OCILayer
}

// checkCtx is a cheap cancellation point between platforms.
func checkCtx(ctx context.Context) error { return ctx.Err() }
