package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
)

// writeStoredManifest puts a manifest into a filesystem registry root the
// way distribution stores one pushed by digest (the blob, and the
// repository's revision link to it), without its layers: a GET by digest
// serves it, which is all planning reads. Pushing 200,000 layer blobs
// through the API first would make the benchmark's setup take minutes.
func writeStoredManifest(root, repo string, data []byte) (string, error) {
	sum := sha256.Sum256(data)
	h := hex.EncodeToString(sum[:])
	v2 := filepath.Join(root, "docker", "registry", "v2")
	blob := filepath.Join(v2, "blobs", "sha256", h[:2], h, "data")
	link := filepath.Join(v2, "repositories", repo, "_manifests", "revisions", "sha256", h, "link")
	for _, f := range []struct {
		path string
		data []byte
	}{{blob, data}, {link, []byte("sha256:" + h)}} {
		if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(f.path, f.data, 0o644); err != nil {
			return "", err
		}
	}
	return "sha256:" + h, nil
}

// syntheticCatalogPlan stores images image manifests of layers layers each
// (all layer digests distinct: images*layers blobs) in 100 repositories of
// reg and returns the plan mirroring each by digest to dstHost.
func syntheticCatalogPlan(tb testing.TB, reg *regtest.Registry, dstHost string, images, layers int) plan.Plan {
	tb.Helper()
	type desc struct {
		MediaType string `json:"mediaType"`
		Size      int64  `json:"size"`
		Digest    string `json:"digest"`
	}
	var p plan.Plan
	for i := range images {
		m := struct {
			SchemaVersion int    `json:"schemaVersion"`
			MediaType     string `json:"mediaType"`
			Config        desc   `json:"config"`
			Layers        []desc `json:"layers"`
		}{SchemaVersion: 2, MediaType: "application/vnd.docker.distribution.manifest.v2+json"}
		fake := func(k int) string {
			s := sha256.Sum256(fmt.Appendf(nil, "image %d blob %d", i, k))
			return "sha256:" + hex.EncodeToString(s[:])
		}
		m.Config = desc{"application/vnd.docker.container.image.v1+json", 1500, fake(-1)}
		for k := range layers - 1 { // the config is the image's other blob
			m.Layers = append(m.Layers, desc{"application/vnd.docker.image.rootfs.diff.tar.gzip", int64(4096 + (i*31+k*17)%60000), fake(k)})
		}
		data, err := json.Marshal(m)
		if err != nil {
			tb.Fatal(err)
		}
		repo := fmt.Sprintf("ns%d/op%d", i%7, i%100)
		d, err := writeStoredManifest(reg.Root, repo, data)
		if err != nil {
			tb.Fatal(err)
		}
		src := mustRef(tb, fmt.Sprintf("%s/%s@%s", reg.Host, repo, d))
		p.Add(plan.Item{Source: src, Dests: []ref.Ref{mustRef(tb, fmt.Sprintf("%s/mirror/%s:v%d", dstHost, repo, i))}})
	}
	return p
}

// BenchmarkPlan10kImages resolves a catalog-scale plan: 10,000 images with
// 20 blobs each (200,000 blobs) read from the in-process registry, every
// manifest fetched, verified and parsed and every size summed, as a dry run
// does before copying. Time and allocations per op are the planning
// overhead of one such run; `make bench` reports the process's peak RSS.
func BenchmarkPlan10kImages(b *testing.B) {
	src := regtest.Start(b)
	p := syntheticCatalogPlan(b, src, "127.0.0.1:1", 10000, 20)
	b.ReportAllocs()
	for b.Loop() {
		e := newTestEngine(b, nil, func(o *Options) { o.DryRun = true })
		rep, err := e.Run(context.Background(), p)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Items[0].Status != StatusPlanned || rep.Items[0].Size < 20*4096 {
			b.Fatalf("first item %+v: want planned with 20 blobs", rep.Items[0])
		}
	}
}

// TestSyntheticCatalogPlan keeps the benchmark's fixture honest at a small
// size: every stored manifest resolves through the registry.
func TestSyntheticCatalogPlan(t *testing.T) {
	src := regtest.Start(t)
	p := syntheticCatalogPlan(t, src, "127.0.0.1:1", 50, 20)
	rep, err := newTestEngine(t, nil, func(o *Options) { o.DryRun = true }).Run(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range rep.Items {
		if it.Status != StatusPlanned || it.Size < 20*4096 {
			t.Fatalf("%s: %s, size %d", it.Source, it.Status, it.Size)
		}
	}
}
