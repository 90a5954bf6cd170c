package ocicompat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// bufferedResponse collects a small response from the wrapped registry
// (manifest PUTs, auth probes) so this layer can act on the outcome before
// anything reaches the client.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newBufferedResponse() *bufferedResponse {
	return &bufferedResponse{header: http.Header{}}
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

// copyTo sends the collected response to w.
func (b *bufferedResponse) copyTo(w http.ResponseWriter) {
	for k, v := range b.header {
		w.Header()[k] = v
	}
	status := b.status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = w.Write(b.body.Bytes())
}

// headerHook is an http.ResponseWriter that calls onHeader once, just before
// the status line and headers go out, and otherwise streams: blob bodies can
// be gigabytes and must not be buffered.
type headerHook struct {
	http.ResponseWriter
	onHeader    func(status int, h http.Header)
	wroteHeader bool
}

func (hh *headerHook) WriteHeader(status int) {
	if !hh.wroteHeader {
		hh.wroteHeader = true
		hh.onHeader(status, hh.ResponseWriter.Header())
	}
	hh.ResponseWriter.WriteHeader(status)
}

func (hh *headerHook) Write(p []byte) (int, error) {
	if !hh.wroteHeader {
		hh.WriteHeader(http.StatusOK)
	}
	return hh.ResponseWriter.Write(p)
}

// ReadFrom keeps the underlying writer's sendfile fast path for blob GETs.
func (hh *headerHook) ReadFrom(src io.Reader) (int64, error) {
	if !hh.wroteHeader {
		hh.WriteHeader(http.StatusOK)
	}
	if rf, ok := hh.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(hh.ResponseWriter, src)
}

// Flush lets streaming handlers flush through the hook.
func (hh *headerHook) Flush() {
	if !hh.wroteHeader {
		hh.WriteHeader(http.StatusOK)
	}
	if f, ok := hh.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap supports http.ResponseController.
func (hh *headerHook) Unwrap() http.ResponseWriter { return hh.ResponseWriter }

// writeError writes an error in the distribution-spec error format, the one
// clients parse to show the user a message.
func writeError(w http.ResponseWriter, status int, code, message string) {
	body, _ := json.Marshal(map[string]any{
		"errors": []map[string]string{{"code": code, "message": message}},
	})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
