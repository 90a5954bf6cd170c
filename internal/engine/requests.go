package engine

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptrace"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// RequestCounts are the HTTP requests a run sent, by kind, and the
// connections it opened. Every attempt counts (a retried request twice), so
// the numbers are what crossed the wire; docs/REQUESTS.md gives the budget
// per image and per blob they are checked against.
type RequestCounts struct {
	Ping         int64 `json:"ping,omitempty"`         // GET /v2/
	Token        int64 `json:"token,omitempty"`        // bearer token exchanges
	BlobHEAD     int64 `json:"blobHead,omitempty"`     // HEAD .../blobs/<digest>
	BlobGET      int64 `json:"blobGet,omitempty"`      // GET .../blobs/<digest>
	BlobPOST     int64 `json:"blobPost,omitempty"`     // POST .../blobs/uploads/ (upload start)
	BlobPOSTBody int64 `json:"blobPostBody,omitempty"` // POST .../blobs/uploads/?digest= (single-request upload)
	BlobMount    int64 `json:"blobMount,omitempty"`    // POST .../blobs/uploads/?mount=&from=
	BlobPUT      int64 `json:"blobPut,omitempty"`      // PUT .../blobs/uploads/<id>?digest=
	BlobPATCH    int64 `json:"blobPatch,omitempty"`    // PATCH .../blobs/uploads/<id>
	ManifestHEAD int64 `json:"manifestHead,omitempty"` // HEAD .../manifests/<ref>
	ManifestGET  int64 `json:"manifestGet,omitempty"`  // GET .../manifests/<ref>
	ManifestPUT  int64 `json:"manifestPut,omitempty"`  // PUT .../manifests/<ref>
	TagList      int64 `json:"tagList,omitempty"`      // GET .../tags/list (cosign tag-style signatures)
	Referrers    int64 `json:"referrers,omitempty"`    // GET .../referrers/<digest> (OCI 1.1)
	Other        int64 `json:"other,omitempty"`        // anything else (redirected blob GETs, tag lists)
	// Connections is the TCP connections dialled; TLSHandshakes the TLS
	// sessions set up on them. With keep-alive (and HTTP/2 over TLS) both
	// stay near the number of concurrent requests, not the request count.
	Connections   int64 `json:"connections,omitempty"`
	TLSHandshakes int64 `json:"tlsHandshakes,omitempty"`
}

// Total is every request (connections are not requests).
func (c RequestCounts) Total() int64 {
	return c.Ping + c.Token + c.Blobs() + c.Manifests() + c.TagList + c.Referrers + c.Other
}

// Blobs is the requests about blobs (checks, reads, uploads, mounts).
func (c RequestCounts) Blobs() int64 {
	return c.BlobHEAD + c.BlobGET + c.BlobPOST + c.BlobPOSTBody + c.BlobMount + c.BlobPUT + c.BlobPATCH
}

// Manifests is the requests about manifests and tags.
func (c RequestCounts) Manifests() int64 { return c.ManifestHEAD + c.ManifestGET + c.ManifestPUT }

func (c RequestCounts) sub(o RequestCounts) RequestCounts {
	return RequestCounts{c.Ping - o.Ping, c.Token - o.Token, c.BlobHEAD - o.BlobHEAD, c.BlobGET - o.BlobGET,
		c.BlobPOST - o.BlobPOST, c.BlobPOSTBody - o.BlobPOSTBody, c.BlobMount - o.BlobMount, c.BlobPUT - o.BlobPUT,
		c.BlobPATCH - o.BlobPATCH, c.ManifestHEAD - o.ManifestHEAD, c.ManifestGET - o.ManifestGET,
		c.ManifestPUT - o.ManifestPUT, c.TagList - o.TagList, c.Referrers - o.Referrers, c.Other - o.Other, c.Connections - o.Connections, c.TLSHandshakes - o.TLSHandshakes}
}

func (c RequestCounts) add(o RequestCounts) RequestCounts {
	var zero RequestCounts
	return c.sub(zero.sub(o))
}

// logAttrs renders the non-zero counts for a log line.
func (c RequestCounts) logAttrs() []any {
	all := []struct {
		k string
		v int64
	}{{"ping", c.Ping}, {"token", c.Token}, {"blobHEAD", c.BlobHEAD}, {"blobGET", c.BlobGET},
		{"blobPOST", c.BlobPOST}, {"blobPOSTBody", c.BlobPOSTBody}, {"blobMount", c.BlobMount},
		{"blobPUT", c.BlobPUT}, {"blobPATCH", c.BlobPATCH}, {"manifestHEAD", c.ManifestHEAD},
		{"manifestGET", c.ManifestGET}, {"manifestPUT", c.ManifestPUT}, {"tagList", c.TagList},
		{"referrers", c.Referrers}, {"other", c.Other},
		{"connections", c.Connections}, {"tlsHandshakes", c.TLSHandshakes}}
	var out []any
	for _, a := range all {
		if a.v != 0 {
			out = append(out, a.k, a.v)
		}
	}
	return out
}

// requestKind indexes hostCounters.n.
type requestKind int

const (
	kindPing requestKind = iota
	kindToken
	kindBlobHEAD
	kindBlobGET
	kindBlobPOST
	kindBlobPOSTBody
	kindBlobMount
	kindBlobPUT
	kindBlobPATCH
	kindManifestHEAD
	kindManifestGET
	kindManifestPUT
	kindTagList
	kindReferrers
	kindOther
	kindConn
	kindTLS
	numKinds
)

// classify names a registry API request by its method and path.
func classify(req *http.Request) requestKind {
	p := req.URL.Path
	switch {
	case p == "/v2/" || p == "/v2":
		return kindPing
	case strings.Contains(p, "/blobs/uploads"):
		switch req.Method {
		case http.MethodPost:
			q := req.URL.Query()
			if q.Get("mount") != "" {
				return kindBlobMount
			}
			if q.Get("digest") != "" {
				return kindBlobPOSTBody
			}
			return kindBlobPOST
		case http.MethodPut:
			return kindBlobPUT
		case http.MethodPatch:
			return kindBlobPATCH
		}
	case strings.HasPrefix(p, "/v2/") && strings.Contains(p, "/blobs/"):
		switch req.Method {
		case http.MethodHead:
			return kindBlobHEAD
		case http.MethodGet:
			return kindBlobGET
		}
	case strings.HasPrefix(p, "/v2/") && strings.Contains(p, "/manifests/"):
		switch req.Method {
		case http.MethodHead:
			return kindManifestHEAD
		case http.MethodGet:
			return kindManifestGET
		case http.MethodPut:
			return kindManifestPUT
		}
	case strings.HasPrefix(p, "/v2/") && strings.HasSuffix(p, "/tags/list") && req.Method == http.MethodGet:
		return kindTagList
	case strings.HasPrefix(p, "/v2/") && strings.Contains(p, "/referrers/") && req.Method == http.MethodGet:
		return kindReferrers
	case req.URL.Query().Has("scope") || req.URL.Query().Has("service") || isTokenForm(req):
		return kindToken
	}
	return kindOther
}

// isTokenForm recognises the OAuth2 token POST (grant_type in a form body),
// which carries its scope in the body rather than the URL.
func isTokenForm(req *http.Request) bool {
	return req.Method == http.MethodPost && strings.HasPrefix(req.Header.Get("Content-Type"), "application/x-www-form-urlencoded")
}

// requestCounter counts requests and new connections per host. It sits in
// limitTransport, below authentication, so token exchanges and the
// re-sent request after a 401 are counted as the registry sees them.
type requestCounter struct {
	mu    sync.Mutex
	hosts map[string]*hostCounters
}

type hostCounters struct{ n [numKinds]atomic.Int64 }

func (rc *requestCounter) host(h string) *hostCounters {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.hosts == nil {
		rc.hosts = map[string]*hostCounters{}
	}
	c := rc.hosts[h]
	if c == nil {
		c = &hostCounters{}
		rc.hosts[h] = c
	}
	return c
}

// count records req and returns it with a trace that counts the
// connection (and TLS session) it opens, if it opens one.
func (rc *requestCounter) count(req *http.Request) *http.Request {
	c := rc.host(req.URL.Host)
	c.n[classify(req)].Add(1)
	trace := &httptrace.ClientTrace{
		ConnectDone: func(_, _ string, err error) {
			if err == nil {
				c.n[kindConn].Add(1)
			}
		},
		TLSHandshakeDone: func(_ tls.ConnectionState, err error) {
			if err == nil {
				c.n[kindTLS].Add(1)
			}
		},
	}
	return req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
}

// snapshot returns the counts so far, per host.
func (rc *requestCounter) snapshot() map[string]RequestCounts {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := make(map[string]RequestCounts, len(rc.hosts))
	for h, c := range rc.hosts {
		var v [numKinds]int64
		for i := range v {
			v[i] = c.n[i].Load()
		}
		out[h] = RequestCounts{Ping: v[kindPing], Token: v[kindToken], BlobHEAD: v[kindBlobHEAD], BlobGET: v[kindBlobGET],
			BlobPOST: v[kindBlobPOST], BlobPOSTBody: v[kindBlobPOSTBody], BlobMount: v[kindBlobMount], BlobPUT: v[kindBlobPUT],
			BlobPATCH: v[kindBlobPATCH], ManifestHEAD: v[kindManifestHEAD], ManifestGET: v[kindManifestGET],
			ManifestPUT: v[kindManifestPUT], TagList: v[kindTagList], Referrers: v[kindReferrers], Other: v[kindOther], Connections: v[kindConn], TLSHandshakes: v[kindTLS]}
	}
	return out
}

// requestDelta is after minus before, per host, without hosts that saw
// nothing, and the total over hosts.
func requestDelta(before, after map[string]RequestCounts) (map[string]RequestCounts, RequestCounts) {
	var total, zero RequestCounts
	out := map[string]RequestCounts{}
	for h, a := range after {
		d := a.sub(before[h])
		if d == zero {
			continue
		}
		out[h] = d
		total = total.add(d)
	}
	return out, total
}

// logRequests writes the run's request counts at debug level: the totals,
// per image and per blob, and each host's counts.
func (e *Engine) logRequests(st Stats) {
	if !e.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	r := st.Requests
	blobs := st.BlobsCopied + st.BlobsMounted + st.BlobsSkipped
	per := func(n, d int64) string {
		if d == 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.2f", float64(n)/float64(d))
	}
	e.log.Debug("requests", append([]any{"total", r.Total(), "perImage", per(r.Total(), int64(st.Images)),
		"blobRequestsPerBlob", per(r.Blobs(), blobs), "manifestRequestsPerImage", per(r.Manifests(), int64(st.Images))},
		r.logAttrs()...)...)
	for _, h := range slices.Sorted(maps.Keys(st.RequestsByHost)) {
		e.log.Debug("requests to host", append([]any{"host", h}, st.RequestsByHost[h].logAttrs()...)...)
	}
}
