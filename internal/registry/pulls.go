package registry

import (
	"context"
	"errors"
	"net/http"
	"path"
	"regexp"
	"strings"
	"sync"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
)

// pullsRoot is where the registry keeps, per repository and tag, when a
// client last pulled the tag's manifest: retention's "keep what was pulled
// lately" needs it and distribution records nothing of the kind. It lives
// in the registry's own storage (outside distribution's docker/ tree), so it
// survives restarts and is shared by instances over one bucket.
const pullsRoot = "/airlock/pulls"

// pullWriteEvery bounds how often one tag's record is rewritten: a pull log
// only needs day-level precision, not a storage write per request.
const pullWriteEvery = 10 * time.Minute

var manifestPath = regexp.MustCompile(`^/v2/(.+)/manifests/([^/]+)$`)

type pullRecorder struct {
	drv    storagedriver.StorageDriver
	next   http.Handler
	mu     sync.Mutex
	last   map[string]time.Time
	logger interface{ Warn(string, ...any) }
}

// recordPulls wraps next so that a successful GET of a manifest by tag is
// recorded (HEAD is what mirroring tools send to check presence: not a pull).
func (s *Server) recordPulls(next http.Handler) http.Handler {
	pr := &pullRecorder{drv: s.driver, next: next, last: map[string]time.Time{}, logger: s.opts.Logger}
	return pr
}

func (p *pullRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet || isInProcess(r) {
		p.next.ServeHTTP(w, r)
		return
	}
	m := manifestPath.FindStringSubmatch(r.URL.Path)
	if m == nil || strings.Contains(m[2], ":") { // by digest: not a tag pull
		p.next.ServeHTTP(w, r)
		return
	}
	sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
	p.next.ServeHTTP(sw, r)
	if sw.code != http.StatusOK {
		return
	}
	key := m[1] + "/" + m[2]
	now := time.Now().UTC()
	p.mu.Lock()
	due := now.Sub(p.last[key]) >= pullWriteEvery
	if due {
		p.last[key] = now
	}
	p.mu.Unlock()
	if due {
		// Detached from the request: a client that hangs up after reading
		// the manifest still counts as a pull.
		ctx := context.WithoutCancel(r.Context())
		if err := p.drv.PutContent(ctx, path.Join(pullsRoot, m[1], "_tags", m[2]), []byte(now.Format(time.RFC3339))); err != nil {
			p.logger.Warn("recording a pull", "repository", m[1], "tag", m[2], "err", err)
		}
	}
}

type statusWriter struct {
	http.ResponseWriter
	code int
	once bool
}

func (s *statusWriter) WriteHeader(code int) {
	if !s.once {
		s.code, s.once = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// PullLog is when each tag was last pulled.
type PullLog map[string]time.Time // "repo:tag" -> time

// LastPull implements retention.Pulls.
func (l PullLog) LastPull(repo, tag string) (time.Time, bool) {
	t, ok := l[repo+":"+tag]
	return t, ok
}

// Pulls reads the pull log from the registry's storage.
func (s *Server) Pulls(ctx context.Context) (PullLog, error) {
	log := PullLog{}
	if s.driver == nil {
		return log, errors.New("the pull log needs the OCI compatibility layer's storage access")
	}
	err := s.driver.Walk(ctx, pullsRoot, func(fi storagedriver.FileInfo) error {
		if fi.IsDir() {
			return nil
		}
		rel := strings.TrimPrefix(fi.Path(), pullsRoot+"/")
		repo, tag, ok := strings.Cut(rel, "/_tags/")
		if !ok {
			return nil
		}
		b, err := s.driver.GetContent(ctx, fi.Path())
		if err != nil {
			return err
		}
		if t, err := time.Parse(time.RFC3339, string(b)); err == nil {
			log[repo+":"+tag] = t
		}
		return nil
	})
	var nf storagedriver.PathNotFoundError
	if errors.As(err, &nf) {
		return log, nil
	}
	return log, err
}
