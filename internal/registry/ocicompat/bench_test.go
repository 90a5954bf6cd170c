package ocicompat_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/airlock-mirror/airlock/internal/registry"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
)

// BenchmarkReferrersList measures GET /v2/<name>/referrers/<digest> for a
// subject with 32 referrers (each listed entry costs a stat and a read).
func BenchmarkReferrersList(b *testing.B) {
	c := client{t: b, reg: regtest.Start(b)}
	const repo = "bench/referrers"
	subj, size := c.image(repo, "v1", "s")
	subject := v1.Descriptor{MediaType: v1.MediaTypeImageManifest, Digest: subj, Size: size}
	for i := range 32 {
		body := c.artifact(repo, subject, "application/vnd.example.sig", "", fmt.Sprint(i))
		c.pushManifest(repo, digest.FromBytes(body).String(), v1.MediaTypeImageManifest, body)
	}
	if _, idx := c.referrers(repo, subj, ""); len(idx.Manifests) != 32 {
		b.Fatalf("setup: %d referrers listed", len(idx.Manifests))
	}
	hc := c.reg.Client()
	b.ResetTimer()
	for b.Loop() {
		req, _ := c.reg.Request(http.MethodGet, "/v2/"+repo+"/referrers/"+subj.String(), nil)
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatal(resp.Status)
		}
	}
}

// BenchmarkManifestHead compares a manifest HEAD (what mirroring tools
// issue for every image before deciding to copy) on distribution alone and
// through the OCI layer, to show the layer's routing cost on requests it
// passes through.
func BenchmarkManifestHead(b *testing.B) {
	for _, plain := range []bool{true, false} {
		name := "ocicompat"
		if plain {
			name = "distribution"
		}
		b.Run(name, func(b *testing.B) {
			srv, err := registry.Start(context.Background(), registry.Options{
				Addr: "127.0.0.1:0", Root: b.TempDir(), PlainDistribution: plain,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { srv.Close() })
			reg := &regtest.Registry{URL: srv.URL(), Host: srv.Host(), Transport: http.DefaultTransport.(*http.Transport).Clone()}
			c := client{t: b, reg: reg}
			c.image("bench/head", "v1", "s")
			hc := reg.Client()
			b.ResetTimer()
			for b.Loop() {
				req, _ := reg.Request(http.MethodHead, "/v2/bench/head/manifests/v1", nil)
				req.Header.Set("Accept", v1.MediaTypeImageManifest)
				resp, err := hc.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatal(resp.Status)
				}
			}
		})
	}
}
