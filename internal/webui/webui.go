// Package webui is the read-only web view of `airlock registry serve`: what
// the mirror holds in the terms its admins think in — OpenShift releases,
// operator catalogs with their packages, channels and versions, additional
// images — with presence (is every bundle, related image and component
// really there), signatures, sizes before and after dedup, and the history
// of runs. Every page is also JSON under /ui/api/ for scripts.
//
// Pages are server-rendered from a Snapshot that a background scan of the
// registry API refreshes (through the registry's in-process transport: no
// network hop, no credentials held). A page therefore never waits for the
// registry, which keeps the first paint fast on catalogs with thousands of
// bundles. The only asset is our own stylesheet, embedded: the mirror is
// offline, there is no CDN.
package webui

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/airlock-mirror/airlock/internal/regscan"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Options configure the view.
type Options struct {
	Scanner *regscan.Scanner
	// Refresh is the interval between scans (default 1 minute); a scan
	// can also be asked for with POST /ui/api/refresh.
	Refresh time.Duration
	// Generation, when set, changes whenever the registry's content may
	// have changed (registry.Server.Writes): a periodic rescan is skipped
	// while it stays the same, so an idle mirror is not rescanned.
	Generation func() uint64
	Logger     *slog.Logger
}

// UI serves the pages.
type UI struct {
	opts  Options
	pages *template.Template

	mu      sync.RWMutex
	snap    *regscan.Snapshot
	scanErr error
	ready   chan struct{}
	once    sync.Once
	kick    chan struct{}
	scanMu  sync.Mutex
}

// New builds the view; call Run to start scanning.
func New(o Options) (*UI, error) {
	if o.Refresh <= 0 {
		o.Refresh = time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	t, err := template.New("").Funcs(funcs).ParseFS(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	return &UI{opts: o, pages: t, ready: make(chan struct{}), kick: make(chan struct{}, 1)}, nil
}

// Run scans now and then every Refresh (or when asked) until ctx ends.
func (u *UI) Run(ctx context.Context) {
	var scanned uint64
	force := true
	for {
		gen := uint64(0)
		if u.opts.Generation != nil {
			gen = u.opts.Generation()
		}
		if force || u.opts.Generation == nil || gen != scanned {
			if err := u.Refresh(ctx); err != nil && ctx.Err() == nil {
				u.opts.Logger.Warn("web view: scanning the registry", "err", err)
			} else {
				scanned = gen
			}
		}
		force = false
		select {
		case <-ctx.Done():
			return
		case <-time.After(u.opts.Refresh):
		case <-u.kick:
			force = true
		}
	}
}

// Refresh scans the registry once and replaces the snapshot.
func (u *UI) Refresh(ctx context.Context) error {
	u.scanMu.Lock()
	defer u.scanMu.Unlock()
	s, err := u.opts.Scanner.Scan(ctx)
	u.mu.Lock()
	if err == nil {
		u.snap = s
	}
	u.scanErr = err
	u.mu.Unlock()
	if err == nil {
		u.once.Do(func() { close(u.ready) })
	}
	return err
}

// snapshot waits briefly for the first scan; pages of a registry still
// being scanned say so instead of hanging.
func (u *UI) snapshot(r *http.Request) (*regscan.Snapshot, error) {
	select {
	case <-u.ready:
	case <-time.After(2 * time.Second):
	case <-r.Context().Done():
	}
	u.mu.RLock()
	defer u.mu.RUnlock()
	if u.snap == nil {
		if u.scanErr != nil {
			return nil, u.scanErr
		}
		return nil, errScanning
	}
	return u.snap, nil
}

var errScanning = errors.New("the registry is still being scanned; reload in a moment")

// ServeHTTP routes /ui/... requests.
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimPrefix(r.URL.Path, "/ui")
	if strings.HasPrefix(p, "/static/") {
		w.Header().Set("Cache-Control", "max-age=3600")
		http.StripPrefix("/ui", http.FileServerFS(assets)).ServeHTTP(w, r)
		return
	}
	if p == "/api/refresh" {
		if r.Method != http.MethodPost {
			http.Error(w, "POST to ask for a new scan", http.StatusMethodNotAllowed)
			return
		}
		select {
		case u.kick <- struct{}{}:
		default:
		}
		w.WriteHeader(http.StatusAccepted)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "the web view is read-only", http.StatusMethodNotAllowed)
		return
	}
	api := strings.HasPrefix(p, "/api/")
	page := strings.TrimPrefix(strings.TrimPrefix(p, "/api"), "/")
	s, err := u.snapshot(r)
	if err != nil {
		u.fail(w, api, http.StatusServiceUnavailable, err)
		return
	}
	q := r.URL.Query()
	var (
		data any
		tmpl string
	)
	switch page {
	case "", "overview":
		data, tmpl = overviewOf(s), "overview"
	case "repositories":
		data, tmpl = s.Repos, "repositories"
	case "repo":
		rp := s.Repo(q.Get("name"))
		if rp == nil {
			u.fail(w, api, http.StatusNotFound, errors.New("no repository "+q.Get("name")))
			return
		}
		data, tmpl = rp, "repo"
	case "catalog":
		c := s.Catalog(q.Get("ref"))
		if c == nil {
			u.fail(w, api, http.StatusNotFound, errors.New("no catalog "+q.Get("ref")))
			return
		}
		data, tmpl = c, "catalog"
	case "package":
		c := s.Catalog(q.Get("catalog"))
		var pk *regscan.Package
		if c != nil {
			for _, x := range c.Packages {
				if x.Name == q.Get("name") {
					pk = x
				}
			}
		}
		if pk == nil {
			u.fail(w, api, http.StatusNotFound, errors.New("no package "+q.Get("name")+" in catalog "+q.Get("catalog")))
			return
		}
		data, tmpl = packagePage{Catalog: c, Package: pk}, "package"
	case "release":
		rel := s.Release(q.Get("ref"))
		if rel == nil {
			u.fail(w, api, http.StatusNotFound, errors.New("no release "+q.Get("ref")))
			return
		}
		data, tmpl = rel, "release"
	case "search":
		data, tmpl = search(s, q.Get("q")), "search"
	case "history":
		data, tmpl = historyOf(s), "history"
	default:
		u.fail(w, api, http.StatusNotFound, errors.New("no page "+p))
		return
	}
	if api {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(data)
		return
	}
	u.render(w, tmpl, s, data)
}

type pageData struct {
	Title string
	Snap  *regscan.Snapshot
	Data  any
}

func (u *UI) render(w http.ResponseWriter, name string, s *regscan.Snapshot, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	var b strings.Builder
	if err := u.pages.ExecuteTemplate(&b, name, pageData{Title: name, Snap: s, Data: data}); err != nil {
		u.opts.Logger.Error("web view: rendering", "page", name, "err", err)
		http.Error(w, "rendering "+name+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	_, _ = w.Write([]byte(b.String()))
}

func (u *UI) fail(w http.ResponseWriter, api bool, code int, err error) {
	if api {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_ = u.pages.ExecuteTemplate(w, "error", pageData{Title: "error", Data: err.Error()})
}

// overview is the front page.
type overview struct {
	*regscan.Snapshot
	Additional []*regscan.Repo `json:"additionalImages"` // repositories that are neither catalogs nor releases
}

func overviewOf(s *regscan.Snapshot) overview {
	o := overview{Snapshot: s}
	for _, r := range s.Repos {
		if r.Kind == "" {
			o.Additional = append(o.Additional, r)
		}
	}
	return o
}

type packagePage struct {
	Catalog *regscan.Catalog `json:"catalog"`
	Package *regscan.Package `json:"package"`
}

// Hit is one search result.
type Hit struct {
	Kind string `json:"kind"` // repository, tag, package, bundle, component
	Name string `json:"name"`
	Link string `json:"link"`
	In   string `json:"in,omitempty"`
}

type searchResult struct {
	Query string `json:"query"`
	Hits  []Hit  `json:"hits"`
}

// search finds repositories, tags, packages, bundles and release
// components whose name contains q (case-insensitive); at most 200 hits.
func search(s *regscan.Snapshot, q string) searchResult {
	res := searchResult{Query: q}
	needle := strings.ToLower(strings.TrimSpace(q))
	if needle == "" {
		return res
	}
	add := func(h Hit) bool {
		res.Hits = append(res.Hits, h)
		return len(res.Hits) < 200
	}
	match := func(s string) bool { return strings.Contains(strings.ToLower(s), needle) }
	for _, r := range s.Repos {
		if match(r.Name) && !add(Hit{Kind: "repository", Name: r.Name, Link: "repo?name=" + r.Name}) {
			return res
		}
		for _, t := range r.Tags {
			if match(t.Name) || (t.Digest != "" && strings.Contains(t.Digest, needle)) {
				if !add(Hit{Kind: "tag", Name: r.Name + ":" + t.Name, Link: "repo?name=" + r.Name}) {
					return res
				}
			}
		}
	}
	for _, c := range s.Catalogs {
		for _, p := range c.Packages {
			if match(p.Name) && !add(Hit{Kind: "package", Name: p.Name, In: c.Ref(), Link: "package?catalog=" + c.Ref() + "&name=" + p.Name}) {
				return res
			}
			for _, b := range p.Bundles {
				if match(b.Name) && !add(Hit{Kind: "bundle", Name: b.Name, In: c.Ref(), Link: "package?catalog=" + c.Ref() + "&name=" + p.Name}) {
					return res
				}
			}
		}
	}
	for _, rel := range s.Releases {
		for _, c := range rel.Components {
			if match(c.Name) && !add(Hit{Kind: "component", Name: c.Name, In: rel.Ref(), Link: "release?ref=" + rel.Ref()}) {
				return res
			}
		}
	}
	return res
}

// historyOf lists runs newest first.
func historyOf(s *regscan.Snapshot) []any {
	out := make([]any, 0, len(s.History))
	idx := make([]int, len(s.History))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return s.History[idx[a]].Time.After(s.History[idx[b]].Time) })
	for _, i := range idx {
		out = append(out, s.History[i])
	}
	return out
}
