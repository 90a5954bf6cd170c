package release

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"time"
)

// readAttempts is how often a read of the release or a component manifest
// is tried. The copy engine retries its own transfers; these reads go
// through go-containerregistry images whose blob bodies are not retried
// when a connection drops mid-way, and one dropped connection must not
// end a release mirror.
const readAttempts = 4

// transient reports whether err looks like a network hiccup worth retrying.
func transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ne net.Error
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNREFUSED) || (errors.As(err, &ne) && ne.Timeout()) {
		return true
	}
	s := err.Error()
	for _, m := range []string{"connection reset", "broken pipe", "unexpected EOF", "503 Service Unavailable", "502 Bad Gateway", "504 Gateway Timeout", "429 Too Many Requests", "500 Internal Server Error"} {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}

// retry runs fn until it succeeds, fails for a non-transient reason, or
// readAttempts are used; what names the operation in logs.
func retry(ctx context.Context, what string, fn func() error) error {
	delay := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || attempt == readAttempts || !transient(err) {
			return err
		}
		slog.Warn("retrying after a transient failure", "what", what, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
		delay *= 2
	}
}
