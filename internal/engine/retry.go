package engine

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"syscall"
	"time"
)

// permanentError marks an error that retrying cannot fix.
type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

func permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// retryBase and retryMax bound the exponential backoff; variables so tests
// of failure paths do not sleep for seconds.
var (
	retryBase = 200 * time.Millisecond
	retryMax  = 10 * time.Second
)

// transient reports whether err is worth retrying: connection resets, EOF,
// timeouts, and HTTP 408, 429 and 5xx (except 501/505, which will not change).
func transient(err error) bool {
	if err == nil {
		return false
	}
	var p permanentError
	if errors.As(err, &p) {
		return false
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	var he *httpError
	if errors.As(err, &he) {
		switch {
		case he.Status == http.StatusRequestTimeout, he.Status == http.StatusTooManyRequests:
			return true
		case he.Status == http.StatusNotImplemented, he.Status == http.StatusHTTPVersionNotSupported:
			return false
		case he.Status >= 500:
			return true
		}
		return false
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe)
}

// backoff is the wait before attempt n (1-based): exponential with full
// jitter, or the server's Retry-After when it asked for one.
func backoff(n int, err error) time.Duration {
	var he *httpError
	if errors.As(err, &he) && he.RetryAfter > 0 {
		if he.RetryAfter > time.Minute {
			return time.Minute
		}
		return he.RetryAfter
	}
	d := retryBase << (n - 1)
	if d > retryMax || d <= 0 {
		d = retryMax
	}
	return d/2 + rand.N(d/2+1)
}

// retry runs fn until it succeeds, fails permanently, or times retries are
// spent; it returns the last error unwrapped from permanent.
func retry(ctx context.Context, times int, log *slog.Logger, what string, fn func() error) error {
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil {
			return nil
		}
		if attempt >= times || !transient(err) || ctx.Err() != nil {
			var p permanentError
			if errors.As(err, &p) {
				return p.err
			}
			return err
		}
		wait := backoff(attempt+1, err)
		log.Debug("retrying", "op", what, "attempt", attempt+1, "wait", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}
