package webui_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"runtime"
	"sort"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/operator-framework/operator-registry/alpha/declcfg"

	"github.com/airlock-mirror/airlock/internal/audit"
	"github.com/airlock-mirror/airlock/internal/catalog"
	"github.com/airlock-mirror/airlock/internal/catalogimage"
	"github.com/airlock-mirror/airlock/internal/engine"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/registry"
	"github.com/airlock-mirror/airlock/internal/regscan"
	"github.com/airlock-mirror/airlock/internal/release/releasetest"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
	"github.com/airlock-mirror/airlock/internal/webui"
)

const (
	catalogRef  = "redhat/community-operator-index:v4.18"
	signedRepo  = "app/web"
	partialRepo = "app/multi"
)

// mirror is a registry filled as a mirror run leaves one — a real catalog
// (two community-operators packages over synthetic images), a synthetic
// release around the real 4.12.0 payload files, additional images — with
// two defects a user must see: one related image missing, one manifest list
// missing a child; and one image signed (a cosign tag and an OCI referrer).
type mirror struct {
	reg *regtest.Registry
	ui  *webui.UI

	cfg            *declcfg.DeclarativeConfig
	missingRelated string // mirror reference of the related image not pushed
	missingPackage string // its package
	signedDigest   string
	partialDigest  string
	release        *releasetest.Release
	components     int
	record         audit.Record
}

func communityDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "testdata", "catalogs", "community-operators-prod-v4.18")
}

func newMirror(t testing.TB, opts ...regtest.Option) *mirror {
	t.Helper()
	ctx := context.Background()
	m := &mirror{components: 8}
	opts = append(opts, regtest.WithServerOptions(func(o *registry.Options) {
		o.UI = func(s *registry.Server) http.Handler {
			ui, err := webui.New(webui.Options{Scanner: &regscan.Scanner{Transport: s.InProcessTransport()}, Refresh: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			m.ui = ui
			return ui
		}
	}))
	m.reg = regtest.Start(t, opts...)
	reg := m.reg
	rt := remote.WithTransport(reg.Transport)
	auth := remote.WithAuthFromKeychain(reg.Keychain)
	tr := authTransport{reg}

	// The catalog.
	cfg := &declcfg.DeclarativeConfig{}
	for _, p := range []string{"ecr-secret-operator", "kepler-operator"} {
		c, err := catalog.LoadDir(ctx, filepath.Join(communityDir(), p))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Merge(c.Config)
	}
	skip := ""
	for _, b := range cfg.Bundles {
		if b.Package != "ecr-secret-operator" {
			continue
		}
		var rel []string
		for _, ri := range b.RelatedImages {
			if ri.Image != b.Image && ri.Image != "" {
				rel = append(rel, ri.Image)
			}
		}
		sort.Strings(rel)
		if len(rel) > 0 {
			skip = rel[0]
			break
		}
	}
	if skip == "" {
		t.Fatal("fixture: no related image in ecr-secret-operator")
	}
	repl, _, err := synth.PushCatalogImages(reg.Host, cfg, 256, tr, map[string]bool{skip: true})
	if err != nil {
		t.Fatal(err)
	}
	m.cfg, m.missingRelated, m.missingPackage = cfg, repl[skip], "ecr-secret-operator"
	eng, err := engine.New(engine.Options{Transport: reg.Transport, Keychain: reg.Keychain})
	if err != nil {
		t.Fatal(err)
	}
	base, err := synth.Index(424242, []string{"linux/amd64", "linux/arm64"}, synth.WithLayerSize(256))
	if err != nil {
		t.Fatal(err)
	}
	baseRef := ref.MustParse(reg.Host + "/operator-framework/opm:latest")
	if err := eng.WriteIndex(ctx, baseRef, base); err != nil {
		t.Fatal(err)
	}
	if _, err := catalogimage.Build(ctx, eng, baseRef, &catalog.Catalog{Config: cfg, Format: catalog.FormatFBC}, ref.MustParse(reg.Host+"/"+catalogRef)); err != nil {
		t.Fatal(err)
	}

	// The release.
	m.release, err = releasetest.Build(reg.Host, releasetest.Options{Components: m.components, Remote: []remote.Option{rt, auth}})
	if err != nil {
		t.Fatal(err)
	}

	// A signed image: a cosign signature tag and an SBOM referrer.
	img, err := synth.Image(7, synth.WithLayerSize(512))
	if err != nil {
		t.Fatal(err)
	}
	if m.signedDigest, err = synth.Push(img, reg.Ref(signedRepo+":1.0"), rt, auth); err != nil {
		t.Fatal(err)
	}
	sig, _ := synth.Image(8, synth.WithLayerSize(64))
	if _, err := synth.Push(sig, reg.Ref(signedRepo+":sha256-"+m.signedDigest[len("sha256:"):]+".sig"), rt, auth); err != nil {
		t.Fatal(err)
	}
	pushReferrer(t, reg, signedRepo, img, "application/spdx+json")

	// A manifest list whose arm64 child never arrived.
	idx, err := synth.Index(9, []string{"linux/amd64", "linux/arm64"}, synth.WithLayerSize(256))
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	amd, _ := idx.Image(im.Manifests[0].Digest)
	if _, err := synth.Push(amd, reg.Ref(partialRepo), rt, auth); err != nil {
		t.Fatal(err)
	}
	raw, _ := idx.RawManifest()
	mt, _ := idx.MediaType()
	r, _ := name.ParseReference(reg.Ref(partialRepo+":2.0"), name.Insecure)
	if err := remote.Put(r, rawPut{raw, mt}, rt, auth); err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	m.partialDigest = d.String()

	// One run record.
	m.record = audit.New("mirror", []string{"mirror", "-c", "imageset.yaml", "--password", "s3cret", "docker://" + reg.Host})
	m.record.Images, m.record.Bytes = 42, 4096
	m.record.Failures = []audit.Failure{{Image: "quay.io/x/y:1", Error: "manifest unknown"}}
	m.record.Finish(nil)
	hr, _ := name.NewRepository(reg.Host+"/"+audit.DefaultRepo, name.Insecure)
	if err := audit.Push(ctx, hr, m.record, rt, auth); err != nil {
		t.Fatal(err)
	}

	if err := m.ui.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	return m
}

// bundleCounts returns the catalog's bundles and related images (bundle
// image excluded, one per bundle that lists it, as the view counts them)
// and how many of those name the missing image.
func (m *mirror) bundleCounts() (bundles, related, missing int) {
	for _, b := range m.cfg.Bundles {
		bundles++
		for _, ri := range b.RelatedImages {
			if ri.Image != "" && ri.Image != b.Image {
				related++
				if ri.Image == m.missingRelated {
					missing++
				}
			}
		}
	}
	return
}

type rawPut struct {
	data []byte
	mt   types.MediaType
}

func (r rawPut) RawManifest() ([]byte, error)        { return r.data, nil }
func (r rawPut) MediaType() (types.MediaType, error) { return r.mt, nil }

// pushReferrer attaches an artifact of artifactType to subject in repo.
func pushReferrer(t testing.TB, reg *regtest.Registry, repo string, subject v1.Image, artifactType string) {
	t.Helper()
	rn, _ := name.NewRepository(reg.Ref(repo), name.Insecure)
	opts := []remote.Option{remote.WithTransport(reg.Transport), remote.WithAuthFromKeychain(reg.Keychain)}
	layer := static.NewLayer([]byte(`{"spdxVersion":"SPDX-2.3"}`), types.MediaType(artifactType))
	cfg := static.NewLayer([]byte("{}"), "application/vnd.oci.empty.v1+json")
	for _, l := range []v1.Layer{cfg, layer} {
		if err := remote.WriteLayer(rn, l, opts...); err != nil {
			t.Fatal(err)
		}
	}
	sd, _ := subject.Digest()
	ss, _ := subject.Size()
	smt, _ := subject.MediaType()
	ld, _ := layer.Digest()
	ls, _ := layer.Size()
	cd, _ := cfg.Digest()
	man := map[string]any{
		"schemaVersion": 2,
		"mediaType":     types.OCIManifestSchema1,
		"artifactType":  artifactType,
		"config":        map[string]any{"mediaType": "application/vnd.oci.empty.v1+json", "digest": cd.String(), "size": 2},
		"layers":        []any{map[string]any{"mediaType": artifactType, "digest": ld.String(), "size": ls}},
		"subject":       map[string]any{"mediaType": smt, "digest": sd.String(), "size": ss},
	}
	raw, _ := json.Marshal(man)
	d, _, _ := v1.SHA256(bytes.NewReader(raw))
	if err := remote.Put(rn.Digest(d.String()), rawPut{raw, types.OCIManifestSchema1}, opts...); err != nil {
		t.Fatal(err)
	}
}

// authTransport adds the registry's credentials to every request.
type authTransport struct{ reg *regtest.Registry }

func (a authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if a.reg.Username != "" {
		r = r.Clone(r.Context())
		r.SetBasicAuth(a.reg.Username, a.reg.Password)
	}
	return a.reg.Transport.RoundTrip(r)
}

func regtestTLSAuth() []regtest.Option {
	return []regtest.Option{regtest.WithTLS(), regtest.WithAuth("admin", "mirror-pass")}
}
