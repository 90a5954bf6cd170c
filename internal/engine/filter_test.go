package engine

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/registry"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

func childDigests(t testing.TB, idx v1.ImageIndex) map[string]string {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range im.Manifests {
		out[platformString(d.Platform)] = d.Digest.String()
	}
	return out
}

func manifestExists(t testing.TB, reference string) bool {
	t.Helper()
	r, err := name.ParseReference(reference, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	_, err = remote.Head(r)
	return err == nil
}

func TestFilterByOS(t *testing.T) {
	src := regtest.Start(t)
	dst := regtest.Start(t)
	idx, _ := synth.Index(71, []string{"linux/amd64", "linux/arm64", "linux/ppc64le"})
	orig := push(t, idx, src.Host+"/a/multi:v1")
	children := childDigests(t, idx)

	run := func(filter string, keep bool, dest string) (*Report, error) {
		e := newTestEngine(t, nil, func(o *Options) { o.FilterByOS = filter; o.KeepManifestList = keep })
		return e.Run(context.Background(), plan.Plan{Items: []plan.Item{
			{Source: mustRef(t, src.Host+"/a/multi:v1"), Dests: []ref.Ref{mustRef(t, dst.Host+"/"+dest)}}}})
	}

	t.Run("one match pushes the single manifest", func(t *testing.T) {
		rep, err := run("linux/arm64", false, "one/multi:v1")
		if err != nil {
			t.Fatal(err)
		}
		if got := headDigest(t, dst.Host+"/one/multi:v1"); got != children["linux/arm64"] {
			t.Errorf("digest %s, want the arm64 child %s", got, children["linux/arm64"])
		}
		if rep.Items[0].Dests[0].Digest != children["linux/arm64"] || rep.Items[0].Digest != orig {
			t.Errorf("report: source %s dest %s", rep.Items[0].Digest, rep.Items[0].Dests[0].Digest)
		}
		validateRemote(t, dst.Host+"/one/multi:v1")
	})

	t.Run("several matches push a smaller list", func(t *testing.T) {
		if _, err := run("linux/(amd64|arm64)", false, "two/multi:v1"); err != nil {
			t.Fatal(err)
		}
		r, _ := name.ParseReference(dst.Host+"/two/multi:v1", name.Insecure)
		got, err := remote.Index(r)
		if err != nil {
			t.Fatal(err)
		}
		gc := childDigests(t, got)
		if len(gc) != 2 || gc["linux/amd64"] != children["linux/amd64"] || gc["linux/arm64"] != children["linux/arm64"] {
			t.Errorf("children %v, want amd64 and arm64 of %v", gc, children)
		}
		if h, _ := got.Digest(); h.String() == orig {
			t.Error("a smaller list must have a new digest")
		}
		validateRemote(t, dst.Host+"/two/multi:v1")
	})

	t.Run("keep manifest list pushes the original, sparse", func(t *testing.T) {
		if _, err := run("linux/ppc64le", true, "keep/multi:v1"); err != nil {
			t.Fatal(err)
		}
		if got := headDigest(t, dst.Host+"/keep/multi:v1"); got != orig {
			t.Errorf("digest %s, want original %s", got, orig)
		}
		if !manifestExists(t, dst.Host+"/keep/multi@"+children["linux/ppc64le"]) {
			t.Error("matching child missing")
		}
		if manifestExists(t, dst.Host+"/keep/multi@"+children["linux/amd64"]) {
			t.Error("non-matching child copied")
		}
	})

	t.Run("a full run completes a sparse list", func(t *testing.T) {
		rep, err := run("", false, "keep/multi:v1")
		if err != nil {
			t.Fatal(err)
		}
		for p, c := range children {
			if !manifestExists(t, dst.Host+"/keep/multi@"+c) {
				t.Errorf("child %s still missing after a full run", p)
			}
		}
		if rep.Items[0].Status != StatusCopied {
			t.Errorf("status %s, want copied", rep.Items[0].Status)
		}
		validateRemote(t, dst.Host+"/keep/multi:v1")
	})

	t.Run("no match names the platforms", func(t *testing.T) {
		_, err := run("windows/.*", false, "none/multi:v1")
		if err == nil || !strings.Contains(err.Error(), "linux/ppc64le") || !strings.Contains(err.Error(), "windows/.*") {
			t.Errorf("err = %v", err)
		}
	})

	t.Run("single-platform sources pass unfiltered", func(t *testing.T) {
		img, _ := synth.Image(72)
		d := push(t, img, src.Host+"/a/single:v1")
		e := newTestEngine(t, nil, func(o *Options) { o.FilterByOS = "linux/arm64" })
		if _, err := e.Run(context.Background(), plan.Plan{Items: []plan.Item{
			{Source: mustRef(t, src.Host+"/a/single:v1"), Dests: []ref.Ref{mustRef(t, dst.Host+"/s/single:v1")}}}}); err != nil {
			t.Fatal(err)
		}
		if got := headDigest(t, dst.Host+"/s/single:v1"); got != d {
			t.Errorf("digest %s, want %s", got, d)
		}
	})

	if _, err := New(Options{FilterByOS: "linux/(amd64"}); err == nil {
		t.Error("bad regex accepted")
	}
}

// TestInterruptedDownloadResumesWithRange cuts the source's blob response
// in the middle, twice: the copy must complete, verify, upload the blob
// once, and continue with Range requests instead of starting over.
func TestInterruptedDownloadResumesWithRange(t *testing.T) {
	testInterruptedDownload(t, true)
}

// TestInterruptedDownloadResumesWithoutRangeSupport: a source that ignores
// Range answers 200 with the whole blob; the reader skips what it already
// delivered and the stream stays correct.
func TestInterruptedDownloadResumesWithoutRangeSupport(t *testing.T) {
	testInterruptedDownload(t, false)
}

func testInterruptedDownload(t *testing.T, rangeOK bool) {
	img, _ := synth.Image(81, synth.WithLayers(1), synth.WithLayerSize(3<<20))
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	var cuts atomic.Int32
	var mu sync.Mutex
	var ranges []string
	wrap := func(_ *registry.Server, h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+ld.String()) {
				mu.Lock()
				ranges = append(ranges, r.Header.Get("Range"))
				mu.Unlock()
				if !rangeOK {
					r.Header.Del("Range")
				}
				if cuts.Add(1) <= 2 {
					h.ServeHTTP(&cutWriter{ResponseWriter: w, left: 1 << 20}, r)
					return
				}
			}
			h.ServeHTTP(w, r)
		})
	}
	src := regtest.Start(t, regtest.WithWrap(wrap))
	dst := regtest.Start(t)
	d := push(t, img, src.Host+"/a/b:v1")
	cnt := newCounter(defaultTransport())
	e := newTestEngine(t, cnt, nil)
	saved := retryBase
	retryBase = 1 // do not sleep in the test
	defer func() { retryBase = saved }()
	if _, err := e.Run(context.Background(), plan.Plan{Items: []plan.Item{
		{Source: mustRef(t, src.Host+"/a/b:v1"), Dests: []ref.Ref{mustRef(t, dst.Host+"/a/b:v1")}}}}); err != nil {
		t.Fatal(err)
	}
	if got := headDigest(t, dst.Host+"/a/b:v1"); got != d {
		t.Errorf("digest %s, want %s", got, d)
	}
	validateRemote(t, dst.Host+"/a/b:v1")
	mu.Lock()
	defer mu.Unlock()
	if len(ranges) != 3 || ranges[0] != "" || !strings.HasPrefix(ranges[1], "bytes=") || !strings.HasPrefix(ranges[2], "bytes=") {
		t.Errorf("source blob requests had Range headers %q; want a first full GET then two resumes", ranges)
	}
	if n := len(cnt.uploads[ld.String()]); n != 1 {
		t.Errorf("layer uploaded %d times, want 1 (the resume must be invisible to the destination)", n)
	}
}

// cutWriter lets left bytes of the body through, then aborts the response
// (the server closes the connection mid-body).
type cutWriter struct {
	http.ResponseWriter
	left int
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if len(p) > c.left {
		c.ResponseWriter.Write(p[:c.left])
		if f, ok := c.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		panic(http.ErrAbortHandler)
	}
	c.left -= len(p)
	return c.ResponseWriter.Write(p)
}
