package catalogimage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/airlock-mirror/airlock/internal/catalog"
	"github.com/airlock-mirror/airlock/internal/ref"
)

// Images is the image access catalogimage needs; *engine.Engine provides
// it on every transport (docker://, file://, oci://).
type Images interface {
	Resolve(ctx context.Context, r ref.Ref) (v1.Descriptor, error)
	Image(ctx context.Context, r ref.Ref) (v1.Image, error)
	Index(ctx context.Context, r ref.Ref) (v1.ImageIndex, error)
	WriteImage(ctx context.Context, r ref.Ref, img v1.Image) error
	WriteIndex(ctx context.Context, r ref.Ref, idx v1.ImageIndex) error
}

// Result describes a pushed catalog image.
type Result struct {
	Ref    ref.Ref // where it was written
	Digest string  // digest of the top-level manifest or index
	// Platforms lists the platforms written ("linux/amd64", ...).
	Platforms []string
	// Dropped lists index children left out (attestations and other
	// non-platform manifests, which refer to the old image digests).
	Dropped []string
	// Notes are things the caller should tell the user (set by callers
	// that prune, e.g. bundles kept beyond a selection).
	Notes []string
}

// DefaultCacheDir is the cache location of opm-generated catalog images.
const DefaultCacheDir = "/tmp/cache"

// Rebuild writes to dst a copy of the catalog image src whose catalog is
// filtered, for every platform of src (multi-arch kept; each platform keeps
// its own opm binary and base layers):
//
//   - a whiteout layer hides the old catalog directory (the configs label,
//     or the database's directory) and the pre-built cache;
//   - a layer with filtered as FBC JSON under /configs, owned by root;
//   - label operators.operatorframework.io.index.configs.v1=/configs (the
//     database label is removed);
//   - the command loses every cache flag and serves /configs (see the
//     package comment for why the cache is not regenerated).
//
// A legacy sqlite catalog image is refused (ErrSQLite): the opm inside old
// index images predates file-based catalogs and could not serve /configs.
// Use ReplaceDatabase with a pruned index.db to keep the sqlite format, or
// Build on a current opm base to convert it.
func Rebuild(ctx context.Context, imgs Images, src ref.Ref, filtered *catalog.Catalog, dst ref.Ref) (*Result, error) {
	return rebuildWith(ctx, imgs, src, dst, func(lc *layerCache) func(v1.Image) (v1.Image, error) {
		return func(img v1.Image) (v1.Image, error) { return rebuildImage(img, lc) }
	}, filtered)
}

// ErrSQLite is returned by Rebuild for a legacy sqlite catalog image.
var ErrSQLite = errors.New("legacy sqlite catalog image: its opm cannot serve a file-based catalog; keep sqlite with a pruned index.db (ReplaceDatabase) or convert with --convert-to-fbc --base OPM_IMAGE")

func rebuildWith(ctx context.Context, imgs Images, src, dst ref.Ref, mk func(*layerCache) func(v1.Image) (v1.Image, error), filtered *catalog.Catalog) (*Result, error) {
	if filtered == nil || (filtered.Config == nil && filtered.DatabasePath == "") {
		return nil, fmt.Errorf("rebuilding %s: no catalog content given", src)
	}
	if !dst.HasTagOrDigest() || dst.Digest != "" {
		return nil, fmt.Errorf("rebuilding %s: destination %s needs a tag (the rebuilt image has a new digest)", src, dst)
	}
	return transform(ctx, imgs, src, dst, mk(newLayerCache(filtered)), "rebuilding "+src.String())
}

// transform reads src (an image or an index), applies mutateImage to every
// platform image (nested indexes included), writes the result to dst and
// says what it wrote. what starts every error message.
func transform(ctx context.Context, imgs Images, src, dst ref.Ref, mutateImage func(v1.Image) (v1.Image, error), what string) (*Result, error) {
	desc, err := imgs.Resolve(ctx, src)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	res := &Result{Ref: dst}
	if desc.MediaType.IsIndex() {
		idx, err := imgs.Index(ctx, src)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out, err := rebuildIndex(ctx, idx, mutateImage, res)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		if err := imgs.WriteIndex(ctx, dst, out); err != nil {
			return nil, err
		}
		d, err := out.Digest()
		if err != nil {
			return nil, err
		}
		res.Digest = d.String()
		return res, nil
	}
	img, err := imgs.Image(ctx, src)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	out, err := mutateImage(img)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := imgs.WriteImage(ctx, dst, out); err != nil {
		return nil, err
	}
	d, err := out.Digest()
	if err != nil {
		return nil, err
	}
	res.Digest = d.String()
	if cf, err := out.ConfigFile(); err == nil {
		res.Platforms = []string{platformString(cf.OS, cf.Architecture, cf.Variant)}
	}
	return res, nil
}

// rebuildIndex applies mutateImage to every platform image of idx (nested
// indexes included) and returns a new index of the same media type with
// the same platform descriptors and annotations.
func rebuildIndex(ctx context.Context, idx v1.ImageIndex, mutateImage func(v1.Image) (v1.Image, error), res *Result) (v1.ImageIndex, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("reading index: %w", err)
	}
	mt, err := idx.MediaType()
	if err != nil {
		return nil, err
	}
	out := mutate.IndexMediaType(empty.Index, mt)
	if len(im.Annotations) > 0 {
		out = mutate.Annotations(out, im.Annotations).(v1.ImageIndex)
	}
	var adds []mutate.IndexAddendum
	for _, d := range im.Manifests {
		if err := checkCtx(ctx); err != nil {
			return nil, err
		}
		switch {
		case d.MediaType.IsIndex():
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return nil, fmt.Errorf("reading nested index %s: %w", d.Digest, err)
			}
			nc, err := rebuildIndex(ctx, child, mutateImage, res)
			if err != nil {
				return nil, err
			}
			adds = append(adds, mutate.IndexAddendum{Add: nc, Descriptor: v1.Descriptor{MediaType: d.MediaType, Platform: d.Platform, Annotations: d.Annotations}})
		case d.MediaType.IsImage() && !isUnknownPlatform(d.Platform):
			child, err := idx.Image(d.Digest)
			if err != nil {
				return nil, fmt.Errorf("reading platform image %s: %w", d.Digest, err)
			}
			nc, err := mutateImage(child)
			if err != nil {
				return nil, fmt.Errorf("platform %s: %w", descPlatform(d), err)
			}
			adds = append(adds, mutate.IndexAddendum{Add: nc, Descriptor: v1.Descriptor{MediaType: d.MediaType, Platform: d.Platform, Annotations: d.Annotations}})
			res.Platforms = append(res.Platforms, descPlatform(d))
		default:
			// Build attestations ("unknown/unknown") and artifacts describe
			// the old image digests; carried over they would be false.
			slog.Info("catalog rebuild: leaving out index entry that is not a platform image", "digest", d.Digest.String(), "mediaType", string(d.MediaType))
			res.Dropped = append(res.Dropped, d.Digest.String())
		}
	}
	if len(adds) == 0 {
		return nil, fmt.Errorf("index has no platform images")
	}
	return mutate.AppendManifests(out, adds...), nil
}

func isUnknownPlatform(p *v1.Platform) bool {
	return p != nil && p.OS == "unknown" && p.Architecture == "unknown"
}

func descPlatform(d v1.Descriptor) string {
	if d.Platform == nil {
		return "unknown"
	}
	return platformString(d.Platform.OS, d.Platform.Architecture, d.Platform.Variant)
}

func platformString(os, arch, variant string) string {
	s := os + "/" + arch
	if variant != "" {
		s += "/" + variant
	}
	return s
}

// layerCache holds the new layers so that platforms sharing a layer media
// type (all of them, in practice) share the same layer objects: built,
// compressed and uploaded once.
type layerCache struct {
	filtered  *catalog.Catalog
	configs   map[types.MediaType]v1.Layer
	whiteouts map[string]v1.Layer // media type + hidden paths
}

func newLayerCache(filtered *catalog.Catalog) *layerCache {
	return &layerCache{filtered: filtered, configs: map[types.MediaType]v1.Layer{}, whiteouts: map[string]v1.Layer{}}
}

func (lc *layerCache) configsLayer(mt types.MediaType) (v1.Layer, error) {
	if l, ok := lc.configs[mt]; ok {
		return l, nil
	}
	l, err := configsLayer(lc.filtered, mt)
	if err != nil {
		return nil, err
	}
	lc.configs[mt] = l
	return l, nil
}

func (lc *layerCache) whiteoutLayer(hide []string, mt types.MediaType) (v1.Layer, error) {
	key := string(mt) + "\x00" + strings.Join(hide, "\x00")
	if l, ok := lc.whiteouts[key]; ok {
		return l, nil
	}
	l, err := whiteoutLayer(hide, mt)
	if err != nil {
		return nil, err
	}
	lc.whiteouts[key] = l
	return l, nil
}

// rebuildImage replaces the catalog of one platform image.
func rebuildImage(img v1.Image, lc *layerCache) (v1.Image, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading image config: %w", err)
	}
	mt, err := img.MediaType()
	if err != nil {
		return nil, err
	}
	labels := cf.Config.Labels
	oldDir, db := labels[LabelConfigs], labels[LabelDatabase]
	if oldDir == "" && db == "" {
		return nil, fmt.Errorf("not an operator catalog image: neither label %s nor %s is set", LabelConfigs, LabelDatabase)
	}
	if oldDir == "" {
		return nil, ErrSQLite
	}
	hide := []string{ConfigsDir, DefaultCacheDir}
	if oldDir != "" {
		hide = append(hide, oldDir)
	}
	if db != "" {
		// The database's directory goes too: an opm finding both would
		// keep serving the unfiltered database.
		hide = append(hide, path.Dir(path.Clean("/"+db)))
	}
	hide = append(hide, cacheDirs(cf.Config.Cmd)...)
	hide = append(hide, cacheDirs(cf.Config.Entrypoint)...)
	hide = cleanPaths(hide)

	lmt := layerMediaType(mt)
	wl, err := lc.whiteoutLayer(hide, lmt)
	if err != nil {
		return nil, err
	}
	cl, err := lc.configsLayer(lmt)
	if err != nil {
		return nil, err
	}
	out, err := mutate.Append(img,
		mutate.Addendum{Layer: wl, MediaType: lmt, History: v1.History{CreatedBy: "airlock catalog rebuild: remove old catalog and cache " + strings.Join(hide, " "), Comment: "airlock"}},
		mutate.Addendum{Layer: cl, MediaType: lmt, History: v1.History{CreatedBy: "airlock catalog rebuild: add filtered catalog at " + ConfigsDir, Comment: "airlock"}},
	)
	if err != nil {
		return nil, fmt.Errorf("appending catalog layers: %w", err)
	}
	ncf, err := out.ConfigFile()
	if err != nil {
		return nil, err
	}
	ncf = ncf.DeepCopy()
	ncf.Config.Labels = map[string]string{}
	for k, v := range labels {
		ncf.Config.Labels[k] = v
	}
	delete(ncf.Config.Labels, LabelDatabase)
	ncf.Config.Labels[LabelConfigs] = ConfigsDir
	ncf.Config.Cmd = serveCommand(cf.Config.Entrypoint, cf.Config.Cmd)
	if len(cf.Config.Entrypoint) == 0 || db != "" {
		// sqlite images run "opm registry serve --database ..." or
		// "registry-server"; an FBC is served by "opm serve".
		ncf.Config.Entrypoint = []string{"/bin/opm"}
	}
	out, err = mutate.ConfigFile(out, ncf)
	if err != nil {
		return nil, fmt.Errorf("updating image config: %w", err)
	}
	return out, nil
}

// cleanPaths makes paths absolute and clean, sorted and unique, dropping
// "/" (hiding the root would hide the whole image).
func cleanPaths(ps []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range ps {
		c := path.Clean("/" + p)
		if c == "/" || seen[c] {
			continue
		}
		seen[c] = true
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// serveCommand is the new CMD: the original one with every cache flag
// removed and the catalog argument pointed at /configs; when the original
// does not run "serve <dir>", the standard ["serve", "/configs"].
func serveCommand(entrypoint, cmd []string) []string {
	if len(cmd) > 0 && cmd[0] == "serve" && len(entrypoint) > 0 {
		out := []string{"serve", ConfigsDir}
		skipNext := false
		for _, a := range cmd[2:] {
			if skipNext {
				skipNext = false
				continue
			}
			switch {
			case a == "--cache-dir":
				skipNext = true
			case strings.HasPrefix(a, "--cache-dir="), a == "--cache-only", strings.HasPrefix(a, "--cache-only="),
				a == "--cache-enforce-integrity", strings.HasPrefix(a, "--cache-enforce-integrity="):
			default:
				out = append(out, a)
			}
		}
		return out
	}
	return []string{"serve", ConfigsDir}
}

// cacheDirs returns the --cache-dir values of a command line.
func cacheDirs(args []string) []string {
	var out []string
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--cache-dir="); ok && v != "" {
			out = append(out, v)
		} else if a == "--cache-dir" && i+1 < len(args) {
			out = append(out, args[i+1])
		}
	}
	return out
}
