package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"
)

// emptyConfig is the OCI empty descriptor's content, the config of an
// artifact that has none.
var emptyConfig = []byte("{}")

const emptyMediaType types.MediaType = "application/vnd.oci.empty.v1+json"

// rawManifest is a manifest pushed as is.
type rawManifest struct {
	data []byte
	mt   types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.data, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }

// Push stores r in repo as an OCI artifact tagged with the record's ID.
func Push(ctx context.Context, repo name.Repository, r Record, opts ...remote.Option) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	opts = append(opts, remote.WithContext(ctx))
	layer := static.NewLayer(data, types.MediaType(ArtifactType))
	cfg := static.NewLayer(emptyConfig, emptyMediaType)
	for _, l := range []v1.Layer{cfg, layer} {
		if err := remote.WriteLayer(repo, l, opts...); err != nil {
			return fmt.Errorf("writing run record to %s: %w", repo, err)
		}
	}
	ld, _ := layer.Digest()
	cd, _ := cfg.Digest()
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: emptyMediaType, Digest: cd, Size: int64(len(emptyConfig))},
		Layers:        []v1.Descriptor{{MediaType: types.MediaType(ArtifactType), Digest: ld, Size: int64(len(data))}},
		Annotations:   map[string]string{"org.opencontainers.image.created": r.Time.Format("2006-01-02T15:04:05Z")},
	}
	// artifactType is not in go-containerregistry's v1.Manifest.
	raw, err := json.Marshal(struct {
		v1.Manifest
		ArtifactType string `json:"artifactType"`
	}{m, ArtifactType})
	if err != nil {
		return err
	}
	if err := remote.Put(repo.Tag(r.ID), rawManifest{raw, types.OCIManifestSchema1}, opts...); err != nil {
		return fmt.Errorf("writing run record to %s: %w", repo, err)
	}
	return nil
}

// List reads every record in repo, oldest first; a repository that does
// not exist yet holds none.
func List(ctx context.Context, repo name.Repository, opts ...remote.Option) ([]Record, error) {
	opts = append(opts, remote.WithContext(ctx))
	tags, err := remote.List(repo, opts...)
	if err != nil {
		var te *transport.Error
		if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
			return nil, nil
		}
		return nil, fmt.Errorf("listing run records in %s: %w", repo, err)
	}
	sort.Strings(tags)
	out := make([]Record, len(tags))
	ok := make([]bool, len(tags))
	var mu sync.Mutex
	var bad []string
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, t := range tags {
		g.Go(func() error {
			rec, err := fetch(gctx, repo.Tag(t), opts)
			if err != nil {
				mu.Lock()
				bad = append(bad, fmt.Sprintf("%s: %v", t, err))
				mu.Unlock()
				return nil
			}
			out[i], ok[i] = rec, true
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	recs := out[:0]
	for i := range out {
		if ok[i] {
			recs = append(recs, out[i])
		}
	}
	Sort(recs)
	if len(bad) > 0 {
		sort.Strings(bad)
		return recs, fmt.Errorf("unreadable run records in %s: %v", repo, bad)
	}
	return recs, nil
}

func fetch(ctx context.Context, t name.Tag, opts []remote.Option) (Record, error) {
	img, err := remote.Image(t, opts...)
	if err != nil {
		return Record{}, err
	}
	layers, err := img.Layers()
	if err != nil {
		return Record{}, err
	}
	for _, l := range layers {
		mt, _ := l.MediaType()
		if mt != types.MediaType(ArtifactType) {
			continue
		}
		rc, err := l.Compressed()
		if err != nil {
			return Record{}, err
		}
		defer rc.Close()
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(rc); err != nil {
			return Record{}, err
		}
		return Decode(&buf)
	}
	return Record{}, fmt.Errorf("no %s layer", ArtifactType)
}

// ListRegistry reads the records of repo on registry through rt (the
// in-process transport of `registry serve`).
func ListRegistry(ctx context.Context, rt http.RoundTripper, registry, repo string) ([]Record, error) {
	r, err := name.NewRepository(registry+"/"+repo, name.Insecure)
	if err != nil {
		return nil, err
	}
	return List(ctx, r, remote.WithTransport(rt))
}
