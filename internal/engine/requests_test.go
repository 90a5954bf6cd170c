package engine

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

// knownPlan pushes three images to src and returns the plan mirroring
// them (pinned by digest, tagged at the destination, as catalogs and the
// benchmark do) into dst:
//
//	m/one:v1  image, a base layer + 2 own layers + config   (4 blobs)
//	m/two:v1  image, the same base layer + 1 own + config   (3 blobs, base shared)
//	m/idx:v1  index of 2 images, each 1 layer + config      (4 blobs, 3 manifests)
//
// 11 (repository, blob) pairs, 10 unique blobs (one shared base), 5 image
// manifests and indexes to write, 3 tags.
func knownPlan(t testing.TB, src, dst *regtest.Registry) plan.Plan {
	opts := []remote.Option{remote.WithTransport(src.Transport), remote.WithAuthFromKeychain(src.Keychain)}
	t.Helper()
	base := synth.Layer(1, 4096)
	one, err := synth.Image(10, synth.WithBase(base), synth.WithLayers(2))
	if err != nil {
		t.Fatal(err)
	}
	two, err := synth.Image(11, synth.WithBase(base), synth.WithLayers(1))
	if err != nil {
		t.Fatal(err)
	}
	idx, err := synth.Index(12, []string{"linux/amd64", "linux/arm64"}, synth.WithLayers(1))
	if err != nil {
		t.Fatal(err)
	}
	var p plan.Plan
	for _, x := range []struct {
		img  synth.Pushable
		repo string
	}{{one, "one"}, {two, "two"}, {idx, "idx"}} {
		s := fmt.Sprintf("%s/src/%s:v1", src.Host, x.repo)
		d, err := synth.Push(x.img, s, opts...)
		if err != nil {
			t.Fatal(err)
		}
		p.Add(plan.Item{Source: mustRef(t, s).ByDigest(d), Dests: []ref.Ref{mustRef(t, fmt.Sprintf("%s/m/%s:v1", dst.Host, x.repo))}})
	}
	return p
}

func runCounted(t *testing.T, e *Engine, p plan.Plan) *Report {
	t.Helper()
	rep, err := e.Run(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestRequestBudget pins the exact requests a known plan costs, against the
// embedded registry: a first run into an empty destination, a no-op re-run
// from a new process, and a run from a new process into new repositories
// that knows the blobs from the blob-location cache. A change that adds a
// request per blob or per image fails here; docs/REQUESTS.md explains
// each number.
func TestRequestBudget(t *testing.T) {
	src := regtest.Start(t)
	dst := regtest.Start(t)
	p := knownPlan(t, src, dst)
	mod := withCache(t)
	// Plain HTTP: the ping tries HTTPS first, then HTTP (2 per host).
	// Signatures: one tag list per source repository (3) and one
	// referrers query per manifest written (5).
	srcFirst := RequestCounts{Ping: 2, ManifestGET: 5, BlobGET: 10, TagList: 3, Referrers: 5}

	rep := runCounted(t, newTestEngine(t, nil, mod), p)
	for _, it := range p.Items {
		validateRemote(t, it.Dests[0].String())
	}
	if rep.Stats.BlobsCopied != 10 || rep.Stats.BlobsMounted != 1 || rep.Stats.Manifests != 5 {
		t.Errorf("stats %+v: want 10 blobs copied, 1 mounted, 5 manifests", rep.Stats)
	}
	// 10 blobs, each one single-request upload (no HEAD: they are small);
	// the shared base mounted into the second repository; one tag list per
	// destination repository (new to the cache: see
	// TestRequestBudgetManyTagsPerRepository); 5 manifest PUTs (2 index children by digest, 3 tags, each
	// storing its manifest too).
	checkRequests(t, "first run", rep, src.Host, srcFirst, dst.Host,
		RequestCounts{Ping: 2, BlobPOSTBody: 10, BlobMount: 1, TagList: 3, ManifestPUT: 5})

	// No-op re-run: one HEAD per tag; the index is read from the source to
	// HEAD its 2 children at the destination; every image's signatures
	// are looked for (one tag list per repository, one referrers query
	// per manifest: a signature added upstream since is copied).
	rep = runCounted(t, newTestEngine(t, nil, mod), p)
	checkRequests(t, "no-op re-run", rep, src.Host, RequestCounts{Ping: 2, ManifestGET: 3, TagList: 3, Referrers: 5}, dst.Host,
		RequestCounts{Ping: 2, ManifestHEAD: 5})
	if rep.Stats.ImagesSkipped != 3 {
		t.Errorf("re-run: %d images skipped, want 3", rep.Stats.ImagesSkipped)
	}

	// New repositories, new process: the cache names a holder of every
	// blob, so each (repository, blob) pair is one mount and nothing is
	// read from the source but manifests.
	var p2 plan.Plan
	for _, it := range p.Items {
		d := it.Dests[0]
		d.Path = "again/" + d.Path
		p2.Add(plan.Item{Source: it.Source, Dests: []ref.Ref{d}})
	}
	rep = runCounted(t, newTestEngine(t, nil, mod), p2)
	checkRequests(t, "new repositories with the cache", rep, src.Host, RequestCounts{Ping: 2, ManifestGET: 5, TagList: 3, Referrers: 5}, dst.Host,
		RequestCounts{Ping: 2, BlobMount: 11, TagList: 3, ManifestPUT: 5})
	for _, it := range p2.Items {
		validateRemote(t, it.Dests[0].String())
	}
}

// TestRequestBudgetWithoutSignatures: --signatures remove costs nothing
// for signatures; a source without the referrers API is asked once (404)
// and then only for fallback tags its tag list has.
func TestRequestBudgetWithoutSignatures(t *testing.T) {
	src := regtest.Start(t)
	dst := regtest.Start(t)
	p := knownPlan(t, src, dst)
	rep := runCounted(t, newTestEngine(t, nil, func(o *Options) { o.Signatures = SignaturesRemove; withCache(t)(o) }), p)
	checkRequests(t, "--signatures remove", rep, src.Host, RequestCounts{Ping: 2, ManifestGET: 5, BlobGET: 10}, dst.Host,
		RequestCounts{Ping: 2, BlobPOSTBody: 10, BlobMount: 1, TagList: 3, ManifestPUT: 5})

	plain := regtest.Start(t, regtest.WithPlainDistribution())
	dst2 := regtest.Start(t)
	p2 := knownPlan(t, plain, dst2)
	rep = runCounted(t, newTestEngine(t, nil, withCache(t)), p2)
	checkRequests(t, "source without referrers API", rep, plain.Host, RequestCounts{Ping: 2, ManifestGET: 5, BlobGET: 10, TagList: 3, Referrers: 1}, dst2.Host,
		RequestCounts{Ping: 2, BlobPOSTBody: 10, BlobMount: 1, TagList: 3, ManifestPUT: 5})
}

// TestRequestBudgetWithoutSingleRequestUpload is the first run against
// plain distribution, which ignores a blob in the upload POST (as
// docker-registry 2.8 does): the first small upload finds out (its POST
// answers 202 and its body goes again in a PUT), every other small blob is
// POST + PUT.
func TestRequestBudgetWithoutSingleRequestUpload(t *testing.T) {
	src := regtest.Start(t)
	dst := regtest.Start(t, regtest.WithPlainDistribution())
	p := knownPlan(t, src, dst)
	rep := runCounted(t, newTestEngine(t, nil, withCache(t)), p)
	checkRequests(t, "first run", rep, src.Host, RequestCounts{Ping: 2, ManifestGET: 5, BlobGET: 10, TagList: 3, Referrers: 5}, dst.Host,
		RequestCounts{Ping: 2, BlobPOSTBody: 1, BlobPOST: 9, BlobPUT: 10, BlobMount: 1, TagList: 3, ManifestPUT: 5})
	for _, it := range p.Items {
		validateRemote(t, it.Dests[0].String())
	}
}

// TestConnectionsAreReused copies the known plan over TLS with htpasswd
// auth, many requests at once: HTTP/2 carries all of them on one
// connection (and one TLS handshake) per registry.
func TestConnectionsAreReused(t *testing.T) {
	src := regtest.Start(t, regtest.WithTLS(), regtest.WithAuth("alice", "s3cret"))
	dst := regtest.Start(t, regtest.WithTLS(), regtest.WithAuth("bob", "s3cret"))
	p := knownPlan(t, src, dst)
	tr := src.Transport.(*http.Transport).Clone()
	tr.TLSClientConfig = tr.TLSClientConfig.Clone()
	tr.TLSClientConfig.RootCAs = tr.TLSClientConfig.RootCAs.Clone()
	tr.TLSClientConfig.RootCAs.AppendCertsFromPEM(mustRead(t, dst.CAFile))
	keys := authn.NewMultiKeychain(src.Keychain, dst.Keychain)
	rep := runCounted(t, newTestEngine(t, tr, func(o *Options) { o.Keychain = keys; withCache(t)(o) }), p)
	one := RequestCounts{Ping: 1, Connections: 1, TLSHandshakes: 1}
	srcWant, dstWant := one, one
	srcWant.ManifestGET, srcWant.BlobGET, srcWant.TagList, srcWant.Referrers = 5, 10, 3, 5
	dstWant.BlobPOSTBody, dstWant.BlobMount, dstWant.TagList, dstWant.ManifestPUT = 10, 1, 3, 5
	checkRequests(t, "TLS run", rep, src.Host, srcWant, dst.Host, dstWant)
}

// TestRequestBudgetManyTagsPerRepository: catalogs put many images into one
// repository. Into a repository the blob-location cache never saw airlock
// write to, the re-run check is one tag list for all its images instead of a
// manifest HEAD each; where airlock wrote before (a no-op re-run) it is the
// HEAD per image again, with no list. A repository filled by another tool
// (cache empty) is listed, each listed tag HEADed, and nothing copied.
func TestRequestBudgetManyTagsPerRepository(t *testing.T) {
	src := regtest.Start(t)
	dst := regtest.Start(t)
	const n = 6
	p := onePerImage(t, src, dst, n, 40, "many:t%d")
	noSigs := func(o *Options) { o.Signatures = SignaturesRemove }
	mod := withCache(t)
	rep := runCounted(t, newTestEngine(t, nil, func(o *Options) { noSigs(o); mod(o) }), p)
	checkRequests(t, "first run", rep, src.Host, RequestCounts{Ping: 2, ManifestGET: n, BlobGET: 2 * n}, dst.Host,
		RequestCounts{Ping: 2, BlobPOSTBody: 2 * n, TagList: 1, ManifestPUT: n})
	for _, it := range p.Items {
		validateRemote(t, it.Dests[0].String())
	}

	rep = runCounted(t, newTestEngine(t, nil, func(o *Options) { noSigs(o); mod(o) }), p)
	checkRequests(t, "no-op re-run", rep, src.Host, RequestCounts{Ping: 2}, dst.Host, RequestCounts{Ping: 2, ManifestHEAD: n})
	if rep.Stats.ImagesSkipped != n {
		t.Errorf("re-run: %d images skipped, want %d", rep.Stats.ImagesSkipped, n)
	}

	// A fresh cache: the destination's content is someone else's.
	rep = runCounted(t, newTestEngine(t, nil, func(o *Options) { noSigs(o); withCache(t)(o) }), p)
	checkRequests(t, "filled by another tool", rep, src.Host, RequestCounts{Ping: 2}, dst.Host, RequestCounts{Ping: 2, TagList: 1, ManifestHEAD: n})
	if rep.Stats.ImagesSkipped != n || rep.Stats.BlobsCopied != 0 {
		t.Errorf("filled by another tool: stats %+v, want %d images skipped and no blob copied", rep.Stats, n)
	}
}

// TestNotFoundAnswersKeepConnections: a 404 carries an error document; a
// body closed unread costs its HTTP/1.1 connection. Six images into six new
// repositories, one at a time: six tag lists answered 404 and the uploads
// after them share the connections of the two request slots.
func TestNotFoundAnswersKeepConnections(t *testing.T) {
	src := regtest.Start(t)
	dst := regtest.Start(t)
	const n = 6
	p := onePerImage(t, src, dst, n, 60, "r%d:v1")
	mod := withCache(t)
	rep := runCounted(t, newTestEngine(t, nil, func(o *Options) {
		o.Signatures, o.Parallel, o.MaxPerRegistry = SignaturesRemove, 1, 2
		mod(o)
	}), p)
	got := rep.Stats.RequestsByHost[dst.Host]
	if got.TagList != n {
		t.Fatalf("destination requests %+v: want %d tag lists", got, n)
	}
	// The ping tries HTTPS first (one connection refused by TLS), then
	// HTTP; the rest fits in the 2 request slots.
	if got.Connections > 3 {
		t.Errorf("destination: %d connections dialled for %d requests one or two at a time, want at most 3 (404 bodies closed unread?)", got.Connections, got.Total())
	}
}

// onePerImage pushes n one-layer images (seeds seed..seed+n-1) to
// src/<name> and plans each, by digest, to m/<name> at dst; name is a
// format with the image's index ("many:t%d": one repository, n tags).
func onePerImage(t *testing.T, src, dst *regtest.Registry, n int, seed int64, name string) plan.Plan {
	t.Helper()
	opts := []remote.Option{remote.WithTransport(src.Transport), remote.WithAuthFromKeychain(src.Keychain)}
	var p plan.Plan
	for i := range n {
		img, err := synth.Image(seed+int64(i), synth.WithLayers(1))
		if err != nil {
			t.Fatal(err)
		}
		nm := fmt.Sprintf(name, i)
		s := src.Host + "/src/" + nm
		d, err := synth.Push(img, s, opts...)
		if err != nil {
			t.Fatal(err)
		}
		p.Add(plan.Item{Source: mustRef(t, s).ByDigest(d), Dests: []ref.Ref{mustRef(t, dst.Host+"/m/"+nm)}})
	}
	return p
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkRequests compares a run's requests per host with the budget.
// Connections are only compared when the budget names them (plain HTTP
// opens as many as requests run at once, which depends on timing).
func checkRequests(t *testing.T, what string, rep *Report, srcHost string, srcWant RequestCounts, dstHost string, dstWant RequestCounts) {
	t.Helper()
	for _, h := range []struct {
		name, host string
		want       RequestCounts
	}{{"source", srcHost, srcWant}, {"destination", dstHost, dstWant}} {
		got := rep.Stats.RequestsByHost[h.host]
		if h.want.Connections == 0 {
			got.Connections, got.TLSHandshakes = 0, 0
		}
		if got != h.want {
			t.Errorf("%s, %s requests:\n got %+v\nwant %+v", what, h.name, got, h.want)
		}
	}
	total := srcWant.Total() + dstWant.Total()
	if rep.Stats.Requests.Total() != total {
		t.Errorf("%s: %d requests in all, want %d", what, rep.Stats.Requests.Total(), total)
	}
}

// withCache turns on a blob-location cache of the test's own, as the CLI
// does by default.
func withCache(t testing.TB) func(*Options) {
	cache := t.TempDir() + "/blob-locations.json"
	return func(o *Options) { o.BlobCacheFile = cache }
}
