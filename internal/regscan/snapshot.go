// Package regscan reads what a registry holds into a Snapshot, through the
// registry API only (any registry, any storage), for the web view and for
// retention.
package regscan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"

	"github.com/airlock-mirror/airlock/internal/audit"
	"github.com/airlock-mirror/airlock/internal/catalog"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/release"
)

// labelRelease is set on OpenShift release images to their version.
const labelRelease = "io.openshift.release"

// Snapshot is what a registry holds, read in one scan through the registry
// API: repositories, tags, manifests with their blobs, platforms, missing
// children and referrers, and the content of catalog and release images
// with the presence of every image they name. The web view renders from
// it (a page never waits for the registry) and retention decides from it.
type Snapshot struct {
	Taken    time.Time     `json:"taken"`
	Duration time.Duration `json:"scanDuration"`

	Repos    []*Repo        `json:"repositories"`
	Catalogs []*Catalog     `json:"catalogs"`
	Releases []*Release     `json:"releases"`
	History  []audit.Record `json:"history,omitempty"`

	Images      int        `json:"images"`    // tagged images (signature tags excluded)
	Manifests   int        `json:"manifests"` // distinct manifests, children included
	Blobs       int        `json:"blobs"`     // distinct blobs
	TotalBytes  int64      `json:"totalBytes"`
	UniqueBytes int64      `json:"uniqueBytes"` // every blob counted once
	Incomplete  int        `json:"incomplete"`  // tagged images with a missing child
	Signed      int        `json:"signed"`      // tagged images with a signature or attestation
	Errors      []string   `json:"errors,omitempty"`
	LastSync    *time.Time `json:"lastSync,omitempty"`

	byDigest   map[string]*Manifest
	repoByName map[string]*Repo
	presence   map[string]Presence // upstream reference -> in the mirror
}

// Repo returns the repository named name, or nil.
func (s *Snapshot) Repo(name string) *Repo { return s.repoByName[name] }

// Catalog returns the catalog tagged ref ("repo:tag"), following an alias
// (another tag of the same catalog image) to the one holding the content.
func (s *Snapshot) Catalog(ref string) *Catalog {
	for _, c := range s.Catalogs {
		if c.Ref() == ref {
			if c.AliasOf != "" && c.AliasOf != ref {
				return s.Catalog(c.AliasOf)
			}
			return c
		}
	}
	return nil
}

// Release returns the release tagged ref ("repo:tag"), or nil.
func (s *Snapshot) Release(ref string) *Release {
	for _, r := range s.Releases {
		if r.Ref() == ref {
			return r
		}
	}
	return nil
}

// Manifest returns the scanned manifest with this digest, or nil.
func (s *Snapshot) Manifest(digest string) *Manifest { return s.byDigest[digest] }

// Index rebuilds the lookups from the exported fields, for snapshots made
// by hand (tests, benchmarks).
func (s *Snapshot) Index() {
	s.byDigest, s.repoByName = map[string]*Manifest{}, map[string]*Repo{}
	for _, r := range s.Repos {
		s.repoByName[r.Name] = r
		for _, t := range r.Tags {
			if t.Manifest != nil {
				s.byDigest[t.Manifest.Digest] = t.Manifest
			}
		}
		for _, m := range r.Untagged {
			s.byDigest[m.Digest] = m
		}
	}
}

// Blobs returns the blobs (config and layers, children's included, and the
// manifest itself) of m with their sizes.
func (m *Manifest) Blobs() map[string]int64 { return m.blobs }

// Repo is one repository.
type Repo struct {
	Name string `json:"name"`
	Tags []*Tag `json:"tags"`
	// Untagged are images found by digest only (pushed without a tag, as
	// mirrors of digest references are) that a catalog or release names.
	Untagged []*Manifest `json:"untagged,omitempty"`
	Bytes    int64       `json:"bytes"`          // unique blobs of the repository's images
	Kind     string      `json:"kind,omitempty"` // "catalog", "release" or ""
}

// Tag is one tag of a repository.
type Tag struct {
	Name     string    `json:"name"`
	Digest   string    `json:"digest"`
	Manifest *Manifest `json:"-"`
}

// Manifest is one manifest or index with what the view needs of it.
type Manifest struct {
	Digest    string            `json:"digest"`
	MediaType string            `json:"mediaType"`
	Platform  string            `json:"platform,omitempty"`
	Bytes     int64             `json:"bytes"` // manifest, config and layers, children included
	Children  []Child           `json:"children,omitempty"`
	Layers    int               `json:"layers"`
	Labels    map[string]string `json:"labels,omitempty"`
	Created   time.Time         `json:"created,omitzero"`
	// Missing lists children (platforms) the registry does not hold.
	Missing []string `json:"missing,omitempty"`
	// Referrers are signatures, attestations and SBOMs: cosign tags
	// (sha256-<hex>.sig/.att/.sbom) and OCI referrers.
	Referrers []Referrer `json:"referrers,omitempty"`

	blobs map[string]int64
	cfg   *v1.ConfigFile
	repo  string
}

// Child is one entry of an index.
type Child struct {
	Digest   string `json:"digest"`
	Platform string `json:"platform"`
	Present  bool   `json:"present"`
}

// Referrer is one artifact that refers to a manifest.
type Referrer struct {
	Kind   string `json:"kind"` // "signature", "attestation", "sbom" or the artifact type
	Ref    string `json:"ref"`
	Digest string `json:"digest,omitempty"`
}

// Complete says whether every child of the manifest is in the registry.
func (m *Manifest) Complete() bool { return len(m.Missing) == 0 }

// Signed says whether the manifest (or, for an index, the index itself)
// has a signature or attestation.
func (m *Manifest) Signed() bool {
	for _, r := range m.Referrers {
		if r.Kind == "signature" || r.Kind == "attestation" {
			return true
		}
	}
	return false
}

// Platforms lists the platforms of an index, or the image's own.
func (m *Manifest) Platforms() []string {
	if len(m.Children) == 0 {
		if m.Platform == "" {
			return nil
		}
		return []string{m.Platform}
	}
	out := make([]string, 0, len(m.Children))
	for _, c := range m.Children {
		out = append(out, c.Platform)
	}
	return out
}

// Scanner reads a registry into Snapshots.
type Scanner struct {
	// Transport reaches the registry API; the registry's in-process
	// transport in `registry serve`.
	Transport http.RoundTripper
	// Registry is the host name used in requests (any name works with an
	// in-process transport).
	Registry string
	// Parallel bounds concurrent requests (default 8).
	Parallel int
	// HistoryRepo is the repository of run records (audit.DefaultRepo).
	HistoryRepo string
	// Remote are extra options of every API call (credentials of a
	// registry airlock does not run).
	Remote []remote.Option
	// NameOptions parse references; nil allows plain HTTP (name.Insecure),
	// right for the in-process transport, while a remote registry gets
	// the --insecure choice of the user.
	NameOptions []name.Option
}

func (sc *Scanner) opts(ctx context.Context) []remote.Option {
	return append([]remote.Option{remote.WithTransport(sc.Transport)}, append(sc.Remote, remote.WithContext(ctx))...)
}

func (sc *Scanner) nameOpts() []name.Option {
	if sc.NameOptions == nil {
		return []name.Option{name.Insecure}
	}
	return sc.NameOptions
}

func (sc *Scanner) repoName(repo string) (name.Repository, error) {
	return name.NewRepository(sc.registry()+"/"+repo, sc.nameOpts()...)
}

func (sc *Scanner) registry() string {
	if sc.Registry == "" {
		return "airlock.internal"
	}
	return sc.Registry
}

// Scan reads every repository, tag and manifest of the registry, then the
// content of catalog and release images found among them.
func (sc *Scanner) Scan(ctx context.Context) (*Snapshot, error) {
	start := time.Now()
	par := sc.Parallel
	if par <= 0 {
		par = 8
	}
	reg, err := name.NewRegistry(sc.registry(), sc.nameOpts()...)
	if err != nil {
		return nil, err
	}
	repos, err := remote.Catalog(ctx, reg, sc.opts(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("listing repositories of %s: %w", sc.registry(), err)
	}
	s := &Snapshot{byDigest: map[string]*Manifest{}, repoByName: map[string]*Repo{}}
	var mu sync.Mutex
	errorf := func(format string, a ...any) {
		mu.Lock()
		s.Errors = append(s.Errors, fmt.Sprintf(format, a...))
		mu.Unlock()
	}
	historyRepo := sc.HistoryRepo
	if historyRepo == "" {
		historyRepo = audit.DefaultRepo
	}

	// Pass 1: tags of every repository.
	type sigTag struct{ repo, tag string }
	var sigTags []sigTag
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(par)
	for _, rn := range repos {
		if rn == historyRepo {
			continue
		}
		r := &Repo{Name: rn}
		s.Repos = append(s.Repos, r)
		s.repoByName[rn] = r
		g.Go(func() error {
			repo, err := sc.repoName(rn)
			if err != nil {
				errorf("repository %s: %v", rn, err)
				return nil
			}
			tags, err := remote.List(repo, sc.opts(gctx)...)
			if isNotFound(err) {
				return nil // a repository with images pushed by digest only
			}
			if err != nil {
				errorf("listing tags of %s: %v", rn, err)
				return nil
			}
			sort.Strings(tags)
			mu.Lock()
			defer mu.Unlock()
			for _, t := range tags {
				if isCosignTag(t) {
					sigTags = append(sigTags, sigTag{rn, t})
					continue
				}
				r.Tags = append(r.Tags, &Tag{Name: t})
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	sort.Slice(s.Repos, func(i, j int) bool { return s.Repos[i].Name < s.Repos[j].Name })

	// Pass 2: every tagged manifest, its children and configs.
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(par)
	for _, r := range s.Repos {
		for _, t := range r.Tags {
			g.Go(func() error {
				m, err := sc.manifest(gctx, s, &mu, r.Name, t.Name)
				if err != nil {
					errorf("%s:%s: %v", r.Name, t.Name, err)
					return nil
				}
				t.Digest, t.Manifest = m.Digest, m
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, st := range sigTags {
		d, kind := cosignTarget(st.tag)
		if m := s.byDigest[d]; m != nil {
			m.Referrers = append(m.Referrers, Referrer{Kind: kind, Ref: st.repo + ":" + st.tag})
		}
	}

	// Pass 3: OCI referrers of tagged manifests (the registry answers the
	// referrers API; an empty index is the common answer).
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(par)
	seen := map[string]bool{}
	for _, r := range s.Repos {
		for _, t := range r.Tags {
			if t.Manifest == nil || seen[t.Digest] {
				continue
			}
			seen[t.Digest] = true
			m := t.Manifest
			g.Go(func() error {
				refs, err := sc.referrers(gctx, r.Name, m.Digest)
				if err != nil {
					errorf("referrers of %s@%s: %v", r.Name, m.Digest, err)
					return nil
				}
				mu.Lock()
				m.Referrers = append(m.Referrers, refs...)
				mu.Unlock()
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}

	sc.content(ctx, s, errorf)
	sc.totals(s)
	hr, err := sc.repoName(historyRepo)
	if err != nil {
		return nil, err
	}
	if recs, err := audit.List(ctx, hr, sc.opts(ctx)...); err != nil {
		errorf("reading run history from %s: %v", historyRepo, err)
	} else {
		s.History = recs
		for i := range recs {
			if recs[i].Command == "mirror" || recs[i].Command == "sync" || strings.HasSuffix(recs[i].Command, " mirror") {
				t := recs[i].Time
				if s.LastSync == nil || t.After(*s.LastSync) {
					s.LastSync = &t
				}
			}
		}
	}
	sort.Strings(s.Errors)
	s.Taken = time.Now().UTC()
	s.Duration = time.Since(start)
	return s, nil
}

// manifest reads repo:reference and, for an index, its children; every
// manifest is read once per scan, whatever the number of tags naming it.
func (sc *Scanner) manifest(ctx context.Context, s *Snapshot, mu *sync.Mutex, repo, reference string) (*Manifest, error) {
	rn, err := sc.repoName(repo)
	if err != nil {
		return nil, err
	}
	var r name.Reference
	if strings.Contains(reference, ":") {
		r = rn.Digest(reference)
	} else {
		r = rn.Tag(reference)
	}
	desc, err := remote.Get(r, sc.opts(ctx)...)
	if err != nil {
		return nil, err
	}
	d := desc.Digest.String()
	mu.Lock()
	if m := s.byDigest[d]; m != nil {
		mu.Unlock()
		return m, nil
	}
	mu.Unlock()
	m := &Manifest{Digest: d, MediaType: string(desc.MediaType), blobs: map[string]int64{}, repo: repo}
	m.blobs[d] = desc.Size
	if desc.MediaType.IsIndex() {
		im, err := v1.ParseIndexManifest(strings.NewReader(string(desc.Manifest)))
		if err != nil {
			return nil, fmt.Errorf("parsing index %s: %w", d, err)
		}
		for _, cd := range im.Manifests {
			c := Child{Digest: cd.Digest.String(), Platform: platformString(cd.Platform)}
			child, err := sc.manifest(ctx, s, mu, repo, c.Digest)
			if err != nil {
				if !isNotFound(err) {
					return nil, fmt.Errorf("child %s: %w", c.Digest, err)
				}
				m.Missing = append(m.Missing, c.Platform+" "+c.Digest)
			} else {
				c.Present = true
				for b, n := range child.blobs {
					m.blobs[b] = n
				}
				if m.Labels == nil {
					m.Labels, m.cfg, m.Created = child.Labels, child.cfg, child.Created
				}
			}
			m.Children = append(m.Children, c)
		}
	} else if desc.MediaType.IsImage() || desc.MediaType == types.OCIManifestSchema1 {
		mf, err := v1.ParseManifest(strings.NewReader(string(desc.Manifest)))
		if err != nil {
			return nil, fmt.Errorf("parsing manifest %s: %w", d, err)
		}
		m.blobs[mf.Config.Digest.String()] = mf.Config.Size
		for _, l := range mf.Layers {
			m.blobs[l.Digest.String()] = l.Size
		}
		m.Layers = len(mf.Layers)
		if mf.Config.MediaType.IsConfig() {
			img, err := desc.Image()
			if err == nil {
				if cf, err := img.ConfigFile(); err == nil {
					m.cfg = cf
					m.Labels = cf.Config.Labels
					m.Created = cf.Created.Time
					m.Platform = cf.OS + "/" + cf.Architecture
					if cf.Variant != "" {
						m.Platform += "/" + cf.Variant
					}
				}
			}
		}
	}
	for _, n := range m.blobs {
		m.Bytes += n
	}
	mu.Lock()
	defer mu.Unlock()
	if prev := s.byDigest[d]; prev != nil {
		return prev, nil
	}
	s.byDigest[d] = m
	return m, nil
}

func (sc *Scanner) referrers(ctx context.Context, repo, digest string) ([]Referrer, error) {
	rn, err := sc.repoName(repo)
	if err != nil {
		return nil, err
	}
	idx, err := remote.Referrers(rn.Digest(digest), sc.opts(ctx)...)
	if err != nil {
		if isNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var out []Referrer
	for _, d := range im.Manifests {
		out = append(out, Referrer{Kind: artifactKind(d.ArtifactType), Ref: repo + "@" + d.Digest.String(), Digest: d.Digest.String()})
	}
	return out, nil
}

// artifactKind names an OCI artifact type the way users think of it.
func artifactKind(t string) string {
	switch {
	case strings.Contains(t, "cosign") && strings.Contains(t, "sig"),
		strings.Contains(t, "notary") && strings.Contains(t, "signature"),
		strings.Contains(t, "sigstore.bundle"):
		return "signature"
	case strings.Contains(t, "in-toto"), strings.Contains(t, "attestation"):
		return "attestation"
	case strings.Contains(t, "spdx"), strings.Contains(t, "cyclonedx"), strings.Contains(t, "sbom"):
		return "sbom"
	case t == "":
		return "artifact"
	}
	return t
}

// totals fills the registry-wide numbers.
func (sc *Scanner) totals(s *Snapshot) {
	unique := map[string]int64{}
	for _, r := range s.Repos {
		repoBlobs := map[string]int64{}
		for _, m := range r.Untagged {
			s.TotalBytes += m.Bytes
			for b, n := range m.blobs {
				repoBlobs[b] = n
				unique[b] = n
			}
		}
		for _, t := range r.Tags {
			m := t.Manifest
			if m == nil {
				continue
			}
			s.Images++
			s.TotalBytes += m.Bytes
			if !m.Complete() {
				s.Incomplete++
			}
			if m.Signed() {
				s.Signed++
			}
			for b, n := range m.blobs {
				repoBlobs[b] = n
				unique[b] = n
			}
		}
		for _, n := range repoBlobs {
			r.Bytes += n
		}
	}
	s.Manifests = len(s.byDigest)
	for d := range s.byDigest {
		delete(unique, d) // manifests are not blobs
	}
	s.Blobs = len(unique)
	for _, n := range unique {
		s.UniqueBytes += n
	}
	for _, m := range s.byDigest {
		s.UniqueBytes += m.blobs[m.Digest]
	}
}

// content reads catalog and release images (one per distinct digest),
// then checks the presence of every image they name, all at once and
// concurrently, then builds their views.
func (sc *Scanner) content(ctx context.Context, s *Snapshot, errorf func(string, ...any)) {
	type pendingCatalog struct {
		view *Catalog
		cat  *catalog.Catalog
	}
	type pendingRelease struct {
		view *Release
		p    *release.Payload
	}
	var cats []pendingCatalog
	var rels []pendingRelease
	images := map[string]string{} // upstream reference -> kind of what names it
	done := map[string]bool{}
	for _, r := range s.Repos {
		for _, t := range r.Tags {
			m := t.Manifest
			if m == nil || m.Labels == nil {
				continue
			}
			isCatalog := m.Labels[catalog.LabelConfigs] != "" || m.Labels[catalog.LabelDatabase] != ""
			isRelease := m.Labels[labelRelease] != ""
			if !isCatalog && !isRelease {
				continue
			}
			if isCatalog {
				r.Kind = "catalog"
			} else {
				r.Kind = "release"
			}
			key := m.Digest + "\x00" + r.Kind
			if isCatalog && done[key] {
				s.Catalogs = append(s.Catalogs, &Catalog{Repo: r.Name, Tag: t.Name, Digest: m.Digest, AliasOf: aliasOf(s.Catalogs, m.Digest)})
				continue
			}
			done[key] = true
			img, err := sc.image(ctx, r.Name, m)
			if err != nil {
				errorf("%s:%s: %v", r.Name, t.Name, err)
				continue
			}
			if isCatalog {
				c := &Catalog{Repo: r.Name, Tag: t.Name, Digest: m.Digest}
				s.Catalogs = append(s.Catalogs, c)
				if cat := c.load(ctx, img); cat != nil {
					cats = append(cats, pendingCatalog{c, cat})
					for _, img := range catalogImages(cat) {
						images[img] = "operator"
					}
				}
			} else {
				rel := &Release{Repo: r.Name, Tag: t.Name, Digest: m.Digest, Version: m.Labels[labelRelease], Manifest: m}
				s.Releases = append(s.Releases, rel)
				if p := rel.load(img); p != nil {
					rels = append(rels, pendingRelease{rel, p})
					for _, img := range releaseImages(p) {
						images[img] = "release"
					}
				}
			}
		}
	}
	sc.resolvePresence(ctx, s, images)
	for _, pc := range cats {
		pc.view.fill(s, pc.cat)
	}
	for _, pr := range rels {
		pr.view.fill(s, pr.p)
	}
}

func aliasOf(cs []*Catalog, digest string) string {
	for _, c := range cs {
		if c.Digest == digest && c.AliasOf == "" {
			return c.Ref()
		}
	}
	return ""
}

// image opens the single-platform image of m (the first present child of
// an index: catalogs and payloads carry the same content for every platform).
func (sc *Scanner) image(ctx context.Context, repo string, m *Manifest) (v1.Image, error) {
	d := m.Digest
	if len(m.Children) > 0 {
		d = ""
		for _, c := range m.Children {
			if c.Present {
				d = c.Digest
				break
			}
		}
		if d == "" {
			return nil, fmt.Errorf("no child of index %s is in the registry", m.Digest)
		}
	}
	rn, err := sc.repoName(repo)
	if err != nil {
		return nil, err
	}
	return remote.Image(rn.Digest(d), sc.opts(ctx)...)
}

// present says whether the registry holds image (resolved by
// resolvePresence beforehand).
func (s *Snapshot) present(image string) Presence {
	if p, ok := s.presence[image]; ok {
		return p
	}
	return PresenceUnknown
}

// resolvePresence decides for each image an upstream reference names
// whether the registry holds it: by digest among the manifests already
// scanned (mirrors keep digests), else by a HEAD of the digest or tag in
// each repository whose path is the reference's path or ends with it (a
// mirror keeps the source path under its prefix; images pushed by digest
// only have no tags, so the scan cannot have seen them).
//
// Found images are read like tagged ones (their size counts) and listed as
// untagged content of their repository, and a repository holding images a
// catalog or release names gets that kind, so the overview does not show
// operator and release images as "additional images".
func (sc *Scanner) resolvePresence(ctx context.Context, s *Snapshot, images map[string]string) {
	s.presence = map[string]Presence{}
	var todo []string
	var mu sync.Mutex
	markKind := func(repo *Repo, kind string) {
		if repo.Kind == "" {
			repo.Kind = kind
		}
	}
	for img, kind := range images {
		if _, ok := s.presence[img]; ok || img == "" {
			continue
		}
		r, err := ref.Parse(img)
		switch {
		case err != nil:
			s.presence[img] = PresenceUnknown
		case r.Digest != "" && s.byDigest[r.Digest] != nil:
			s.presence[img] = PresencePresent
			if repo := s.repoByName[s.byDigest[r.Digest].repo]; repo != nil {
				markKind(repo, kind)
			}
		default:
			s.presence[img] = PresenceMissing
			todo = append(todo, img)
		}
	}
	sort.Strings(todo)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(sc.Parallel, 8))
	for _, img := range todo {
		r, _ := ref.Parse(img)
		g.Go(func() error {
			for _, repo := range s.Repos {
				if repo.Name != r.Path && !strings.HasSuffix(repo.Name, "/"+r.Path) {
					continue
				}
				rn, err := sc.repoName(repo.Name)
				if err != nil {
					continue
				}
				var nr name.Reference = rn.Tag(r.Tag)
				if r.Digest != "" {
					nr = rn.Digest(r.Digest)
				}
				if r.Digest == "" {
					if _, err := remote.Head(nr, sc.opts(gctx)...); err == nil {
						mu.Lock()
						s.presence[img] = PresencePresent
						markKind(repo, images[img])
						mu.Unlock()
						return nil
					}
					continue
				}
				if m, err := sc.manifest(gctx, s, &mu, repo.Name, r.Digest); err == nil {
					mu.Lock()
					s.presence[img] = PresencePresent
					markKind(repo, images[img])
					if !slices.Contains(repo.Untagged, m) {
						repo.Untagged = append(repo.Untagged, m)
					}
					mu.Unlock()
					return nil
				}
			}
			return nil
		})
	}
	_ = g.Wait()
}

// Presence says whether an upstream image is in the mirror.
type Presence string

const (
	PresencePresent Presence = "present"
	PresenceMissing Presence = "missing"
	PresenceUnknown Presence = "unknown"
)

func isCosignTag(t string) bool {
	if !strings.HasPrefix(t, "sha256-") {
		return false
	}
	for _, suf := range []string{".sig", ".att", ".sbom"} {
		if strings.HasSuffix(t, suf) {
			return true
		}
	}
	return false
}

// cosignTarget maps sha256-<hex>.sig to sha256:<hex> and the kind.
func cosignTarget(t string) (string, string) {
	dot := strings.LastIndexByte(t, '.')
	kind := map[string]string{".sig": "signature", ".att": "attestation", ".sbom": "sbom"}[t[dot:]]
	return "sha256:" + strings.TrimPrefix(t[:dot], "sha256-"), kind
}

func platformString(p *v1.Platform) string {
	if p == nil {
		return "unknown"
	}
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

func isNotFound(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode == http.StatusNotFound
}

// MarshalJSON adds the derived fields.
func (m *Manifest) MarshalJSON() ([]byte, error) {
	type plain Manifest
	return json.Marshal(struct {
		*plain
		Complete  bool     `json:"complete"`
		Signed    bool     `json:"signed"`
		Platforms []string `json:"platforms,omitempty"`
	}{(*plain)(m), m.Complete(), m.Signed(), m.Platforms()})
}

// MarshalJSON includes the manifest of each tag.
func (t *Tag) MarshalJSON() ([]byte, error) {
	type plain Tag
	return json.Marshal(struct {
		*plain
		Manifest *Manifest `json:"manifest,omitempty"`
	}{(*plain)(t), t.Manifest})
}
