// Package e2e holds airlock's end-to-end tests: mirrors through a
// fault-injecting proxy, and crash (kill -9) and resume of the real binary,
// always against the real in-process registry.
//
// This file is the fault-injecting reverse proxy. It listens on 127.0.0.1
// only, forwards every request to one registry, counts what crosses it
// (requests, blob bytes down, upload bytes up), and injects a bounded number
// of faults chosen by rules: TCP resets in the middle of a blob body, HTTP
// 500/503, and 429 with Retry-After. Faults are bounded so a correct client
// always gets through; counts are exposed so a test can prove the faults
// really happened (a fault test that injected nothing proves nothing).
package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Action is what a rule does to a request it fires on.
type Action int

const (
	// ResetMidBody forwards the request, sends the status, headers and half
	// of the body, then closes the connection with a TCP reset.
	ResetMidBody Action = iota
	// Status answers with Rule.Code without forwarding.
	Status
	// TooManyRequests answers 429 with "Retry-After: Rule.RetryAfter".
	TooManyRequests
)

// Rule injects a fault on every Every-th request Match accepts, at most Times
// times.
type Rule struct {
	Name       string
	Match      func(*http.Request) bool
	Every      int // 1 = every matching request
	Times      int
	Action     Action
	Code       int // for Status
	RetryAfter int // seconds, for TooManyRequests

	seen  int
	fired int
}

var (
	blobPathRE     = regexp.MustCompile(`^/v2/.+/blobs/sha256:[a-f0-9]{64}$`)
	uploadPathRE   = regexp.MustCompile(`^/v2/.+/blobs/uploads/`)
	manifestPathRE = regexp.MustCompile(`^/v2/.+/manifests/[^/]+$`)
)

// IsBlobGet matches downloads of blob bodies.
func IsBlobGet(r *http.Request) bool {
	return r.Method == http.MethodGet && blobPathRE.MatchString(r.URL.Path)
}

// IsBlobHead matches blob existence checks.
func IsBlobHead(r *http.Request) bool {
	return r.Method == http.MethodHead && blobPathRE.MatchString(r.URL.Path)
}

// IsUpload matches blob upload requests (POST, PATCH, PUT under /blobs/uploads/).
func IsUpload(r *http.Request) bool { return uploadPathRE.MatchString(r.URL.Path) }

// IsUploadData matches the upload requests that carry blob bytes (PUT,
// PATCH, and the single-request upload: POST with ?digest=).
func IsUploadData(r *http.Request) bool {
	return IsUpload(r) && (r.Method == http.MethodPut || r.Method == http.MethodPatch ||
		(r.Method == http.MethodPost && r.URL.Query().Get("digest") != ""))
}

// IsManifest matches any manifest request.
func IsManifest(r *http.Request) bool { return manifestPathRE.MatchString(r.URL.Path) }

// IsManifestHead matches manifest existence checks.
func IsManifestHead(r *http.Request) bool { return r.Method == http.MethodHead && IsManifest(r) }

// IsManifestPut matches manifest writes.
func IsManifestPut(r *http.Request) bool { return r.Method == http.MethodPut && IsManifest(r) }

// Counts is what crossed the proxy.
type Counts struct {
	Requests     int64
	BlobGets     int64
	BlobGetBytes int64 // body bytes of blob GET responses sent to the client
	BlobHeads    int64
	UploadReqs   int64 // POST/PATCH/PUT under /blobs/uploads/
	UploadBytes  int64 // request body bytes of PATCH/PUT uploads forwarded
	Mounts       int64 // POST with ?mount=
	ManifestGets int64 // GET and HEAD of manifests
	ManifestPuts int64
	Faults       map[string]int // rule name -> times fired
	// Uploaded is how many times each blob digest was uploaded completely
	// (a PUT that closed an upload with 201 Created).
	Uploaded map[string]int
}

// Proxy is a running fault-injecting proxy.
type Proxy struct {
	// Host is "127.0.0.1:PORT", to use in image references.
	Host string

	srv    *httptest.Server
	target *url.URL
	client *http.Client

	mu    sync.Mutex
	rules []*Rule
	// uploaded counts completed uploads (PUT answered 201) per digest.
	uploaded map[string]int

	requests, blobGets, blobGetBytes, blobHeads atomic.Int64
	uploadReqs, uploadBytes, mounts             atomic.Int64
	manifestGets, manifestPuts                  atomic.Int64
	inflight                                    atomic.Int64

	// onBytes, when set, is called after blob bytes cross the proxy in
	// either direction with the running total of both; crash tests use it
	// to kill the client at an exact point of the transfer.
	onBytes atomic.Pointer[func(total int64)]
}

// NewProxy starts a proxy on 127.0.0.1 forwarding to the registry at
// targetHost ("127.0.0.1:PORT", plain HTTP). Close it when done.
func NewProxy(targetHost string, rules ...*Rule) (*Proxy, error) {
	h, _, err := net.SplitHostPort(targetHost)
	if err != nil {
		return nil, fmt.Errorf("proxy target %q: %w", targetHost, err)
	}
	if ip := net.ParseIP(h); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("proxy target %q is not a loopback address; the fault proxy only talks to 127.0.0.0/8", targetHost)
	}
	for _, r := range rules {
		if r.Every < 1 {
			r.Every = 1
		}
	}
	p := &Proxy{
		target: &url.URL{Scheme: "http", Host: targetHost},
		rules:  rules,
		client: &http.Client{
			Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64},
			// The registry's redirects go back to the client untouched.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	// httptest.NewServer listens on 127.0.0.1:0.
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	p.Host = p.srv.Listener.Addr().String()
	return p, nil
}

// Close stops the proxy.
func (p *Proxy) Close() { p.srv.Close() }

// OnBytes sets the hook called with the running total of blob bytes (down
// plus up) after each chunk crosses the proxy; nil removes it.
func (p *Proxy) OnBytes(f func(total int64)) {
	if f == nil {
		p.onBytes.Store(nil)
		return
	}
	p.onBytes.Store(&f)
}

// Counts returns a snapshot of the counters.
func (p *Proxy) Counts() Counts {
	c := Counts{
		Requests: p.requests.Load(), BlobGets: p.blobGets.Load(), BlobGetBytes: p.blobGetBytes.Load(),
		BlobHeads: p.blobHeads.Load(), UploadReqs: p.uploadReqs.Load(), UploadBytes: p.uploadBytes.Load(),
		Mounts: p.mounts.Load(), ManifestGets: p.manifestGets.Load(), ManifestPuts: p.manifestPuts.Load(),
		Faults: map[string]int{}, Uploaded: map[string]int{},
	}
	p.mu.Lock()
	for _, r := range p.rules {
		c.Faults[r.Name] += r.fired
	}
	for d, n := range p.uploaded {
		c.Uploaded[d] = n
	}
	p.mu.Unlock()
	return c
}

// ResetCounts zeroes the traffic counters (not the rules' budgets).
func (p *Proxy) ResetCounts() {
	for _, c := range []*atomic.Int64{&p.requests, &p.blobGets, &p.blobGetBytes, &p.blobHeads, &p.uploadReqs, &p.uploadBytes, &p.mounts, &p.manifestGets, &p.manifestPuts} {
		c.Store(0)
	}
}

// pick returns the rule that fires on r, if any, and charges it.
func (p *Proxy) pick(r *http.Request) *Rule {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, rule := range p.rules {
		if rule.fired >= rule.Times || (rule.Match != nil && !rule.Match(r)) {
			continue
		}
		rule.seen++
		if rule.seen%rule.Every != 0 {
			continue
		}
		rule.fired++
		return rule
	}
	return nil
}

func (p *Proxy) count(r *http.Request) {
	p.requests.Add(1)
	switch {
	case IsBlobGet(r):
		p.blobGets.Add(1)
	case IsBlobHead(r):
		p.blobHeads.Add(1)
	case IsUpload(r):
		p.uploadReqs.Add(1)
		if r.Method == http.MethodPost && r.URL.Query().Get("mount") != "" {
			p.mounts.Add(1)
		}
	case IsManifest(r) && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		p.manifestGets.Add(1)
	case IsManifestPut(r):
		p.manifestPuts.Add(1)
	}
}

func (p *Proxy) bytesCrossed() {
	if f := p.onBytes.Load(); f != nil {
		(*f)(p.blobGetBytes.Load() + p.uploadBytes.Load())
	}
}

// WaitIdle waits until no request is being forwarded (up to timeout) and
// reports whether the proxy went idle. After killing a client, the registry
// may still be finishing a request the client sent in full; tests that
// inspect the registry wait for it first.
func (p *Proxy) WaitIdle(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for p.inflight.Load() > 0 {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	p.inflight.Add(1)
	defer p.inflight.Add(-1)
	p.count(r)
	rule := p.pick(r)
	if rule != nil {
		switch rule.Action {
		case Status:
			drain(r)
			http.Error(w, fmt.Sprintf("injected fault %s", rule.Name), rule.Code)
			return
		case TooManyRequests:
			drain(r)
			w.Header().Set("Retry-After", strconv.Itoa(rule.RetryAfter))
			http.Error(w, "injected fault: too many requests", http.StatusTooManyRequests)
			return
		}
	}

	// The upstream request outlives a client that dies mid-request: the
	// registry may still commit what was sent in full, and WaitIdle must
	// cover that.
	out, err := http.NewRequestWithContext(context.WithoutCancel(r.Context()), r.Method, p.target.String()+r.URL.RequestURI(), nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out.Header = r.Header.Clone()
	// Keep the client's Host so the registry writes upload Locations that
	// point back through the proxy.
	out.Host = r.Host
	if r.Body != nil && r.ContentLength != 0 {
		body := io.Reader(r.Body)
		if IsUploadData(r) {
			body = &countingReader{r: r.Body, n: &p.uploadBytes, after: p.bytesCrossed}
		}
		out.Body = io.NopCloser(body)
		out.ContentLength = r.ContentLength
	}
	resp, err := p.client.Do(out)
	if err != nil {
		http.Error(w, "proxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	if IsUploadData(r) && r.Method != http.MethodPatch && resp.StatusCode == http.StatusCreated {
		// a completed upload: PUT, or a single-request POST with the blob
		p.mu.Lock()
		if p.uploaded == nil {
			p.uploaded = map[string]int{}
		}
		p.uploaded[r.URL.Query().Get("digest")]++
		p.mu.Unlock()
	}
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)

	var dst io.Writer = w
	if IsBlobGet(r) && resp.StatusCode < 300 {
		dst = &countingWriter{w: w, n: &p.blobGetBytes, after: p.bytesCrossed}
	}
	if rule != nil && rule.Action == ResetMidBody && resp.ContentLength > 1 {
		_, _ = io.CopyN(dst, resp.Body, resp.ContentLength/2)
		resetConnection(w)
		return
	}
	_, _ = io.Copy(dst, resp.Body)
}

// resetConnection flushes what was written and closes the client connection
// with SO_LINGER 0, so the client sees a connection reset mid-body.
func resetConnection(w http.ResponseWriter) {
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("fault proxy: response writer cannot be hijacked")
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return
	}
	_ = buf.Flush()
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

func drain(r *http.Request) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
	}
}

type countingReader struct {
	r     io.Reader
	n     *atomic.Int64
	after func()
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	if n > 0 {
		c.n.Add(int64(n))
		c.after()
	}
	return n, err
}

type countingWriter struct {
	w     io.Writer
	n     *atomic.Int64
	after func()
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	if n > 0 {
		c.n.Add(int64(n))
		c.after()
	}
	return n, err
}
