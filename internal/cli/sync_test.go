package cli

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blang/semver/v4"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/operator-framework/operator-registry/alpha/declcfg"

	"github.com/airlock-mirror/airlock/internal/audit"
	"github.com/airlock-mirror/airlock/internal/catalog"
	"github.com/airlock-mirror/airlock/internal/catalogimage"
	"github.com/airlock-mirror/airlock/internal/engine"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/registry"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

// TestSyncMirrorsWhatUpstreamGainsAndSurvivesAnOutage runs the sync loop
// for three runs against an upstream catalog: after run 1 the catalog gains
// a bundle (its new head) and the upstream goes down; run 2 fails (the
// loop goes on); run 3 mirrors exactly the new bundle's images.
func TestSyncMirrorsWhatUpstreamGainsAndSurvivesAnOutage(t *testing.T) {
	ctx := context.Background()
	var down atomic.Bool
	src := regtest.Start(t, regtest.WithWrap(func(_ *registry.Server, next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if down.Load() {
				http.Error(w, "upstream down for maintenance", http.StatusServiceUnavailable)
				return
			}
			next.ServeHTTP(w, r)
		})
	}))
	dst := regtest.Start(t)

	full, err := catalog.LoadDir(ctx, filepath.Join(sharedCatalogs(t), "community-operators-prod-v4.18", "ecr-secret-operator"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := synth.PushCatalogImages(src.Host, full.Config, 128, src.Transport, nil); err != nil {
		t.Fatal(err)
	}
	infos, err := full.Bundles(catalog.Selector{})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(infos, func(i, j int) bool { return semver.MustParse(infos[i].Version).LT(semver.MustParse(infos[j].Version)) })
	newest, oldest := infos[len(infos)-1], infos[0]
	before := withoutBundle(full.Config, newest.Name)

	eng, err := engine.New(engine.Options{Transport: src.Transport})
	if err != nil {
		t.Fatal(err)
	}
	base, _ := synth.Index(31337, []string{"linux/amd64"}, synth.WithLayerSize(128))
	baseRef := ref.MustParse(src.Host + "/operator-framework/opm:v1")
	if err := eng.WriteIndex(ctx, baseRef, base); err != nil {
		t.Fatal(err)
	}
	catRef := ref.MustParse(src.Host + "/redhat/community-operator-index:v4.18")
	build := func(cfg *declcfg.DeclarativeConfig) {
		if _, err := catalogimage.Build(ctx, eng, baseRef, &catalog.Catalog{Config: cfg, Format: catalog.FormatFBC}, catRef); err != nil {
			t.Fatal(err)
		}
	}
	build(before)

	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "imageset.yaml")
	os.WriteFile(cfgFile, []byte(fmt.Sprintf(`apiVersion: mirror.openshift.io/v2alpha1
kind: ImageSetConfiguration
mirror:
  operators:
  - catalog: %s
    packages:
    - name: ecr-secret-operator
      minVersion: %s
`, catRef, oldest.Version)), 0o644)

	// What the new bundle brings that the mirror lacks: its images minus
	// those of the bundles already there.
	had := map[string]bool{}
	var newImages []string
	for _, b := range full.Config.Bundles {
		imgs := []string{b.Image}
		for _, ri := range b.RelatedImages {
			imgs = append(imgs, ri.Image)
		}
		for _, i := range imgs {
			if b.Name != newest.Name {
				had[i] = true
			} else {
				newImages = append(newImages, i)
			}
		}
	}
	var want []string
	for _, i := range newImages {
		if !had[i] && !slices.Contains(want, digestIn(t, src, i)) {
			want = append(want, digestIn(t, src, i))
		}
	}
	if len(want) == 0 {
		t.Fatal("fixture: the new bundle brings nothing new")
	}

	var out, errOut bytes.Buffer
	o := &SyncOptions{
		MirrorOptions: MirrorOptions{streams: IOStreams{Out: &out, ErrOut: &errOut}, ParallelImages: 4, ParallelLayers: 5, RetryTimes: 0,
			Config: cfgFile, Workspace: "file://" + filepath.Join(dir, "ws")},
		Every: time.Millisecond, MaxRuns: 3, Attempts: 1, Backoff: time.Millisecond, Grace: time.Minute,
	}
	o.Insecure = true
	o.args = []string{"docker://" + dst.Host + "/mirror"}
	o.argv = append([]string{"airlock sync"}, o.args...)
	o.afterRun = func(run int) {
		switch run {
		case 1:
			build(full.Config)
			down.Store(true)
		case 2:
			down.Store(false)
		}
	}
	if err := o.Complete(); err != nil {
		t.Fatal(err)
	}
	if err := o.Run(ctx); err != nil {
		t.Fatalf("%v\n%s%s", err, out.String(), errOut.String())
	}

	recs, err := audit.ReadFile(filepath.Join(dir, "ws", "working-dir", audit.FileName))
	if err != nil || len(recs) != 3 {
		t.Fatalf("%d records, %v\n%s", len(recs), err, errOut.String())
	}
	if recs[0].Result != "ok" || recs[1].Result != "failed" || recs[2].Result != "ok" {
		t.Fatalf("results %s %s %s", recs[0].Result, recs[1].Result, recs[2].Result)
	}
	var got []string
	for _, a := range recs[2].Added {
		r := ref.MustParse(a)
		got = append(got, r.Digest)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("run 3 added %v, want exactly the new bundle's new images %v", recs[2].Added, want)
	}
	// The registry keeps the same history.
	repo, _ := name.NewRepository(dst.Host+"/"+audit.DefaultRepo, name.Insecure)
	reg, err := audit.List(ctx, repo, remote.WithTransport(dst.Transport))
	if err != nil || len(reg) != 3 || reg[1].Result != "failed" {
		t.Errorf("registry history: %d records, %v", len(reg), err)
	}
	if len(recs[0].Added) == 0 || len(recs[1].Added) != 0 || len(recs[1].Failures) == 0 ||
		!strings.Contains(recs[1].Failures[0].Error, "503") {
		t.Errorf("run 1 added %d, run 2 added %d with failures %+v", len(recs[0].Added), len(recs[1].Added), recs[1].Failures)
	}
}

func withoutBundle(cfg *declcfg.DeclarativeConfig, bundle string) *declcfg.DeclarativeConfig {
	out := *cfg
	out.Bundles = nil
	for _, b := range cfg.Bundles {
		if b.Name != bundle {
			out.Bundles = append(out.Bundles, b)
		}
	}
	out.Channels = nil
	for _, ch := range cfg.Channels {
		c := ch
		c.Entries = nil
		for _, e := range ch.Entries {
			if e.Name != bundle {
				c.Entries = append(c.Entries, e)
			}
		}
		out.Channels = append(out.Channels, c)
	}
	return &out
}

func digestIn(t *testing.T, reg *regtest.Registry, image string) string {
	t.Helper()
	r := ref.MustParse(image)
	if r.Digest != "" {
		return r.Digest
	}
	return reg.DigestOf(t, image)
}
