package engine

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/time/rate"
)

// The blob path talks plain HTTP to registries (HEAD, mount, POST + one
// streaming monolithic PUT with Content-Length, GET with Range) instead of
// going through a generic image library: that is what lets a blob stream
// from the source GET body straight into the destination PUT body, hashed on
// the way through, with no temp file and no second pass. Authentication
// (basic, bearer token exchange and refresh on scope challenges) is
// go-containerregistry's transport, wrapped around our limiter.

// acceptManifests is every manifest media type the engine copies.
var acceptManifests = strings.Join([]string{
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.docker.distribution.manifest.v2+json",
	"application/vnd.docker.distribution.manifest.v1+prettyjws",
	"application/vnd.docker.distribution.manifest.v1+json",
}, ", ")

func defaultTransport() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	// Many parallel blob streams to one host: keep their connections alive
	// instead of re-dialling (the default keeps only 2 idle per host).
	t.MaxIdleConnsPerHost = 64
	t.MaxIdleConns = 256
	t.ResponseHeaderTimeout = 2 * time.Minute
	return t
}

// baseTransport is Options.Transport tuned for blob streaming, with TLS
// verification off when Options.Insecure. Built once per Engine.
func (e *Engine) baseTransport() http.RoundTripper {
	e.baseOnce.Do(func() {
		e.base = e.opts.Transport
		t, ok := e.base.(*http.Transport)
		if !ok {
			return // a caller's own RoundTripper is used as it is
		}
		t = t.Clone()
		if e.opts.Insecure {
			if t.TLSClientConfig == nil {
				t.TLSClientConfig = &tls.Config{}
			}
			t.TLSClientConfig.InsecureSkipVerify = true
		}
		// The default 4 KiB connection buffers turn a streamed blob PUT
		// into one write syscall per 4 KiB; large buffers cut the
		// syscalls (and CPU on a busy machine) by an order of magnitude.
		// 64 KiB, not more: every connection holds both buffers for its
		// life, and a catalog of small images keeps 30-70 connections
		// open (256 KiB buffers were a third of the live heap at 2000
		// images: heap goal 87 MB -> 55 MB with 64 KiB).
		t.WriteBufferSize = max(t.WriteBufferSize, 64<<10)
		t.ReadBufferSize = max(t.ReadBufferSize, 64<<10)
		t.MaxIdleConnsPerHost = max(t.MaxIdleConnsPerHost, 64)
		e.base = t
	})
	return e.base
}

// hostPool holds one client per registry host, created on first use.
type hostPool struct {
	e     *Engine
	mu    sync.Mutex
	hosts map[string]*hostEntry
	lims  map[string]*hostLimit
}

type hostEntry struct {
	once sync.Once
	c    *hostClient
	err  error
}

func newHostPool(e *Engine) *hostPool {
	return &hostPool{e: e, hosts: map[string]*hostEntry{}, lims: map[string]*hostLimit{}}
}

// hostClient talks to one registry.
type hostClient struct {
	host   string
	scheme string
	http   *http.Client
	e      *Engine

	// Whether the registry takes a blob in its upload POST (OCI
	// single-request upload): learnt from the first small upload, which
	// runs alone (monoMu) so the others know before they send.
	monoMu    sync.Mutex
	monoState atomic.Int32 // monoUnknown, monoYes, monoNo
	// Whether the registry has the referrers API: learnt from the first
	// query, which runs alone (refMu) so a registry without it is asked
	// once, not once per image in flight.
	refMu    sync.Mutex
	refState atomic.Int32 // monoUnknown, monoYes, monoNo
	// fallbackMu serialises read-modify-write of referrers tags
	// (repo + "@" + subject → *sync.Mutex): two referrers of one subject
	// written at once must not drop each other from the index.
	fallbackMu sync.Map
}

const (
	monoUnknown int32 = iota
	monoYes
	monoNo
)

// smallBlobMax is the size up to which a blob is read into memory (and
// verified) before it is uploaded: it is sent without a HEAD first, in the
// POST itself where the registry allows it, and from memory on a retry.
// 256 KiB is also what Go's HTTP server (and so distribution) reads and
// discards of a body its handler ignored, keeping the connection: a
// registry without single-request uploads ignores the first probe's body.
const smallBlobMax = 256 << 10

func isLoopback(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.Trim(h, "[]")
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func (p *hostPool) get(ctx context.Context, host string) (*hostClient, error) {
	p.mu.Lock()
	he := p.hosts[host]
	if he == nil {
		he = &hostEntry{}
		p.hosts[host] = he
	}
	p.mu.Unlock()
	he.once.Do(func() { he.c, he.err = p.dial(ctx, host) })
	if he.err != nil {
		// Do not cache a failure caused by a cancelled context or a
		// transient outage for the rest of a long run: let the next caller
		// try again.
		p.mu.Lock()
		if p.hosts[host] == he {
			delete(p.hosts, host)
		}
		p.mu.Unlock()
	}
	return he.c, he.err
}

// limit returns the per-host request limiter.
func (p *hostPool) limit(host string) *hostLimit {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.lims[host]
	if l == nil {
		l = &hostLimit{sem: make(chan struct{}, p.e.opts.MaxPerRegistry)}
		if p.e.opts.RateLimit > 0 {
			burst := int(p.e.opts.RateLimit)
			if burst < 1 {
				burst = 1
			}
			l.rate = rate.NewLimiter(rate.Limit(p.e.opts.RateLimit), burst)
		}
		p.lims[host] = l
	}
	return l
}

func (p *hostPool) dial(ctx context.Context, host string) (*hostClient, error) {
	insecure := p.e.opts.Insecure
	limited := &limitTransport{inner: p.e.baseTransport(), pool: p}
	var nopts []name.Option
	if insecure || isLoopback(host) {
		// Allows the plain-HTTP fallback after HTTPS fails, as docker does
		// for loopback registries.
		nopts = append(nopts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, nopts...)
	if err != nil {
		return nil, fmt.Errorf("registry host %q: %w", host, err)
	}
	var pr *transport.Challenge
	err = retry(ctx, p.e.opts.RetryTimes, p.e.log, "ping "+host, func() error {
		var perr error
		pr, perr = transport.Ping(ctx, reg, limited)
		return perr
	})
	if err != nil {
		return nil, fmt.Errorf("contacting registry %s: %w", host, err)
	}
	scheme := "https"
	if pr.Insecure {
		scheme = "http"
	}
	auth, err := p.e.opts.Keychain.Resolve(reg)
	if err != nil {
		return nil, fmt.Errorf("credentials for %s: %w", host, err)
	}
	if auth == nil {
		auth = authn.Anonymous
	}
	var rt http.RoundTripper
	if strings.EqualFold(pr.Scheme, "bearer") {
		// Token registries: go-containerregistry pings once more and
		// fetches the first token.
		rt, err = transport.NewWithContext(ctx, reg, auth, limited, nil)
	} else {
		// Anonymous or basic auth: the ping above told us all there is to
		// know; do not ping a second time.
		rt, err = transport.FromToken(reg, auth, limited, pr, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("authenticating to %s: %w", host, err)
	}
	// RegistryStr maps docker.io to the host that serves its API
	// (index.docker.io); URLs must use that one.
	return &hostClient{host: reg.RegistryStr(), scheme: scheme, e: p.e,
		http: &http.Client{Transport: rt, CheckRedirect: checkRedirect}}, nil
}

// checkRedirect follows blob redirects (S3/CDN storage) but never forwards
// credentials to another host; go-containerregistry's transport only adds
// them for the registry host.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	return nil
}

// hostLimit bounds concurrent requests and the request rate of one host.
type hostLimit struct {
	sem  chan struct{}
	rate *rate.Limiter
}

// limitTransport holds a host slot from the request until its response
// body is closed (or fully read), so streaming bodies count as busy.
type limitTransport struct {
	inner http.RoundTripper
	pool  *hostPool
}

func (t *limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	l := t.pool.limit(req.URL.Host)
	ctx := req.Context()
	if l.rate != nil {
		if err := l.rate.Wait(ctx); err != nil {
			return nil, err
		}
	}
	select {
	case l.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	resp, err := t.inner.RoundTrip(t.pool.e.reqs.count(req))
	if err != nil {
		<-l.sem
		return nil, err
	}
	resp.Body = &releaseBody{ReadCloser: resp.Body, release: func() { <-l.sem }}
	return resp, nil
}

type releaseBody struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (b *releaseBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.once.Do(b.release)
	}
	return n, err
}

func (b *releaseBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}

// httpError is a registry response with an unexpected status.
type httpError struct {
	Method     string
	URL        string
	Status     int
	Body       string
	RetryAfter time.Duration
}

func (e *httpError) Error() string {
	msg := registryErrors(e.Body)
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	if msg != "" {
		return fmt.Sprintf("%s %s: %s: %s", e.Method, e.URL, http.StatusText(e.Status), msg)
	}
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.URL, e.Status, http.StatusText(e.Status))
}

func (e *httpError) Unwrap() error {
	if e.Status == http.StatusNotFound {
		return ErrNotFound
	}
	return nil
}

// registryErrors renders a registry's JSON error body ({"errors":[{code,
// message, detail}]}) as "CODE: message (detail)"; other bodies verbatim.
func registryErrors(body string) string {
	var doc struct {
		Errors []struct {
			Code    string          `json:"code"`
			Message string          `json:"message"`
			Detail  json.RawMessage `json:"detail"`
		} `json:"errors"`
	}
	if json.Unmarshal([]byte(body), &doc) != nil || len(doc.Errors) == 0 {
		return strings.TrimSpace(body)
	}
	var parts []string
	for _, e := range doc.Errors {
		p := e.Code
		if e.Message != "" {
			p += ": " + e.Message
		}
		if d := strings.Trim(string(e.Detail), `"`); d != "" && d != "null" {
			p += " (" + d + ")"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "; ")
}

func newHTTPError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	drainClose(resp.Body)
	he := &httpError{Method: resp.Request.Method, URL: redactURL(resp.Request.URL), Status: resp.StatusCode, Body: string(b)}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		if secs, err := time.ParseDuration(strings.TrimSpace(ra) + "s"); err == nil {
			he.RetryAfter = secs
		} else if t, err := http.ParseTime(ra); err == nil {
			he.RetryAfter = time.Until(t)
		}
	}
	return he
}

// redactErr drops the query from the URL in a transport error: upload
// state tokens are noise and signed blob URLs are secrets.
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil && u.RawQuery != "" {
			u.RawQuery = ""
			c := *ue
			c.URL = u.String()
			return &c
		}
	}
	return err
}

// redactURL drops the query (upload state tokens, signed URLs) from errors.
func redactURL(u *url.URL) string {
	c := *u
	c.RawQuery = ""
	return c.String()
}

func (c *hostClient) url(repo, kind, ref string) string {
	return fmt.Sprintf("%s://%s/v2/%s/%s/%s", c.scheme, c.host, repo, kind, ref)
}

// send does one request; bodyless requests are retried on transient errors.
// ok lists the statuses returned to the caller; others become httpError.
func (c *hostClient) send(ctx context.Context, method, u string, hdr http.Header, ok ...int) (*http.Response, error) {
	var resp *http.Response
	err := retry(ctx, c.e.opts.RetryTimes, c.e.log, method+" "+u, func() error {
		req, err := http.NewRequestWithContext(ctx, method, u, nil)
		if err != nil {
			return permanent(err)
		}
		for k, v := range hdr {
			req.Header[k] = v
		}
		r, err := c.http.Do(req)
		if err != nil {
			return redactErr(err)
		}
		for _, s := range ok {
			if r.StatusCode == s {
				resp = r
				return nil
			}
		}
		return newHTTPError(r)
	})
	// Retries are spent: callers that retry a larger operation must not
	// multiply them.
	return resp, permanent(err)
}

// manifestInfo is what a HEAD or GET of a manifest tells.
type manifestInfo struct {
	Digest    string
	MediaType string
	Size      int64
}

// headManifest returns found=false for a 404.
func (c *hostClient) headManifest(ctx context.Context, repo, reference string) (manifestInfo, bool, error) {
	resp, err := c.send(ctx, http.MethodHead, c.url(repo, "manifests", reference),
		http.Header{"Accept": {acceptManifests}}, http.StatusOK, http.StatusNotFound)
	if err != nil {
		return manifestInfo{}, false, err
	}
	drainClose(resp.Body)
	if resp.StatusCode == http.StatusNotFound {
		return manifestInfo{}, false, nil
	}
	return manifestInfo{Digest: resp.Header.Get("Docker-Content-Digest"), MediaType: resp.Header.Get("Content-Type"),
		Size: resp.ContentLength}, true, nil
}

// maxManifestSize bounds manifest reads: real manifests are kilobytes; a
// runaway body must not exhaust memory.
const maxManifestSize = 8 << 20

func (c *hostClient) getManifest(ctx context.Context, repo, reference string) ([]byte, string, error) {
	var data []byte
	var mt string
	err := retry(ctx, c.e.opts.RetryTimes, c.e.log, "GET manifest "+repo+":"+reference, func() error {
		resp, err := c.send(ctx, http.MethodGet, c.url(repo, "manifests", reference),
			http.Header{"Accept": {acceptManifests}}, http.StatusOK)
		if err != nil {
			var he *httpError
			if errors.As(err, &he) && he.Status == http.StatusNotFound {
				return permanent(err)
			}
			return permanent(err) // send already retried
		}
		defer drainClose(resp.Body)
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestSize+1))
		if err != nil {
			return err // a body cut mid-way is transient: retried
		}
		if len(b) > maxManifestSize {
			return permanent(fmt.Errorf("manifest %s@%s larger than %d bytes", repo, reference, maxManifestSize))
		}
		data, mt = b, resp.Header.Get("Content-Type")
		return nil
	})
	return data, mt, err
}

func (c *hostClient) putManifest(ctx context.Context, repo, reference string, data []byte, mediaType string) error {
	_, err := c.putManifestAck(ctx, repo, reference, data, mediaType)
	return err
}

// putManifestAck puts a manifest and reports whether the registry answered
// with OCI-Subject: an OCI 1.1 registry that indexed the manifest's subject
// for its referrers API says so; one that did not leaves the referrers tag
// to the client.
func (c *hostClient) putManifestAck(ctx context.Context, repo, reference string, data []byte, mediaType string) (subjectAck bool, err error) {
	err = retry(ctx, c.e.opts.RetryTimes, c.e.log, "PUT manifest "+repo+":"+reference, func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.url(repo, "manifests", reference), strings.NewReader(string(data)))
		if err != nil {
			return permanent(err)
		}
		req.Header.Set("Content-Type", mediaType)
		req.ContentLength = int64(len(data))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(string(data))), nil }
		resp, err := c.http.Do(req)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
			return newHTTPError(resp)
		}
		drainClose(resp.Body)
		subjectAck = resp.Header.Get("OCI-Subject") != ""
		return nil
	})
	return subjectAck, err
}

// hasBlob HEADs a blob in repo.
func (c *hostClient) hasBlob(ctx context.Context, repo, digest string) (bool, error) {
	resp, err := c.send(ctx, http.MethodHead, c.url(repo, "blobs", digest), nil, http.StatusOK, http.StatusNotFound)
	if err != nil {
		return false, err
	}
	drainClose(resp.Body)
	return resp.StatusCode == http.StatusOK, nil
}

// getBlob opens a blob for reading from offset. It returns the body and the
// offset the body actually starts at (0 when the server ignored Range).
func (c *hostClient) getBlob(ctx context.Context, repo, digest string, offset int64) (io.ReadCloser, int64, error) {
	hdr := http.Header{}
	if offset > 0 {
		hdr.Set("Range", fmt.Sprintf("bytes=%d-", offset))
	}
	resp, err := c.send(ctx, http.MethodGet, c.url(repo, "blobs", digest), hdr, http.StatusOK, http.StatusPartialContent)
	if err != nil {
		return nil, 0, err
	}
	if resp.StatusCode == http.StatusPartialContent {
		return resp.Body, offset, nil
	}
	return resp.Body, 0, nil
}

// startUpload POSTs an upload; with from != "" it first asks for a
// cross-repository mount. mounted reports a 201 (done); otherwise location
// is where to PUT the content.
func (c *hostClient) startUpload(ctx context.Context, repo, digest, from string) (mounted bool, location string, err error) {
	u := fmt.Sprintf("%s://%s/v2/%s/blobs/uploads/", c.scheme, c.host, repo)
	if from != "" {
		u += "?mount=" + url.QueryEscape(digest) + "&from=" + url.QueryEscape(from)
	}
	resp, err := c.send(ctx, http.MethodPost, u, nil, http.StatusCreated, http.StatusAccepted)
	if err != nil {
		return false, "", err
	}
	drainClose(resp.Body)
	if resp.StatusCode == http.StatusCreated {
		return true, "", nil
	}
	loc, err := uploadLocation(resp)
	return false, loc, err
}

// uploadLocation is the absolute URL of the upload a 202 opened.
func uploadLocation(resp *http.Response) (string, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", fmt.Errorf("POST %s: registry returned no upload Location", redactURL(resp.Request.URL))
	}
	lu, err := resp.Request.URL.Parse(loc)
	if err != nil {
		return "", fmt.Errorf("upload location %q: %w", loc, err)
	}
	return lu.String(), nil
}

// putBlob finishes an upload with one monolithic PUT streaming body.
func (c *hostClient) putBlob(ctx context.Context, location, digest string, size int64, body io.Reader) error {
	u, err := url.Parse(location)
	if err != nil {
		return permanent(fmt.Errorf("upload location %q: %w", location, err))
	}
	q := u.Query()
	q.Set("digest", digest)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u.String(), io.NopCloser(body))
	if err != nil {
		return permanent(err)
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.http.Do(req)
	if err != nil {
		return redactErr(err)
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
		return newHTTPError(resp)
	}
	drainClose(resp.Body)
	return nil
}

// uploadSmall uploads a small blob held in memory: one POST carrying it
// (?digest=) where the registry supports that, else the POST that opens the
// upload, whose location the caller PUTs data to (created=false).
func (c *hostClient) uploadSmall(ctx context.Context, repo, digest string, data []byte) (created bool, location string, err error) {
	if c.monoState.Load() == monoUnknown {
		c.monoMu.Lock()
		if c.monoState.Load() == monoUnknown {
			created, location, err = c.postBlob(ctx, repo, digest, data)
			var he *httpError
			switch {
			case err == nil && created:
				c.monoState.Store(monoYes)
			case err == nil:
				c.monoState.Store(monoNo)
			case errors.As(err, &he) && !transient(err):
				// Refused outright (some registries reject a body on the
				// POST): never again, upload the ordinary way.
				c.monoState.Store(monoNo)
				created, location, err = c.startUploadPlain(ctx, repo, digest)
			}
			c.monoMu.Unlock()
			c.e.log.Debug("registry single-request blob upload", "host", c.host, "supported", c.monoState.Load() == monoYes)
			return created, location, err
		}
		c.monoMu.Unlock()
	}
	if c.monoState.Load() == monoYes {
		return c.postBlob(ctx, repo, digest, data)
	}
	return c.startUploadPlain(ctx, repo, digest)
}

func (c *hostClient) startUploadPlain(ctx context.Context, repo, digest string) (bool, string, error) {
	_, loc, err := c.startUpload(ctx, repo, digest, "")
	return false, loc, err
}

// postBlob is the single-request upload: POST .../blobs/uploads/?digest=D
// with the blob as the body. 201: stored. 202: the registry ignored the
// body and opened an ordinary upload at location.
func (c *hostClient) postBlob(ctx context.Context, repo, digest string, data []byte) (created bool, location string, err error) {
	u := fmt.Sprintf("%s://%s/v2/%s/blobs/uploads/?digest=%s", c.scheme, c.host, repo, url.QueryEscape(digest))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(data))
	if err != nil {
		return false, "", permanent(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.http.Do(req)
	if err != nil {
		return false, "", redactErr(err)
	}
	switch resp.StatusCode {
	case http.StatusCreated:
		drainClose(resp.Body)
		return true, "", nil
	case http.StatusAccepted:
		drainClose(resp.Body)
		loc, err := uploadLocation(resp)
		return false, loc, err
	}
	return false, "", newHTTPError(resp)
}

// maxTagPages bounds tag-list pagination (1000 tags a page).
const maxTagPages = 1000

// listTags lists the tags of repo, following Link pagination; a repository
// that does not exist has none.
func (c *hostClient) listTags(ctx context.Context, repo string) ([]string, error) {
	var all []string
	next := fmt.Sprintf("%s://%s/v2/%s/tags/list?n=1000", c.scheme, c.host, repo)
	for page := 0; next != "" && page < maxTagPages; page++ {
		resp, err := c.send(ctx, http.MethodGet, next, nil, http.StatusOK, http.StatusNotFound)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode == http.StatusNotFound {
			drainClose(resp.Body)
			return all, nil
		}
		var body struct {
			Tags []string `json:"tags"`
		}
		err = json.NewDecoder(io.LimitReader(resp.Body, maxManifestSize)).Decode(&body)
		drainClose(resp.Body)
		if err != nil {
			return nil, fmt.Errorf("tag list of %s: %w", repo, err)
		}
		all = append(all, body.Tags...)
		next = nextLink(resp, c.scheme+"://"+c.host)
	}
	return all, nil
}

// nextLink is the next page of a paginated list (RFC 5988 Link header,
// relative to base), or "".
func nextLink(resp *http.Response, base string) string {
	l := resp.Header.Get("Link")
	if l == "" {
		return ""
	}
	u, _, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(l), "<"), ">")
	if !ok || !strings.Contains(l, `rel="next"`) {
		return ""
	}
	if strings.HasPrefix(u, "/") {
		return base + u
	}
	return u
}

// referrers lists the manifests of repo whose subject is digest, with the
// OCI 1.1 referrers API; supported is false when the registry lacks the API
// (404 on the endpoint), for the caller to try the tag-schema fallback.
func (c *hostClient) referrers(ctx context.Context, repo, digest string) (descs []v1.Descriptor, supported bool, err error) {
	if c.refState.Load() == monoUnknown {
		c.refMu.Lock()
		defer c.refMu.Unlock()
	}
	if c.refState.Load() == monoNo {
		return nil, false, nil
	}
	resp, err := c.send(ctx, http.MethodGet, c.url(repo, "referrers", digest),
		http.Header{"Accept": {string(types.OCIImageIndex)}}, http.StatusOK, http.StatusNotFound)
	if err != nil {
		var he *httpError
		if errors.As(err, &he) && (he.Status == http.StatusBadRequest || he.Status == http.StatusMethodNotAllowed) {
			return nil, false, nil
		}
		return nil, false, err
	}
	defer drainClose(resp.Body)
	if resp.StatusCode == http.StatusNotFound {
		// A registry with the API answers 200 and an empty list for a
		// subject without referrers: 404 means it lacks the API, and is
		// not asked again by this engine.
		c.refState.Store(monoNo)
		return nil, false, nil
	}
	c.refState.Store(monoYes)
	var im v1.IndexManifest
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxManifestSize)).Decode(&im); err != nil {
		return nil, true, fmt.Errorf("referrers of %s@%s: %w", repo, digest, err)
	}
	return im.Manifests, true, nil
}

// drainClose reads what is left of a response body (up to 64 KiB: error
// documents, the newline after a JSON list) before closing it. An HTTP/1.1
// connection whose body is closed unread is not reused: every 404 of a
// tag list or a refused mount would otherwise cost a new TCP connection
// and its 512 KiB of buffers.
func drainClose(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 64<<10))
	body.Close()
}
