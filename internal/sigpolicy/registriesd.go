package sigpolicy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// RegistriesD is a containers-registries.d(5) directory: where the
// OpenPGP signatures of a scope are published (lookaside).
type RegistriesD struct {
	Dir     string
	Default string
	Docker  map[string]string // scope → lookaside URL
	// Client fetches http(s) lookasides (nil: http.DefaultClient).
	Client *http.Client
}

type registriesFile struct {
	DefaultDocker *namespace           `json:"default-docker"`
	Docker        map[string]namespace `json:"docker"`
}

type namespace struct {
	Lookaside              string `json:"lookaside"`
	SigStore               string `json:"sigstore"` // the older name of lookaside
	LookasideStaging       string `json:"lookaside-staging"`
	SigStoreStaging        string `json:"sigstore-staging"`
	UseSigstoreAttachments *bool  `json:"use-sigstore-attachments"`
}

func (n namespace) url() string {
	if n.Lookaside != "" {
		return n.Lookaside
	}
	return n.SigStore
}

// LoadRegistriesD reads every *.yaml of dir. As containers/image does, a
// scope (or default-docker) configured in two files is an error.
func LoadRegistriesD(dir string) (*RegistriesD, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("--registries.d: %w", err)
	}
	rd := &RegistriesD{Dir: dir, Docker: map[string]string{}}
	from := map[string]string{}
	var names []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".yaml") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, n := range names {
		path := filepath.Join(dir, n)
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		var f registriesFile
		if err := yaml.UnmarshalStrict(data, &f); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if f.DefaultDocker != nil {
			if prev := from["default-docker"]; prev != "" {
				return nil, fmt.Errorf("%s: default-docker is also configured in %s", path, prev)
			}
			from["default-docker"] = path
			rd.Default = f.DefaultDocker.url()
		}
		for scope, ns := range f.Docker {
			if prev := from[scope]; prev != "" {
				return nil, fmt.Errorf("%s: docker scope %q is also configured in %s", path, scope, prev)
			}
			if err := checkScope(scope); err != nil {
				return nil, fmt.Errorf("%s: docker scope %q: %w", path, scope, err)
			}
			from[scope] = path
			if u := ns.url(); u != "" {
				rd.Docker[scope] = u
			}
		}
	}
	return rd, nil
}

// lookaside returns the lookaside URL for image, "" when none applies.
func (rd *RegistriesD) lookaside(image string) string {
	for _, s := range candidateScopes(image) {
		if u, ok := rd.Docker[s]; ok {
			return u
		}
	}
	return rd.Default
}

// maxLookasideSignatures bounds how many signature-N are read.
const maxLookasideSignatures = 16

// Fetch reads BASE/<repository path>@sha256=<hex>/signature-1, -2, ...
// until the first one that does not exist (the containers signature
// storage layout), from file:// or http(s).
func (rd *RegistriesD) Fetch(ctx context.Context, image, digest string) (sigs [][]byte, where string, err error) {
	base := rd.lookaside(image)
	if base == "" {
		return nil, "", fmt.Errorf("no lookaside for %s in --registries.d %s", image, rd.Dir)
	}
	repo, _, _ := splitRef(normalize(image))
	_, path, _ := strings.Cut(repo, "/")
	dir := strings.TrimSuffix(base, "/") + "/" + path + "@" + digestPath(digest)
	for i := 1; i <= maxLookasideSignatures; i++ {
		data, err := rd.get(ctx, fmt.Sprintf("%s/signature-%d", dir, i))
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return nil, dir, err
		}
		sigs = append(sigs, data)
	}
	return sigs, dir, nil
}

func (rd *RegistriesD) get(ctx context.Context, raw string) ([]byte, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("lookaside %s: %w", raw, err)
	}
	switch u.Scheme {
	case "file":
		f, err := os.Open(u.Path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return io.ReadAll(io.LimitReader(f, 1<<20))
	case "http", "https":
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
		if err != nil {
			return nil, err
		}
		c := rd.Client
		if c == nil {
			c = http.DefaultClient
		}
		resp, err := c.Do(req)
		if err != nil {
			return nil, fmt.Errorf("lookaside: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			return nil, fs.ErrNotExist
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("lookaside %s: %s", raw, resp.Status)
		}
		return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	}
	return nil, fmt.Errorf("lookaside %s: want a file://, http:// or https:// URL", raw)
}
