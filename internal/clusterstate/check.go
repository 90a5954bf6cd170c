package clusterstate

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/blang/semver/v4"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/operator-framework/operator-registry/alpha/declcfg"
	"golang.org/x/sync/errgroup"

	"github.com/airlock-mirror/airlock/internal/catalog"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/release"
)

// Cause says why a needed image is not pullable from the mirror.
type Cause string

const (
	// CauseNoMirrorSet: no IDMS/ITMS/ICSP rule covers the source, so the
	// cluster would go to the source registry, which it cannot reach.
	CauseNoMirrorSet Cause = "no mirror set covers the source"
	// CauseWrongPath: a rule covers it but no mirror it names has the
	// repository (OCPBUGS-47688-style wrong mirror set).
	CauseWrongPath Cause = "mirror set points at a wrong path"
	// CauseDigestAbsent: the mirror repository exists but lacks the digest.
	CauseDigestAbsent Cause = "digest absent"
	// CauseUnreadable: something needed to find the images (release
	// payload, catalog) could not be read.
	CauseUnreadable Cause = "cannot be read"
)

// Need is one image the cluster needs and why.
type Need struct {
	Image string // source reference, by digest (or tag for tag-only pulls)
	Why   string // "pod ns/name", "release 4.13.1 component etcd", ...
}

// Finding is a needed image that the mirror cannot serve.
type Finding struct {
	Need
	Cause Cause
	// Tried are the mirror references looked at, with the rule objects.
	Tried  []string
	Detail string
}

// CheckOptions configure Check.
type CheckOptions struct {
	// Mirror is the mirror registry host[:port]: images already named on it
	// (catalog sources usually are) are looked up there directly.
	Mirror string
	// Remote are the go-containerregistry options (transport, keychain)
	// that reach the mirror.
	Remote []remote.Option
	// Insecure allows plain HTTP to the mirror.
	Insecure bool
	// UpgradeImage is the release image of the planned upgrade, by digest;
	// default spec.desiredUpdate.image of the ClusterVersion.
	UpgradeImage string
	Parallel     int
}

// Result is what Check found.
type Result struct {
	Needed  int
	Missing []Finding
	// Upgrade is the version of the upgrade payload checked (empty: none).
	Upgrade string
}

// ByCause groups the findings.
func (r Result) ByCause() map[Cause][]Finding {
	out := map[Cause][]Finding{}
	for _, f := range r.Missing {
		out[f.Cause] = append(out[f.Cause], f)
	}
	return out
}

// Check lists every image the cluster needs — what its pods run now, every
// component of the planned upgrade's release payload, and the bundle and
// related images of each subscription's next version — and looks each up
// by digest through the mirror sets, as the node would pull it.
func Check(ctx context.Context, st *State, o CheckOptions) (*Result, error) {
	c := &checker{st: st, o: o, res: &Result{}}
	if c.o.Parallel <= 0 {
		c.o.Parallel = 8
	}
	var needs []Need
	for _, p := range st.Pods {
		for _, img := range p.Images {
			needs = append(needs, Need{Image: img, Why: "pod " + p.Namespace + "/" + p.Name})
		}
	}
	up, err := c.upgradeNeeds(ctx)
	if err != nil {
		return nil, err
	}
	needs = append(needs, up...)
	needs = append(needs, c.subscriptionNeeds(ctx)...)
	needs = dedupe(needs)
	c.res.Needed = len(needs)

	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.o.Parallel)
	for _, n := range needs {
		g.Go(func() error {
			f, err := c.lookup(gctx, n)
			if err != nil {
				return err
			}
			if f != nil {
				mu.Lock()
				c.res.Missing = append(c.res.Missing, *f)
				mu.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	c.res.Missing = append(c.res.Missing, c.unreadable...)
	sort.Slice(c.res.Missing, func(i, j int) bool {
		a, b := c.res.Missing[i], c.res.Missing[j]
		if a.Cause != b.Cause {
			return a.Cause < b.Cause
		}
		return a.Image+a.Why < b.Image+b.Why
	})
	return c.res, nil
}

type checker struct {
	st         *State
	o          CheckOptions
	res        *Result
	unreadable []Finding

	mu    sync.Mutex
	repos map[string]map[string]bool // registry -> repositories (nil: no catalog API)
}

// dedupe keeps one need per image, joining the reasons.
func dedupe(in []Need) []Need {
	by := map[string]*Need{}
	var order []string
	for _, n := range in {
		if e, ok := by[n.Image]; ok {
			if !strings.Contains(e.Why, n.Why) {
				e.Why += "; " + n.Why
			}
			continue
		}
		n := n
		by[n.Image] = &n
		order = append(order, n.Image)
	}
	out := make([]Need, len(order))
	for i, k := range order {
		out[i] = *by[k]
	}
	return out
}

// candidates are the references a node tries for image, in order, with the
// rule that produced each; ok is false when no rule covers a source that
// is not on the mirror itself.
func (c *checker) candidates(image string) (refs []string, rules []string, ok bool) {
	r, err := ref.Parse(image)
	if err != nil {
		return nil, nil, false
	}
	if c.o.Mirror != "" && (r.Registry == c.o.Mirror || strings.HasPrefix(image, c.o.Mirror+"/")) {
		return []string{image}, []string{"named on the mirror"}, true
	}
	byDigest := r.Digest != ""
	for _, rule := range c.st.MirrorSets.Rules {
		if rule.Digest() != byDigest {
			continue
		}
		rest, covered := matchSource(image, rule.Source)
		if !covered {
			continue
		}
		for _, m := range rule.Mirrors {
			refs = append(refs, m+rest)
			rules = append(rules, rule.Kind+" "+rule.Object)
		}
	}
	return refs, rules, len(refs) > 0
}

// matchSource matches a rule source against an image: an exact repository
// prefix (next character '/', ':' or '@'), or a "*.domain" wildcard on the
// host, as CRI-O applies mirror sets.
func matchSource(image, source string) (string, bool) {
	if strings.HasPrefix(source, "*.") {
		host, rest, _ := strings.Cut(image, "/")
		if strings.HasSuffix(host, source[1:]) {
			return "/" + rest, false // a wildcard maps whole hosts; rewriting it is not supported
		}
		return "", false
	}
	return below(image, source)
}

func (c *checker) lookup(ctx context.Context, n Need) (*Finding, error) {
	refs, rules, ok := c.candidates(n.Image)
	if !ok {
		return &Finding{Need: n, Cause: CauseNoMirrorSet}, nil
	}
	f := &Finding{Need: n, Cause: CauseWrongPath}
	for i, cand := range refs {
		f.Tried = append(f.Tried, cand+" ("+rules[i]+")")
		has, err := c.hasManifest(ctx, cand)
		if err != nil {
			return nil, fmt.Errorf("checking %s at %s: %w", n.Image, cand, err)
		}
		if has {
			return nil, nil
		}
		exists, err := c.hasRepository(ctx, cand)
		if err != nil {
			return nil, fmt.Errorf("checking repository of %s: %w", cand, err)
		}
		if exists {
			f.Cause = CauseDigestAbsent
		}
	}
	return f, nil
}

func (c *checker) nameRef(image string) (name.Reference, error) {
	var opts []name.Option
	if c.o.Insecure {
		opts = append(opts, name.Insecure)
	}
	return name.ParseReference(image, opts...)
}

func (c *checker) hasManifest(ctx context.Context, image string) (bool, error) {
	r, err := c.nameRef(image)
	if err != nil {
		return false, err
	}
	_, err = remote.Head(r, append(c.o.Remote, remote.WithContext(ctx))...)
	if err == nil {
		return true, nil
	}
	if isNotFound(err) {
		return false, nil
	}
	return false, err
}

// hasRepository reports whether the mirror holds the repository of image.
// Tag listing cannot tell (a repository pushed by digest only has no tags
// and answers 404), so the registry's catalog is read once per registry;
// registries without a catalog API fall back to the tag list.
func (c *checker) hasRepository(ctx context.Context, image string) (bool, error) {
	r, err := c.nameRef(image)
	if err != nil {
		return false, err
	}
	repo := r.Context()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.repos == nil {
		c.repos = map[string]map[string]bool{}
	}
	host := repo.RegistryStr()
	set, ok := c.repos[host]
	if !ok {
		names, err := remote.Catalog(ctx, repo.Registry, c.o.Remote...)
		if err == nil {
			set = map[string]bool{}
			for _, n := range names {
				set[n] = true
			}
		}
		c.repos[host] = set
	}
	if set != nil {
		return set[repo.RepositoryStr()], nil
	}
	_, err = remote.List(repo, append(c.o.Remote, remote.WithContext(ctx))...)
	if err == nil {
		return true, nil
	}
	if isNotFound(err) {
		return false, nil
	}
	return false, err
}

func isNotFound(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode == http.StatusNotFound
}

// pullable returns the first candidate of image present on the mirror.
func (c *checker) pullable(ctx context.Context, image string) (string, error) {
	refs, _, ok := c.candidates(image)
	if !ok {
		return "", fmt.Errorf("%s: %s", image, CauseNoMirrorSet)
	}
	for _, cand := range refs {
		if has, err := c.hasManifest(ctx, cand); err != nil {
			return "", err
		} else if has {
			return cand, nil
		}
	}
	return "", fmt.Errorf("%s: not on the mirror (tried %s)", image, strings.Join(refs, ", "))
}

// upgradeNeeds reads the planned upgrade's payload through the mirror.
func (c *checker) upgradeNeeds(ctx context.Context) ([]Need, error) {
	img := c.o.UpgradeImage
	if img == "" {
		img = c.st.Version.DesiredImage
	}
	if img == "" {
		return nil, nil
	}
	if !strings.Contains(img, "@sha256:") {
		return nil, fmt.Errorf("upgrade release image %s: give it by digest (oc adm release info --pullspecs shows it); clusters upgrade to a digest", img)
	}
	needs := []Need{{Image: img, Why: "upgrade release image"}}
	at, err := c.pullable(ctx, img)
	if err != nil {
		c.unreadable = append(c.unreadable, Finding{Need: needs[0], Cause: CauseUnreadable, Detail: "the payload's components cannot be listed: " + err.Error()})
		return nil, nil
	}
	r, err := ref.Parse(at)
	if err != nil {
		return nil, err
	}
	p, _, err := release.Open(ctx, release.RemoteSource{Options: c.o.Remote, Insecure: c.o.Insecure}, r)
	if err != nil {
		c.unreadable = append(c.unreadable, Finding{Need: needs[0], Cause: CauseUnreadable, Detail: err.Error()})
		return nil, nil
	}
	c.res.Upgrade = p.Version
	for _, comp := range p.Components {
		needs = append(needs, Need{Image: comp.Ref, Why: "release " + p.Version + " component " + comp.Name})
	}
	return needs, nil
}

// subscriptionNeeds finds, for each subscription, the bundle OLM would
// install next from its channel of the catalog the cluster reads (pulled
// through the mirror), and needs its bundle and related images.
func (c *checker) subscriptionNeeds(ctx context.Context) []Need {
	var needs []Need
	catalogs := map[string]*catalog.Catalog{}
	for _, s := range c.st.Subscriptions {
		who := "subscription " + s.Namespace + "/" + s.Name
		ns := s.SourceNamespace
		if ns == "" {
			ns = s.Namespace
		}
		cs, ok := c.st.CatalogSources[ns+"/"+s.Source]
		if !ok || cs.Image == "" {
			c.unreadable = append(c.unreadable, Finding{Need: Need{Image: ns + "/" + s.Source, Why: who}, Cause: CauseUnreadable, Detail: "catalog source not in the export"})
			continue
		}
		cat, ok := catalogs[cs.Image]
		if !ok {
			var err error
			cat, err = c.openCatalog(ctx, cs.Image)
			if err != nil {
				c.unreadable = append(c.unreadable, Finding{Need: Need{Image: cs.Image, Why: who + " catalog"}, Cause: CauseUnreadable, Detail: err.Error()})
			}
			catalogs[cs.Image] = cat
		}
		if cat == nil {
			continue
		}
		next, err := nextBundle(cat.Config, s, c.st.CSVs[s.Namespace+"/"+s.InstalledCSV].Version)
		if err != nil {
			c.unreadable = append(c.unreadable, Finding{Need: Need{Image: cs.Image, Why: who}, Cause: CauseUnreadable, Detail: err.Error()})
			continue
		}
		if next == nil {
			continue // at the channel head
		}
		why := who + " next " + next.Name
		needs = append(needs, Need{Image: next.Image, Why: why + " bundle"})
		for _, ri := range next.RelatedImages {
			if ri.Image != next.Image {
				needs = append(needs, Need{Image: ri.Image, Why: why})
			}
		}
	}
	return needs
}

func (c *checker) openCatalog(ctx context.Context, image string) (*catalog.Catalog, error) {
	at, err := c.pullable(ctx, image)
	if err != nil {
		return nil, err
	}
	r, err := c.nameRef(at)
	if err != nil {
		return nil, err
	}
	desc, err := remote.Get(r, append(c.o.Remote, remote.WithContext(ctx))...)
	if err != nil {
		return nil, fmt.Errorf("reading catalog %s: %w", at, err)
	}
	var img v1.Image
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, err
		}
		m, err := idx.IndexManifest()
		if err != nil || len(m.Manifests) == 0 {
			return nil, fmt.Errorf("catalog %s: empty index", at)
		}
		if img, err = idx.Image(m.Manifests[0].Digest); err != nil {
			return nil, err
		}
	} else if img, err = desc.Image(); err != nil {
		return nil, err
	}
	return catalog.FromImage(ctx, img)
}

// nextBundle is the entry of the subscription's channel that upgrades from
// the installed CSV (replaces it, skips it, or has it in its skipRange);
// of several, the highest version, as OLM picks. nil means none: the
// installed bundle is the head.
func nextBundle(cfg *declcfg.DeclarativeConfig, s Subscription, installedVersion string) (*declcfg.Bundle, error) {
	if s.InstalledCSV == "" {
		return nil, nil
	}
	var ch *declcfg.Channel
	for i := range cfg.Channels {
		if cfg.Channels[i].Package == s.Package && cfg.Channels[i].Name == s.Channel {
			ch = &cfg.Channels[i]
		}
	}
	if ch == nil {
		return nil, fmt.Errorf("package %s has no channel %q in the catalog", s.Package, s.Channel)
	}
	iv, _ := semver.ParseTolerant(installedVersion)
	bundles := map[string]*declcfg.Bundle{}
	for i := range cfg.Bundles {
		if cfg.Bundles[i].Package == s.Package {
			bundles[cfg.Bundles[i].Name] = &cfg.Bundles[i]
		}
	}
	var best *declcfg.Bundle
	var bestV semver.Version
	for _, e := range ch.Entries {
		if e.Name == s.InstalledCSV {
			continue
		}
		up := e.Replaces == s.InstalledCSV
		for _, sk := range e.Skips {
			up = up || sk == s.InstalledCSV
		}
		if !up && e.SkipRange != "" && installedVersion != "" {
			if rg, err := semver.ParseRange(e.SkipRange); err == nil && rg(iv) {
				up = true
			}
		}
		if !up {
			continue
		}
		b := bundles[e.Name]
		if b == nil {
			return nil, fmt.Errorf("channel %s entry %s has no bundle in the catalog", s.Channel, e.Name)
		}
		v := bundleVersion(b)
		if best == nil || v.GT(bestV) {
			best, bestV = b, v
		}
	}
	return best, nil
}

func bundleVersion(b *declcfg.Bundle) semver.Version {
	for _, p := range b.Properties {
		if p.Type == "olm.package" {
			var v struct {
				Version string `json:"version"`
			}
			if jsonUnmarshal(p.Value, &v) == nil {
				if sv, err := semver.ParseTolerant(v.Version); err == nil {
					return sv
				}
			}
		}
	}
	return semver.Version{}
}
