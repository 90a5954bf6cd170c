package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/registry"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

// counter is an http.RoundTripper that counts the requests the engine makes,
// by kind, so tests can prove what crossed the wire.
type counter struct {
	inner http.RoundTripper
	mu    sync.Mutex
	// blob uploads completed (PUT .../blobs/uploads/...?digest=D), by digest and repo
	uploads map[string][]string
	mounts  int // POST ?mount= answered 201
	counts  map[string]int
}

func newCounter(inner http.RoundTripper) *counter {
	return &counter{inner: inner, uploads: map[string][]string{}, counts: map[string]int{}}
}

func (c *counter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.inner.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	p := req.URL.Path
	c.mu.Lock()
	defer c.mu.Unlock()
	kind := req.Method + " other"
	switch {
	case strings.Contains(p, "/blobs/uploads/") && req.Method == http.MethodPut:
		kind = "PUT blob"
		if resp.StatusCode == http.StatusCreated {
			d := req.URL.Query().Get("digest")
			repo := strings.TrimPrefix(p[:strings.Index(p, "/blobs/uploads/")], "/v2/")
			c.uploads[d] = append(c.uploads[d], repo)
		}
	case strings.Contains(p, "/blobs/uploads/") && req.Method == http.MethodPost:
		kind = "POST upload"
		if req.URL.Query().Get("mount") != "" && resp.StatusCode == http.StatusCreated {
			c.mounts++
		}
		if d := req.URL.Query().Get("digest"); d != "" && resp.StatusCode == http.StatusCreated {
			// single-request upload: the blob was in the POST
			repo := strings.TrimPrefix(p[:strings.Index(p, "/blobs/uploads/")], "/v2/")
			c.uploads[d] = append(c.uploads[d], repo)
		}
	case strings.Contains(p, "/blobs/"):
		kind = req.Method + " blob"
	case strings.Contains(p, "/manifests/"):
		kind = req.Method + " manifest"
	}
	c.counts[kind]++
	return resp, err
}

func (c *counter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.uploads = map[string][]string{}
	c.mounts = 0
	c.counts = map[string]int{}
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: testLogLevel}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func newTestEngine(t testing.TB, tr http.RoundTripper, mod func(*Options)) *Engine {
	t.Helper()
	o := Options{Transport: tr, Logger: testLogger(t)}
	if mod != nil {
		mod(&o)
	}
	e, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func push(t testing.TB, x synth.Pushable, reference string) string {
	t.Helper()
	d, err := synth.Push(x, reference)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func mustRef(t testing.TB, s string) ref.Ref {
	t.Helper()
	r, err := ref.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// headDigest returns the digest the registry serves for reference.
func headDigest(t testing.TB, reference string) string {
	t.Helper()
	r, err := name.ParseReference(reference, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	d, err := remote.Head(r)
	if err != nil {
		t.Fatalf("HEAD %s: %v", reference, err)
	}
	return d.Digest.String()
}

// validateRemote reads every manifest and blob of reference back;
// go-containerregistry verifies each blob's digest while reading it.
func validateRemote(t testing.TB, reference string) {
	t.Helper()
	r, err := name.ParseReference(reference, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(r)
	if err != nil {
		t.Fatalf("GET %s: %v", reference, err)
	}
	var check func(x synth.Pushable)
	checkImage := func(img v1.Image) {
		if _, err := img.RawConfigFile(); err != nil {
			t.Fatalf("%s: config: %v", reference, err)
		}
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range layers {
			rc, err := l.Compressed()
			if err != nil {
				t.Fatalf("%s: layer: %v", reference, err)
			}
			if _, err := io.Copy(io.Discard, rc); err != nil {
				t.Fatalf("%s: layer: %v", reference, err)
			}
			rc.Close()
		}
	}
	check = func(x synth.Pushable) {
		switch v := x.(type) {
		case v1.ImageIndex:
			im, err := v.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range im.Manifests {
				if d.MediaType.IsIndex() {
					c, err := v.ImageIndex(d.Digest)
					if err != nil {
						t.Fatalf("%s: child %s: %v", reference, d.Digest, err)
					}
					check(c)
					continue
				}
				c, err := v.Image(d.Digest)
				if err != nil {
					t.Fatalf("%s: child %s: %v", reference, d.Digest, err)
				}
				checkImage(c)
			}
		case v1.Image:
			checkImage(v)
		}
	}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			t.Fatal(err)
		}
		check(idx)
		return
	}
	img, err := desc.Image()
	if err != nil {
		t.Fatal(err)
	}
	check(img)
}

func TestCopyKeepsDigestsOfImagesIndexesAndNestedIndexes(t *testing.T) {
	src := regtest.Start(t)
	dst := regtest.Start(t)
	img, err := synth.Image(1, synth.WithLayers(3))
	if err != nil {
		t.Fatal(err)
	}
	idx, err := synth.Index(2, []string{"linux/amd64", "linux/arm64", "linux/ppc64le"})
	if err != nil {
		t.Fatal(err)
	}
	nested, err := synth.NestedIndex(3, []string{"linux/amd64", "linux/s390x"})
	if err != nil {
		t.Fatal(err)
	}
	ociImg, err := synth.Image(4, synth.WithOCI())
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		x    synth.Pushable
		src  string
		dst  string
	}{
		{"single", img, src.Host + "/a/single:v1", dst.Host + "/mirror/single:v1"},
		{"index", idx, src.Host + "/a/multi:v2", dst.Host + "/mirror/multi:v2"},
		{"nested", nested, src.Host + "/b/nested:v3", dst.Host + "/mirror/nested:v3"},
		{"oci", ociImg, src.Host + "/b/oci:v4", dst.Host + "/mirror/oci:v4"},
	}
	var p plan.Plan
	want := map[string]string{}
	for _, c := range cases {
		want[c.dst] = push(t, c.x, c.src)
		p.Add(plan.Item{Source: mustRef(t, c.src), Dests: []ref.Ref{mustRef(t, c.dst)}, Kind: plan.KindImage})
	}
	// A digest-only source to a tagged destination.
	p.Add(plan.Item{Source: mustRef(t, src.Host+"/a/multi@"+want[dst.Host+"/mirror/multi:v2"]),
		Dests: []ref.Ref{mustRef(t, dst.Host+"/other/multi:pinned")}})
	want[dst.Host+"/other/multi:pinned"] = want[dst.Host+"/mirror/multi:v2"]

	e := newTestEngine(t, nil, nil)
	rep, err := e.Run(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	for d, dig := range want {
		if got := headDigest(t, d); got != dig {
			t.Errorf("%s: digest %s, want %s (source)", d, got, dig)
		}
		validateRemote(t, d)
	}
	for _, it := range rep.Items {
		if it.Status != StatusCopied {
			t.Errorf("%s: status %s, want copied", it.Source, it.Status)
		}
	}
	if rep.Stats.ImagesCopied != len(p.Items) || rep.Stats.Bytes == 0 {
		t.Errorf("stats %+v", rep.Stats)
	}
}

// TestEachBlobUploadedOnceAndMounted copies a workload whose images share
// base layers across repositories: every unique blob must be uploaded once,
// shared ones mounted into the other repositories, and a re-run must make
// no blob transfer and no source manifest GET.
func TestEachBlobUploadedOnceAndMounted(t *testing.T) {
	src := regtest.Start(t)
	dst := regtest.Start(t)
	entries, err := synth.Workload(7, 18, 2048)
	if err != nil {
		t.Fatal(err)
	}
	digests, err := synth.PushWorkload(entries, src.Host)
	if err != nil {
		t.Fatal(err)
	}
	var p plan.Plan
	want := map[string]string{}
	for _, en := range entries {
		s := fmt.Sprintf("%s/%s:%s", src.Host, en.Repo, en.Tag)
		d := fmt.Sprintf("%s/mirror/%s:%s", dst.Host, en.Repo, en.Tag)
		// Pin by digest, as catalogs and the benchmark do.
		p.Add(plan.Item{Source: mustRef(t, s).ByDigest(digests[s]), Dests: []ref.Ref{mustRef(t, d)}})
		want[d] = digests[s]
	}
	cnt := newCounter(defaultTransport())
	e := newTestEngine(t, cnt, func(o *Options) { o.Parallel = 6 })
	rep, err := e.Run(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	for d, dig := range want {
		if got := headDigest(t, d); got != dig {
			t.Errorf("%s: digest %s, want %s", d, got, dig)
		}
	}
	// Which blobs are unique, and which repositories need each?
	uniq := map[string]map[string]bool{}
	for _, en := range entries {
		for _, b := range blobsOf(t, en.Pushable()) {
			if uniq[b] == nil {
				uniq[b] = map[string]bool{}
			}
			uniq[b]["mirror/"+en.Repo] = true
		}
	}
	shared := 0
	for b, repos := range uniq {
		if n := len(cnt.uploads[b]); n != 1 {
			t.Errorf("blob %s uploaded %d times (%v), want once", b, n, cnt.uploads[b])
		}
		if len(repos) > 1 {
			shared += len(repos) - 1
		}
	}
	if len(cnt.uploads) != len(uniq) {
		t.Errorf("%d distinct blobs uploaded, workload has %d", len(cnt.uploads), len(uniq))
	}
	if shared == 0 {
		t.Fatal("workload has no blob shared across repositories; the test proves nothing")
	}
	if cnt.mounts != shared || rep.Stats.BlobsMounted != int64(shared) {
		t.Errorf("mounts: counted %d, stats %d; want %d (one per extra repository of each shared blob)", cnt.mounts, rep.Stats.BlobsMounted, shared)
	}
	if rep.Stats.BlobsCopied != int64(len(uniq)) {
		t.Errorf("stats: %d blobs copied, want %d", rep.Stats.BlobsCopied, len(uniq))
	}

	// No-op re-run with a fresh engine (a new process): HEADs only.
	cnt.reset()
	e2 := newTestEngine(t, cnt, nil)
	rep2, err := e2.Run(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	for k, n := range cnt.counts {
		// GET other: the /v2/ ping. Manifest GETs: lists are read from the
		// source so their children can be checked at the destination.
		if k != "HEAD manifest" && k != "GET manifest" && k != "GET other" {
			t.Errorf("re-run made %d %q requests; want only manifest HEADs and GETs", n, k)
		}
	}
	if rep2.Stats.ImagesSkipped != len(p.Items) || rep2.Stats.Manifests != 0 {
		t.Errorf("re-run: %d skipped, %d manifests written; want %d, 0", rep2.Stats.ImagesSkipped, rep2.Stats.Manifests, len(p.Items))
	}
}

// blobsOf lists the config and layer digests of an image or index.
func blobsOf(t testing.TB, x synth.Pushable) []string {
	t.Helper()
	var out []string
	var img func(v1.Image)
	img = func(i v1.Image) {
		m, err := i.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m.Config.Digest.String())
		for _, l := range m.Layers {
			out = append(out, l.Digest.String())
		}
	}
	var index func(v1.ImageIndex)
	index = func(ii v1.ImageIndex) {
		im, err := ii.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range im.Manifests {
			if d.MediaType.IsIndex() {
				c, err := ii.ImageIndex(d.Digest)
				if err != nil {
					t.Fatal(err)
				}
				index(c)
				continue
			}
			c, err := ii.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			img(c)
		}
	}
	switch v := x.(type) {
	case v1.ImageIndex:
		index(v)
	case v1.Image:
		img(v)
	}
	return out
}

func TestFailedImageDoesNotStopOthers(t *testing.T) {
	src := regtest.Start(t)
	dst := regtest.Start(t)
	img, _ := synth.Image(11)
	push(t, img, src.Host+"/ok/app:v1")
	p := plan.Plan{Items: []plan.Item{
		{Source: mustRef(t, src.Host+"/missing/app:v1"), Dests: []ref.Ref{mustRef(t, dst.Host+"/m/missing:v1")}},
		{Source: mustRef(t, src.Host+"/ok/app:v1"), Dests: []ref.Ref{mustRef(t, dst.Host+"/m/ok:v1")}},
	}}
	e := newTestEngine(t, nil, nil)
	rep, err := e.Run(context.Background(), p)
	var re *RunError
	if !errors.As(err, &re) || len(re.Failed) != 1 {
		t.Fatalf("err = %v, want a RunError with one failure", err)
	}
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "missing/app:v1") {
		t.Errorf("error %q should name the image and wrap ErrNotFound", err)
	}
	if rep.Items[1].Status != StatusCopied {
		t.Errorf("second image: %s, want copied", rep.Items[1].Status)
	}
	// SkipMissing turns the missing source into a recorded skip.
	e2 := newTestEngine(t, nil, func(o *Options) { o.SkipMissing = true })
	rep, err = e2.Run(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Items[0].Status != StatusMissing || rep.Stats.ImagesMissing != 1 {
		t.Errorf("skip-missing: status %s, stats %+v", rep.Items[0].Status, rep.Stats)
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	src := regtest.Start(t)
	dst := regtest.Start(t)
	idx, _ := synth.Index(21, []string{"linux/amd64", "linux/arm64"})
	dig := push(t, idx, src.Host+"/a/b:v1")
	cnt := newCounter(defaultTransport())
	e := newTestEngine(t, cnt, func(o *Options) { o.DryRun = true })
	rep, err := e.Run(context.Background(), plan.Plan{Items: []plan.Item{
		{Source: mustRef(t, src.Host+"/a/b:v1"), Dests: []ref.Ref{mustRef(t, dst.Host+"/c/d:v1")}}}})
	if err != nil {
		t.Fatal(err)
	}
	it := rep.Items[0]
	if it.Status != StatusPlanned || it.Digest != dig || it.Size <= 0 {
		t.Errorf("dry run item: %+v", it)
	}
	for k := range cnt.counts {
		if strings.HasPrefix(k, "PUT") || strings.HasPrefix(k, "POST") {
			t.Errorf("dry run made %s requests", k)
		}
	}
}

var testLogLevel = func() slog.Level {
	if os.Getenv("ENGINE_DEBUG") != "" {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}()

// syncBuffer is a bytes.Buffer safe for the progress goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestProgressLinesWhenNotATerminal(t *testing.T) {
	src := regtest.Start(t)
	dst := regtest.Start(t)
	img, _ := synth.Image(111, synth.WithLayers(2), synth.WithLayerSize(2<<20))
	push(t, img, src.Host+"/a/b:v1")
	var out syncBuffer
	// A slow destination makes the copy outlast a few progress ticks.
	e := newTestEngine(t, nil, func(o *Options) { o.Progress = &out; o.ProgressInterval = 5 * time.Millisecond; o.RateLimit = 20 })
	if _, err := e.Run(context.Background(), plan.Plan{Items: []plan.Item{
		{Source: mustRef(t, src.Host+"/a/b:v1"), Dests: []ref.Ref{mustRef(t, dst.Host+"/a/b:v1")}}}}); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	if !strings.Contains(s, "msg=progress") || !strings.Contains(s, "images=") || !strings.Contains(s, "MB/s=") {
		t.Errorf("progress output %q lacks progress lines", s)
	}
}

// TestSameRegistryCopyMountsFromSource: copying between repositories of one
// registry moves no blob bytes; every blob is mounted from the source.
func TestSameRegistryCopyMountsFromSource(t *testing.T) {
	reg := regtest.Start(t)
	idx, _ := synth.Index(121, []string{"linux/amd64", "linux/arm64"})
	d := push(t, idx, reg.Host+"/team/app:v1")
	cnt := newCounter(defaultTransport())
	e := newTestEngine(t, cnt, nil)
	rep, err := e.Run(context.Background(), plan.Plan{Items: []plan.Item{
		{Source: mustRef(t, reg.Host+"/team/app:v1"), Dests: []ref.Ref{mustRef(t, reg.Host+"/release/app:v1")}}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := headDigest(t, reg.Host+"/release/app:v1"); got != d {
		t.Errorf("digest %s, want %s", got, d)
	}
	validateRemote(t, reg.Host+"/release/app:v1")
	blobs := len(blobsOf(t, idx))
	if len(cnt.uploads) != 0 || cnt.counts["GET blob"] != 0 {
		t.Errorf("%d blobs uploaded, %d downloaded; want none", len(cnt.uploads), cnt.counts["GET blob"])
	}
	if cnt.mounts == 0 || rep.Stats.BlobsMounted != int64(cnt.mounts) || rep.Stats.Bytes != 0 {
		t.Errorf("mounts %d (stats %d, of %d blob refs), bytes %d", cnt.mounts, rep.Stats.BlobsMounted, blobs, rep.Stats.Bytes)
	}
}

// TestSmallRegistryLimitDoesNotDeadlock: a same-registry copy whose mounts
// the registry refuses streams each blob out of and back into one host;
// with only two request slots per host that must still finish.
func TestSmallRegistryLimitDoesNotDeadlock(t *testing.T) {
	noMount := func(_ *registry.Server, h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if q := r.URL.Query(); q.Get("mount") != "" {
				q.Del("mount")
				q.Del("from")
				r.URL.RawQuery = q.Encode()
			}
			h.ServeHTTP(w, r)
		})
	}
	reg := regtest.Start(t, regtest.WithWrap(noMount))
	idx, _ := synth.Index(171, []string{"linux/amd64", "linux/arm64", "linux/s390x"}, synth.WithLayers(3))
	d := push(t, idx, reg.Host+"/team/app:v1")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e := newTestEngine(t, nil, func(o *Options) { o.MaxPerRegistry = 2; o.ParallelBlobs = 8 })
	if _, err := e.Run(ctx, plan.Plan{Items: []plan.Item{
		{Source: mustRef(t, reg.Host+"/team/app:v1"), Dests: []ref.Ref{mustRef(t, reg.Host+"/release/app:v1")}}}}); err != nil {
		t.Fatal(err)
	}
	if got := headDigest(t, reg.Host+"/release/app:v1"); got != d {
		t.Errorf("digest %s, want %s", got, d)
	}
}
