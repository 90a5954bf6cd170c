package registry

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// inProcessKey marks a request made by InProcessTransport. Only code in this
// process can put it in a request's context, so the access controller can
// trust it without credentials: the web view and other readers that run
// inside `registry serve` reach the registry API without a network hop and
// without holding a user's password.
type inProcessKey struct{}

func isInProcess(r *http.Request) bool {
	v, _ := r.Context().Value(inProcessKey{}).(bool)
	return v
}

// InProcessTransport returns an http.RoundTripper that serves each request
// with the registry's own handler, in this process, as a trusted reader.
// The host part of request URLs is ignored. Response bodies stream through
// a pipe, so large blobs are never held in memory.
func (s *Server) InProcessTransport() http.RoundTripper {
	return handlerTransport{h: s.handler}
}

type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := context.WithValue(req.Context(), inProcessKey{}, true)
	r := req.Clone(ctx)
	if r.Body == nil {
		r.Body = http.NoBody
	}
	r.RequestURI = r.URL.RequestURI()
	if r.RemoteAddr == "" {
		r.RemoteAddr = "in-process"
	}
	pr, pw := io.Pipe()
	w := &pipeWriter{header: http.Header{}, body: pw, ready: make(chan struct{})}
	go func() {
		defer func() {
			w.writeHeader(http.StatusOK) // a handler that wrote nothing
			pw.Close()
		}()
		t.h.ServeHTTP(w, r)
	}()
	select {
	case <-w.ready:
	case <-ctx.Done():
		pr.CloseWithError(ctx.Err())
		return nil, ctx.Err()
	}
	resp := &http.Response{
		Status:        http.StatusText(w.status),
		StatusCode:    w.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        w.sent,
		Body:          pr,
		ContentLength: -1,
		Request:       req,
	}
	if n, err := strconv.ParseInt(w.sent.Get("Content-Length"), 10, 64); err == nil {
		resp.ContentLength = n
	}
	if strings.EqualFold(req.Method, http.MethodHead) {
		resp.Body = http.NoBody
		pr.Close()
	}
	return resp, nil
}

// pipeWriter is the http.ResponseWriter of an in-process request: the
// header is handed over at the first write, the body streams through the pipe.
type pipeWriter struct {
	header http.Header
	sent   http.Header
	status int
	body   *io.PipeWriter
	once   sync.Once
	ready  chan struct{}
}

func (w *pipeWriter) Header() http.Header { return w.header }

func (w *pipeWriter) WriteHeader(code int) { w.writeHeader(code) }

func (w *pipeWriter) writeHeader(code int) {
	w.once.Do(func() {
		w.status = code
		w.sent = w.header.Clone()
		close(w.ready)
	})
}

func (w *pipeWriter) Write(p []byte) (int, error) {
	w.writeHeader(http.StatusOK)
	return w.body.Write(p)
}

// Flush is a no-op: every write already goes straight to the reader.
func (w *pipeWriter) Flush() {}

// Writes counts the write requests (pushes, deletes) the registry has
// served since it started: the web view rescans only when it changed.
func (s *Server) Writes() uint64 { return s.writes.Load() }

// mountUI serves the handler ui builds under /ui/ beside the registry API,
// behind the same htpasswd users: with auth on, an anonymous request gets
// the same Basic challenge the API gives.
func (s *Server) mountUI(ui func(*Server) http.Handler) {
	view := ui(s)
	registryAPI := s.handler
	s.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ui" && !strings.HasPrefix(r.URL.Path, "/ui/") {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				s.writes.Add(1)
			}
			registryAPI.ServeHTTP(w, r)
			return
		}
		if s.auth != nil {
			user, pass, ok := r.BasicAuth()
			if !ok || s.auth.authn.Authenticate(user, pass) != nil {
				if ok {
					s.opts.Logger.Warn("web view: authentication failed", "user", user, "remote", r.RemoteAddr)
				}
				w.Header().Set("WWW-Authenticate", `Basic realm="`+s.auth.realm+`"`)
				http.Error(w, "authentication required", http.StatusUnauthorized)
				return
			}
		}
		if r.URL.Path == "/ui" {
			http.Redirect(w, r, "/ui/", http.StatusMovedPermanently)
			return
		}
		view.ServeHTTP(w, r)
	})
}
