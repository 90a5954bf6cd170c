package retention

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/operator-framework/operator-registry/alpha/declcfg"

	"github.com/airlock-mirror/airlock/internal/catalog"
	"github.com/airlock-mirror/airlock/internal/catalogimage"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/regscan"
)

// Target registry access for Apply.
type Access struct {
	// Registry is the host the references use ("airlock.internal" with
	// the embedded registry's in-process transport).
	Registry string
	// Remote are the options of every API call (transport, auth).
	Remote []remote.Option
	// Images reads and writes images (the engine), for catalog rebuilds.
	Images catalogimage.Images
	// NameOptions parse references; nil allows plain HTTP (name.Insecure),
	// as the in-process transport needs.
	NameOptions []name.Option
}

// Result says what Apply did.
type Result struct {
	Deleted  int      `json:"manifestsDeleted"`
	Rebuilt  []string `json:"catalogsRebuilt,omitempty"`
	Failures []string `json:"failures,omitempty"`
}

// Apply carries out d: catalogs are rebuilt first (so no catalog ever names
// an image that is already gone), then manifests are deleted with their
// signatures and other referrers. A manifest that cannot be deleted is a
// failure naming it; the others still go.
func Apply(ctx context.Context, s *regscan.Snapshot, d *Decision, a Access) (Result, error) {
	var res Result
	deletes := append([]Target(nil), d.Delete...)
	for _, c := range d.Catalogs {
		view := s.Catalog(c.Ref)
		if view == nil {
			return res, fmt.Errorf("catalog %s is no longer in the snapshot", c.Ref)
		}
		if err := rebuild(ctx, a, view, d.catalogKeep[c.Ref]); err != nil {
			return res, fmt.Errorf("rebuilding catalog %s without the dropped bundles: %w", c.Ref, err)
		}
		res.Rebuilt = append(res.Rebuilt, c.Ref)
		// The previous catalog manifest is now untagged: delete it too, or
		// its layers would never be collected.
		deletes = append(deletes, Target{Repo: view.Repo, Digest: view.Digest, Reason: "replaced by the rebuilt catalog"})
	}
	for _, t := range deletes {
		if err := deleteManifest(ctx, a, t.Repo, t.Digest); err != nil {
			res.Failures = append(res.Failures, fmt.Sprintf("%s@%s: %v", t.Repo, t.Digest, err))
			continue
		}
		res.Deleted++
		if m := s.Manifest(t.Digest); m != nil {
			for _, r := range m.Referrers {
				repo, digest, err := referrerTarget(ctx, a, r)
				if err == nil {
					err = deleteManifest(ctx, a, repo, digest)
				}
				if err != nil {
					res.Failures = append(res.Failures, fmt.Sprintf("%s of %s@%s: %v", r.Kind, t.Repo, t.Digest, err))
					continue
				}
				res.Deleted++
			}
		}
	}
	if len(res.Failures) > 0 {
		return res, fmt.Errorf("%d deletions failed: %s", len(res.Failures), strings.Join(res.Failures, "; "))
	}
	return res, nil
}

func (a Access) repo(r string) (name.Repository, error) {
	opts := a.NameOptions
	if opts == nil {
		opts = []name.Option{name.Insecure}
	}
	return name.NewRepository(a.Registry+"/"+r, opts...)
}

func deleteManifest(ctx context.Context, a Access, repo, digest string) error {
	rn, err := a.repo(repo)
	if err != nil {
		return err
	}
	err = remote.Delete(rn.Digest(digest), append(a.Remote, remote.WithContext(ctx))...)
	var te *transport.Error
	if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
		return nil // already gone: the goal is reached
	}
	if errors.As(err, &te) && te.StatusCode == http.StatusMethodNotAllowed {
		// Distribution answers 405 UNSUPPORTED unless deletes are enabled.
		return fmt.Errorf("the registry does not allow deleting manifests (HTTP 405): enable deletes (docker registry: storage.delete.enabled: true in its config.yml, or REGISTRY_STORAGE_DELETE_ENABLED=true) and prune again: %w", err)
	}
	return err
}

// referrerTarget resolves a referrer to repo@digest: OCI referrers carry
// their digest, cosign tags are resolved.
func referrerTarget(ctx context.Context, a Access, r regscan.Referrer) (string, string, error) {
	if r.Digest != "" {
		repo, _, _ := strings.Cut(r.Ref, "@")
		return repo, r.Digest, nil
	}
	repo, tag, ok := strings.Cut(r.Ref, ":")
	if !ok {
		return "", "", fmt.Errorf("referrer %s has neither digest nor tag", r.Ref)
	}
	rn, err := a.repo(repo)
	if err != nil {
		return "", "", err
	}
	desc, err := remote.Head(rn.Tag(tag), append(a.Remote, remote.WithContext(ctx))...)
	if err != nil {
		return "", "", err
	}
	return repo, desc.Digest.String(), nil
}

// rebuild writes the catalog back under its tag with only the kept bundles.
func rebuild(ctx context.Context, a Access, view *regscan.Catalog, keep map[string]bool) error {
	src := ref.MustParse(a.Registry + "/" + view.Repo + "@" + view.Digest)
	dst := ref.MustParse(a.Registry + "/" + view.Ref())
	img, err := a.Images.Image(ctx, src)
	if err != nil {
		return err
	}
	cat, err := catalog.FromImage(ctx, img)
	if err != nil {
		return err
	}
	filtered := &catalog.Catalog{Config: keepOnly(cat.Config, keep), Format: cat.Format, Source: cat.Source, Labels: cat.Labels,
		ConfigsDir: cat.ConfigsDir, DatabasePath: cat.DatabasePath}
	if cat.Format != catalog.FormatFBC {
		return fmt.Errorf("%s is a sqlite catalog: prune it with 'airlock catalog filter --output-db' and rebuild, retention rewrites file-based catalogs only", view.Ref())
	}
	_, err = catalogimage.Rebuild(ctx, a.Images, src, filtered, dst)
	return err
}

// keepOnly copies cfg with the bundles keep names ("package/bundle") and
// channel entries of kept bundles only. An entry's replaces/skips may then
// name a dropped bundle: OLM accepts such dangling edges (it is how
// minVersion-pruned catalogs look), and clusters that run the dropped
// version still find their upgrade.
func keepOnly(cfg *declcfg.DeclarativeConfig, keep map[string]bool) *declcfg.DeclarativeConfig {
	out := *cfg
	out.Bundles = nil
	for _, b := range cfg.Bundles {
		if keep[b.Package+"/"+b.Name] {
			out.Bundles = append(out.Bundles, b)
		}
	}
	out.Channels = nil
	for _, ch := range cfg.Channels {
		c := ch
		c.Entries = nil
		for _, e := range ch.Entries {
			if keep[ch.Package+"/"+e.Name] {
				c.Entries = append(c.Entries, e)
			}
		}
		if len(c.Entries) > 0 {
			out.Channels = append(out.Channels, c)
		}
	}
	return &out
}
