package webui

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/airlock-mirror/airlock/internal/regscan"
)

// bigSnapshot is shaped like a mirror of redhat-operator-index: 150
// packages, 3,000 bundles with 4 related images each, 3,000 repositories.
func bigSnapshot() *regscan.Snapshot {
	s := &regscan.Snapshot{Taken: time.Now()}
	c := &regscan.Catalog{Repo: "redhat/redhat-operator-index", Tag: "v4.18", Digest: "sha256:" + fmt.Sprintf("%064d", 1), Format: "fbc"}
	for p := 0; p < 150; p++ {
		pk := &regscan.Package{Name: fmt.Sprintf("operator-%03d", p), DefaultChannel: "stable", Complete: true}
		ch := &regscan.Channel{Name: "stable", Head: "1.19.0"}
		for b := 0; b < 20; b++ {
			v := fmt.Sprintf("1.%d.0", b)
			ch.Versions = append(ch.Versions, v)
			bu := &regscan.Bundle{Name: pk.Name + ".v" + v, Version: v, Image: fmt.Sprintf("registry.redhat.io/ns/%s-bundle@sha256:%064d", pk.Name, b), Present: regscan.PresencePresent, Complete: true}
			for r := 0; r < 4; r++ {
				bu.Related = append(bu.Related, regscan.ImageRef{Name: fmt.Sprintf("img%d", r), Image: fmt.Sprintf("registry.redhat.io/ns/%s-%d@sha256:%064d", pk.Name, r, b), Present: regscan.PresencePresent})
			}
			pk.Bundles = append(pk.Bundles, bu)
			c.Bundles++
			c.BundlesPresent++
			c.Related += 4
			c.RelatedPresent += 4
		}
		pk.Channels = []*regscan.Channel{ch}
		c.Packages = append(c.Packages, pk)
	}
	s.Catalogs = []*regscan.Catalog{c}
	defer s.Index()
	for i := 0; i < 3000; i++ {
		m := &regscan.Manifest{Digest: fmt.Sprintf("sha256:%064d", i), MediaType: "application/vnd.oci.image.manifest.v1+json", Platform: "linux/amd64", Bytes: 4 << 20}
		r := &regscan.Repo{Name: fmt.Sprintf("ns/repo-%04d", i), Tags: []*regscan.Tag{{Name: "v1", Digest: m.Digest, Manifest: m}}, Bytes: m.Bytes}
		s.Repos = append(s.Repos, r)
		s.Images++
	}
	return s
}

func BenchmarkPages(b *testing.B) {
	ui, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	ui.snap = bigSnapshot()
	ui.once.Do(func() { close(ui.ready) })
	for _, p := range []string{
		"/ui/",
		"/ui/catalog?ref=redhat/redhat-operator-index:v4.18",
		"/ui/package?catalog=redhat/redhat-operator-index:v4.18&name=operator-042",
		"/ui/repositories",
		"/ui/search?q=operator-14",
		"/ui/api/catalog?ref=redhat/redhat-operator-index:v4.18",
	} {
		b.Run(p, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, p, nil)
			for b.Loop() {
				w := httptest.NewRecorder()
				ui.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("%s: %d %s", p, w.Code, w.Body)
				}
				b.SetBytes(int64(w.Body.Len()))
			}
		})
	}
}
