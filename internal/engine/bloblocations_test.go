package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

// blobSizes returns digest -> size of every blob (config and layers) of img.
func blobSizes(t testing.TB, img v1.Image) map[string]int64 {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{m.Config.Digest.String(): m.Config.Size}
	for _, l := range m.Layers {
		out[l.Digest.String()] = l.Size
	}
	return out
}

// readBlobCache parses the cache file, failing the test when it is not a
// valid one.
func readBlobCache(t testing.TB, path string) *locFile {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("blob cache: %v", err)
	}
	var f locFile
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("blob cache %s is not valid JSON (%d bytes): %v", path, len(data), err)
	}
	if f.Version != blobLocationsVersion {
		t.Fatalf("blob cache version %d", f.Version)
	}
	return &f
}

func copyOne(t *testing.T, e *Engine, src, dst string) *Report {
	t.Helper()
	var p plan.Plan
	p.Add(plan.Item{Source: mustRef(t, src), Dests: []ref.Ref{mustRef(t, dst)}})
	rep, err := e.Run(context.Background(), p)
	if err != nil {
		t.Fatalf("copy %s -> %s: %v", src, dst, err)
	}
	return rep
}

// sharedBaseImages are two images with the same two 256 KiB base layers
// and small layers of their own.
func sharedBaseImages(t *testing.T) (x, y v1.Image) {
	t.Helper()
	base := []v1.Layer{synth.Layer(901, 256<<10), synth.Layer(902, 256<<10)}
	x, err := synth.Image(31, synth.WithBase(base...), synth.WithLayerSize(2048))
	if err != nil {
		t.Fatal(err)
	}
	y, err = synth.Image(32, synth.WithBase(base...), synth.WithLayerSize(2048))
	if err != nil {
		t.Fatal(err)
	}
	return x, y
}

// TestBlobCacheMountsAcrossEngines: one engine copies X to repository a,
// a new engine (a new process, as far as the engine knows) copies Y, which
// shares X's base layers, to repository b. With the cache the base layers
// are mounted from a and only Y's own bytes are sent; without it they are
// uploaded again.
func TestBlobCacheMountsAcrossEngines(t *testing.T) {
	for _, withCache := range []bool{true, false} {
		t.Run(fmt.Sprintf("cache=%v", withCache), func(t *testing.T) {
			src := regtest.Start(t)
			dst := regtest.Start(t)
			x, y := sharedBaseImages(t)
			push(t, x, src.Host+"/app/x:v1")
			yDigest := push(t, y, src.Host+"/app/y:v1")
			cache := ""
			if withCache {
				cache = filepath.Join(t.TempDir(), "blob-locations.json")
			}
			opts := func(o *Options) { o.BlobCacheFile = cache }

			copyOne(t, newTestEngine(t, nil, opts), src.Host+"/app/x:v1", dst.Host+"/a/x:v1")

			xb, yb := blobSizes(t, x), blobSizes(t, y)
			var yAll, yOwn int64
			shared := 0
			for d, n := range yb {
				yAll += n
				if _, ok := xb[d]; ok {
					shared++
				} else {
					yOwn += n
				}
			}
			cnt := newCounter(defaultTransport())
			rep := copyOne(t, newTestEngine(t, cnt, opts), src.Host+"/app/y:v1", dst.Host+"/b/y:v1")
			if got := headDigest(t, dst.Host+"/b/y:v1"); got != yDigest {
				t.Fatalf("b/y:v1 = %s, want %s", got, yDigest)
			}
			validateRemote(t, dst.Host+"/b/y:v1")
			t.Logf("second engine: %d bytes sent (Y has %d blob bytes, %d of its own), %d blobs mounted, %d uploaded",
				rep.Stats.Bytes, yAll, yOwn, rep.Stats.BlobsMounted, rep.Stats.BlobsCopied)

			var reuploaded int
			for d := range xb {
				reuploaded += len(cnt.uploads[d])
			}
			if withCache {
				if rep.Stats.BlobsMounted != int64(shared) || cnt.mounts != shared {
					t.Errorf("mounted %d blobs (registry saw %d mounts), want the %d shared base layers", rep.Stats.BlobsMounted, cnt.mounts, shared)
				}
				if rep.Stats.Bytes != yOwn {
					t.Errorf("sent %d bytes, want %d (only Y's own blobs)", rep.Stats.Bytes, yOwn)
				}
				if reuploaded != 0 {
					t.Errorf("%d blobs of X uploaded again", reuploaded)
				}
			} else {
				// The control: what the cache is for.
				if rep.Stats.BlobsMounted != 0 || rep.Stats.Bytes != yAll || reuploaded != shared {
					t.Errorf("without the cache: %d mounted, %d bytes, %d re-uploads; want 0, %d, %d",
						rep.Stats.BlobsMounted, rep.Stats.Bytes, reuploaded, yAll, shared)
				}
			}
		})
	}
}

// TestBlobCacheInterruptedRun cancels a multi-image run midway (a dropped
// connection, Ctrl-C), then a new engine mirrors the same images to other
// repositories of the same registry: with the cache nothing the first run
// uploaded is uploaded again; without it (the control) some is.
func TestBlobCacheInterruptedRun(t *testing.T) {
	for _, withCache := range []bool{true, false} {
		t.Run(fmt.Sprintf("cache=%v", withCache), func(t *testing.T) {
			src := regtest.Start(t)
			dst := regtest.Start(t)
			entries, err := synth.Workload(17, 12, 64<<10)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := synth.PushWorkload(entries, src.Host); err != nil {
				t.Fatal(err)
			}
			planTo := func(prefix string) plan.Plan {
				var p plan.Plan
				for _, en := range entries {
					p.Add(plan.Item{Source: mustRef(t, fmt.Sprintf("%s/%s:%s", src.Host, en.Repo, en.Tag)),
						Dests: []ref.Ref{mustRef(t, fmt.Sprintf("%s/%s/%s:%s", dst.Host, prefix, en.Repo, en.Tag))}})
				}
				return p
			}
			cache := ""
			if withCache {
				cache = filepath.Join(t.TempDir(), "blob-locations.json")
			}

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			first := &cancelAfter{counter: newCounter(defaultTransport()), n: 8, cancel: cancel}
			rep, err := newTestEngine(t, first, func(o *Options) {
				o.Parallel, o.ParallelBlobs, o.BlobCacheFile = 2, 2, cache
			}).Run(ctx, planTo("m"))
			if err == nil || rep.Stats.ImagesFailed == 0 {
				t.Fatalf("the interruption did not stop the first run: err %v, %+v", err, rep.Stats)
			}

			second := newCounter(defaultTransport())
			rep, err = newTestEngine(t, second, func(o *Options) { o.BlobCacheFile = cache }).Run(context.Background(), planTo("n"))
			if err != nil {
				t.Fatal(err)
			}
			validateRemote(t, fmt.Sprintf("%s/n/%s:%s", dst.Host, entries[0].Repo, entries[0].Tag))
			var again []string
			for d := range first.uploads {
				if len(second.uploads[d]) > 0 {
					again = append(again, d)
				}
			}
			t.Logf("first run uploaded %d blobs; the re-run uploaded %d (%d of them again), mounted %d, sent %d bytes",
				len(first.uploads), len(second.uploads), len(again), rep.Stats.BlobsMounted, rep.Stats.Bytes)
			if withCache && len(again) > 0 {
				t.Errorf("the re-run uploaded %d blobs the interrupted run had already uploaded: %v", len(again), again)
			}
			if !withCache && len(again) == 0 {
				t.Error("control: without the cache nothing was uploaded again, so this test proves nothing")
			}
		})
	}
}

// denyMounts answers every cross-repository mount request with 403, as a
// registry does for a source repository the user may not read.
type denyMounts struct{ inner http.RoundTripper }

func (d denyMounts) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost && req.URL.Query().Get("mount") != "" {
		body := `{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}`
		return &http.Response{StatusCode: http.StatusForbidden, Status: "403 Forbidden", Request: req,
			Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(body)),
			ContentLength: int64(len(body)), ProtoMajor: 1, ProtoMinor: 1}, nil
	}
	return d.inner.RoundTrip(req)
}

// TestBlobCacheStaleEntries: the cache says repository z of the registry
// holds the blobs, but the registry was wiped. The copy must still
// succeed, by uploading, and the stale holder must leave the cache, whether
// the registry refuses the mount the standard way (202 and an upload) or
// with an error.
func TestBlobCacheStaleEntries(t *testing.T) {
	for _, tc := range []struct {
		name string
		wrap func(http.RoundTripper) http.RoundTripper
	}{
		{"refused", func(rt http.RoundTripper) http.RoundTripper { return rt }},
		{"denied", func(rt http.RoundTripper) http.RoundTripper { return denyMounts{rt} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := regtest.Start(t)
			x, _ := sharedBaseImages(t)
			xDigest := push(t, x, src.Host+"/app/x:v1")
			cache := filepath.Join(t.TempDir(), "blob-locations.json")
			opts := func(o *Options) { o.BlobCacheFile = cache }

			// Learn where X's blobs are in one registry...
			old := regtest.Start(t)
			copyOne(t, newTestEngine(t, nil, opts), src.Host+"/app/x:v1", old.Host+"/z/x:v1")
			// ...and pretend it is another, empty one: the same registry
			// after its storage was wiped.
			wiped := regtest.Start(t)
			data, err := os.ReadFile(cache)
			if err != nil {
				t.Fatal(err)
			}
			data = bytes.ReplaceAll(data, []byte(`"docker://`+old.Host+`"`), []byte(`"docker://`+wiped.Host+`"`))
			if err := os.WriteFile(cache, data, 0o600); err != nil {
				t.Fatal(err)
			}

			cnt := newCounter(defaultTransport())
			rep := copyOne(t, newTestEngine(t, tc.wrap(cnt), opts), src.Host+"/app/x:v1", wiped.Host+"/a/x:v1")
			if got := headDigest(t, wiped.Host+"/a/x:v1"); got != xDigest {
				t.Fatalf("a/x:v1 = %s, want %s", got, xDigest)
			}
			validateRemote(t, wiped.Host+"/a/x:v1")
			xb := blobSizes(t, x)
			if rep.Stats.BlobsMounted != 0 || rep.Stats.BlobsCopied != int64(len(xb)) {
				t.Errorf("%d mounted, %d uploaded; want 0 and %d", rep.Stats.BlobsMounted, rep.Stats.BlobsCopied, len(xb))
			}
			f := readBlobCache(t, cache)
			for d := range xb {
				en := f.Locations["docker://"+wiped.Host][d]
				if en == nil || slices.Contains(en.Repos, "z/x") || !slices.Contains(en.Repos, "a/x") {
					t.Errorf("cache entry for %s after the copy: %+v; want a/x and not the stale z/x", d, en)
				}
			}
		})
	}
}

// logCapture is a logger that keeps what it logs (and shows it in -v).
type logCapture struct {
	mu  sync.Mutex
	buf bytes.Buffer
	t   testing.TB
}

func (c *logCapture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t.Log(strings.TrimSpace(string(p)))
	return c.buf.Write(p)
}

func (c *logCapture) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// TestBlobCacheCorruptFile: a truncated, garbage, empty or foreign-version
// cache file is ignored with a warning, the run succeeds, and the file is
// replaced by a valid one.
func TestBlobCacheCorruptFile(t *testing.T) {
	src := regtest.Start(t)
	dst := regtest.Start(t)
	x, _ := sharedBaseImages(t)
	push(t, x, src.Host+"/app/x:v1")
	valid := `{"version":1,"locations":{"docker://` + dst.Host + `":{"sha256:` + strings.Repeat("ab", 32) + `":{"t":1,"repos":["q/r"]}}}}`
	for name, content := range map[string]string{
		"truncated": valid[:len(valid)/2],
		"garbage":   "\x00\x01not json at all",
		"empty":     "",
		"version":   `{"version":99,"locations":{}}`,
		"shape":     `{"version":1,"locations":["x"]}`,
	} {
		t.Run(name, func(t *testing.T) {
			cache := filepath.Join(t.TempDir(), "blob-locations.json")
			if err := os.WriteFile(cache, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			logs := &logCapture{t: t}
			e := newTestEngine(t, nil, func(o *Options) {
				o.BlobCacheFile = cache
				o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
			})
			copyOne(t, e, src.Host+"/app/x:v1", dst.Host+"/"+name+"/x:v1")
			if !strings.Contains(logs.String(), "level=WARN msg=\"blob location cache ignored") {
				t.Errorf("no warning about the unreadable cache file in the log:\n%s", logs.String())
			}
			f := readBlobCache(t, cache)
			for d := range blobSizes(t, x) {
				if en := f.Locations["docker://"+dst.Host][d]; en == nil || en.Repos[0] != name+"/x" {
					t.Errorf("replaced cache: entry for %s is %+v, want %s/x", d, en, name)
				}
			}
		})
	}
}

// TestBlobCacheConcurrentEngines: two engines share one cache file and
// write it every few milliseconds while copying to two registries at once.
// Every read of the file sees a valid one, and once each has written again
// the file holds what both learnt.
func TestBlobCacheConcurrentEngines(t *testing.T) {
	src := regtest.Start(t)
	entries, err := synth.Workload(23, 8, 8<<10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := synth.PushWorkload(entries, src.Host); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(t.TempDir(), "blob-locations.json")
	var engines []*Engine
	var dsts []*regtest.Registry
	for range 2 {
		e := newTestEngine(t, nil, func(o *Options) { o.BlobCacheFile = cache; o.ParallelBlobs = 2 })
		e.blobLocs.tick, e.blobLocs.interval, e.blobLocs.batch = time.Millisecond, 0, 1
		engines = append(engines, e)
		dsts = append(dsts, regtest.Start(t))
	}

	stop := make(chan struct{})
	var reads, bad int
	var readerDone sync.WaitGroup
	readerDone.Add(1)
	go func() {
		defer readerDone.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			data, err := os.ReadFile(cache)
			if err != nil {
				continue // not written yet
			}
			reads++
			var f locFile
			if json.Unmarshal(data, &f) != nil || f.Version != blobLocationsVersion {
				bad++
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make([]error, len(engines))
	for i, e := range engines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var p plan.Plan
			for _, en := range entries {
				p.Add(plan.Item{Source: mustRef(t, fmt.Sprintf("%s/%s:%s", src.Host, en.Repo, en.Tag)),
					Dests: []ref.Ref{mustRef(t, fmt.Sprintf("%s/e%d/%s:%s", dsts[i].Host, i, en.Repo, en.Tag))}})
			}
			_, errs[i] = e.Run(context.Background(), p)
		}()
	}
	wg.Wait()
	close(stop)
	readerDone.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d reads of the cache file during the runs saw an invalid file", bad, reads)
	}
	readBlobCache(t, cache)
	// A last write by each, one after the other: the merge makes the file
	// hold both engines' knowledge, whatever the races above lost.
	for _, e := range engines {
		if err := e.blobLocs.save(true); err != nil {
			t.Fatal(err)
		}
	}
	f := readBlobCache(t, cache)
	for i, d := range dsts {
		for _, en := range entries {
			for _, b := range blobsOf(t, en.Pushable()) {
				e := f.Locations["docker://"+d.Host][b]
				if e == nil || !slices.Contains(e.Repos, fmt.Sprintf("e%d/%s", i, en.Repo)) {
					t.Fatalf("cache lost that e%d/%s of %s holds %s: %+v", i, en.Repo, d.Host, b, e)
				}
			}
		}
	}
	t.Logf("%d reads of the file while two engines wrote it, all valid", reads)
}

// TestBlobCacheManyWriters: eight caches on one file, each recording its
// own blobs and saving every few records, all at once.
func TestBlobCacheManyWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "blob-locations.json")
	const writers, perWriter = 8, 120
	caches := make([]*blobLocations, writers)
	for i := range caches {
		caches[i] = newBlobLocations(path, testLogger(t))
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers*perWriter)
	for i, c := range caches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range perWriter {
				c.record("docker://reg.example", fmt.Sprintf("sha256:%064x", i*1000+j), fmt.Sprintf("w%d", i))
				if j%10 == 9 {
					if err := c.save(false); err != nil {
						errs <- err
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	readBlobCache(t, path)
	for _, c := range caches {
		if err := c.save(true); err != nil {
			t.Fatal(err)
		}
	}
	f := readBlobCache(t, path)
	if n := len(f.Locations["docker://reg.example"]); n != writers*perWriter {
		t.Errorf("%d entries after every writer saved once more, want %d", n, writers*perWriter)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*tmp*"))
	if len(left) > 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

// TestBlobCacheBounds: at most maxRepos holders per blob (most recent
// first), at most maxEntries blobs (least recently used evicted), and
// forgotten holders stay forgotten when the file is merged back in.
func TestBlobCacheBounds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "blob-locations.json")
	clock := time.Unix(1_700_000_000, 0)
	c := newBlobLocations(path, testLogger(t))
	c.maxEntries = 10
	c.now = func() time.Time { clock = clock.Add(time.Second); return clock }
	const loc = "docker://reg.example"
	dig := func(i int) string { return fmt.Sprintf("sha256:%064x", i) }
	for _, r := range []string{"r1", "r2", "r3", "r4", "r5"} {
		c.record(loc, dig(0), r)
	}
	for i := 1; i < 15; i++ {
		c.record(loc, dig(i), "a")
	}
	c.record(loc, dig(0), "r3") // used again: the most recent entry
	if err := c.save(false); err != nil {
		t.Fatal(err)
	}
	f := readBlobCache(t, path)
	got := f.Locations[loc]
	if len(got) != 10 {
		t.Fatalf("%d entries, want 10", len(got))
	}
	if e := got[dig(0)]; e == nil || !slices.Equal(e.Repos, []string{"r3", "r5", "r4"}) {
		t.Errorf("holders of blob 0: %+v, want [r3 r5 r4]", e)
	}
	for i := 1; i < 6; i++ {
		if got[dig(i)] != nil {
			t.Errorf("blob %d (least recently used) kept", i)
		}
	}
	if h := c.holder(loc, dig(0), "r3"); h != "r5" {
		t.Errorf("holder excluding r3 = %q, want r5", h)
	}

	// Another process's cache still lists r5; ours forgets it and must not
	// get it back from the file.
	other := newBlobLocations(path, testLogger(t))
	other.record(loc, dig(99), "b")
	c.forget(loc, dig(0), "r5")
	if err := other.save(false); err != nil {
		t.Fatal(err)
	}
	if err := c.save(false); err != nil {
		t.Fatal(err)
	}
	f = readBlobCache(t, path)
	if e := f.Locations[loc][dig(0)]; e == nil || slices.Contains(e.Repos, "r5") {
		t.Errorf("holders of blob 0 after forgetting r5: %+v", e)
	}
	if f.Locations[loc][dig(99)] == nil {
		t.Error("the other process's entry was lost in the merge")
	}
}

// gateUploads holds blob uploads to one repository until check says so
// (or 10s pass), recording whether it did.
type gateUploads struct {
	inner  http.RoundTripper
	repo   string
	check  func() bool
	mu     sync.Mutex
	passed bool
}

func (g *gateUploads) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost && strings.HasPrefix(req.URL.Path, "/v2/"+g.repo+"/blobs/uploads/") {
		deadline := time.Now().Add(10 * time.Second)
		for !g.check() && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		g.mu.Lock()
		g.passed = g.passed || g.check()
		g.mu.Unlock()
	}
	return g.inner.RoundTrip(req)
}

// TestBlobCacheWrittenDuringRun: what a run learns reaches the file while
// the run goes on, not only at its end, so a killed process (SIGKILL, power
// loss) leaves most of it.
func TestBlobCacheWrittenDuringRun(t *testing.T) {
	src := regtest.Start(t)
	dst := regtest.Start(t)
	x, y := sharedBaseImages(t)
	push(t, x, src.Host+"/app/x:v1")
	push(t, y, src.Host+"/app/y:v1")
	cache := filepath.Join(t.TempDir(), "blob-locations.json")
	xb := blobSizes(t, x)
	gate := &gateUploads{inner: defaultTransport(), repo: "second/y", check: func() bool {
		data, err := os.ReadFile(cache)
		if err != nil {
			return false
		}
		var f locFile
		if json.Unmarshal(data, &f) != nil {
			return false
		}
		for d := range xb {
			if f.Locations["docker://"+dst.Host][d] == nil {
				return false
			}
		}
		return true
	}}
	e := newTestEngine(t, gate, func(o *Options) { o.BlobCacheFile = cache; o.Parallel = 1 })
	e.blobLocs.tick, e.blobLocs.interval = 10*time.Millisecond, 20*time.Millisecond
	var p plan.Plan
	p.Add(plan.Item{Source: mustRef(t, src.Host+"/app/x:v1"), Dests: []ref.Ref{mustRef(t, dst.Host+"/first/x:v1")}})
	p.Add(plan.Item{Source: mustRef(t, src.Host+"/app/y:v1"), Dests: []ref.Ref{mustRef(t, dst.Host+"/second/y:v1")}})
	if _, err := e.Run(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if !gate.passed {
		t.Error("the first image's blobs were not in the cache file while the run was still going")
	}
}

// TestBlobCacheUnwritable: a cache file that cannot be written (here its
// directory is a regular file) costs one warning, never the run.
func TestBlobCacheUnwritable(t *testing.T) {
	src := regtest.Start(t)
	dst := regtest.Start(t)
	x, y := sharedBaseImages(t)
	push(t, x, src.Host+"/app/x:v1")
	push(t, y, src.Host+"/app/y:v1")
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &logCapture{t: t}
	e := newTestEngine(t, nil, func(o *Options) {
		o.BlobCacheFile = filepath.Join(notDir, "blob-locations.json")
		o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	copyOne(t, e, src.Host+"/app/x:v1", dst.Host+"/a/x:v1")
	copyOne(t, e, src.Host+"/app/y:v1", dst.Host+"/b/y:v1")
	if n := strings.Count(logs.String(), "could not write the blob location cache"); n != 1 {
		t.Errorf("%d warnings about the unwritable cache, want 1:\n%s", n, logs.String())
	}
}
