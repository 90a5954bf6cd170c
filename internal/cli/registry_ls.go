package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
)

// RegistryLsOptions holds `airlock registry ls` flags and arguments.
type RegistryLsOptions struct {
	Registry RegistryFlags
	Tags     bool
	Output   string
	PageSize int
	// Parallel bounds concurrent tag-list requests with --tags.
	Parallel int

	host   string // host[:port]
	prefix string // repository path or namespace given after the host

	streams IOStreams
}

// LsRepository is one repository in `registry ls -o json` output.
type LsRepository struct {
	Name string   `json:"name"`
	Tags []string `json:"tags,omitempty"`
}

// LsResult is the `registry ls -o json` document.
type LsResult struct {
	Registry     string         `json:"registry"`
	Repositories []LsRepository `json:"repositories"`
}

func newRegistryLsCommand(streams IOStreams) *cobra.Command {
	o := &RegistryLsOptions{streams: streams}
	cmd := &cobra.Command{
		Use:   "ls HOST[/REPO]",
		Short: "List the repositories (and with --tags every repo:tag) of a registry",
		Long: `List the repositories of a registry through its catalog API
(/v2/_catalog), following pagination. With --tags, list every tag of every
repository as HOST/REPO:TAG. With HOST/REPO, list the tags of that
repository; if HOST/PATH is not a repository, list the repositories under
the namespace PATH.

Credentials come from the same files as every airlock command (airlock
login, podman login, docker login); --authfile picks one file.`,
		Example: `  # Every repository of the mirror registry
  airlock registry ls mirror.example.com:5000 --ca-file ./airlock-registry/certs/ca.crt

  # Every image tag, as references ready for skopeo/podman
  airlock registry ls mirror.example.com:5000 --tags

  # Tags of one repository, as JSON
  airlock registry ls mirror.example.com:5000/ocp4/openshift4 -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	o.Registry.AddFlags(cmd.Flags())
	cmd.Flags().BoolVar(&o.Tags, "tags", false, "list every tag of every repository (HOST/REPO:TAG)")
	cmd.Flags().StringVarP(&o.Output, "output", "o", "text", "output format: text or json")
	cmd.Flags().IntVar(&o.PageSize, "page-size", 1000, "entries asked per catalog/tags page (the registry may return fewer)")
	cmd.Flags().IntVar(&o.Parallel, "parallel", 8, "tag lists fetched at once with --tags")
	return cmd
}

// Complete splits HOST[/REPO].
func (o *RegistryLsOptions) Complete(args []string) error {
	s := strings.TrimPrefix(args[0], "docker://")
	s = strings.TrimSuffix(s, "/")
	o.host, o.prefix, _ = strings.Cut(s, "/")
	return nil
}

// Validate checks the host, path and flags.
func (o *RegistryLsOptions) Validate() error {
	if o.host == "" {
		return errors.New("give a registry HOST[:PORT], optionally followed by /REPO")
	}
	if _, err := name.NewRegistry(o.host); err != nil {
		return fmt.Errorf("invalid registry %q: %w", o.host, err)
	}
	if o.prefix != "" {
		if _, err := name.NewRepository(o.host + "/" + o.prefix); err != nil {
			return fmt.Errorf("invalid repository %q: %w", o.host+"/"+o.prefix, err)
		}
	}
	if o.Output != "text" && o.Output != "json" {
		return fmt.Errorf("-o/--output %q: want text or json", o.Output)
	}
	if o.PageSize < 1 {
		return fmt.Errorf("--page-size %d: want at least 1", o.PageSize)
	}
	if o.Parallel < 1 {
		return fmt.Errorf("--parallel %d: want at least 1", o.Parallel)
	}
	return nil
}

// Run lists and prints.
func (o *RegistryLsOptions) Run(ctx context.Context) error {
	res, withTags, err := o.list(ctx)
	if err != nil {
		return err
	}
	if o.Output == "json" {
		enc := json.NewEncoder(o.streams.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	for _, r := range res.Repositories {
		if !withTags {
			fmt.Fprintf(o.streams.Out, "%s/%s\n", res.Registry, r.Name)
			continue
		}
		for _, t := range r.Tags {
			fmt.Fprintf(o.streams.Out, "%s/%s:%s\n", res.Registry, r.Name, t)
		}
	}
	return nil
}

// list returns the repositories, and whether their tags were listed (with
// --tags, or when the argument named one repository).
func (o *RegistryLsOptions) list(ctx context.Context) (*LsResult, bool, error) {
	reg, err := name.NewRegistry(o.host, o.Registry.NameOptions()...)
	if err != nil {
		return nil, false, fmt.Errorf("invalid registry %q: %w", o.host, err)
	}
	kc, err := o.Registry.Keychain()
	if err != nil {
		return nil, false, err
	}
	base, err := o.Registry.Transport()
	if err != nil {
		return nil, false, err
	}
	l := &lister{reg: reg, keychain: kc, base: base, pageSize: o.PageSize}
	res := &LsResult{Registry: o.host, Repositories: []LsRepository{}}

	if o.prefix != "" {
		// HOST/REPO: the tags of that repository, if it is one.
		tags, err := l.tags(ctx, o.prefix)
		if err == nil {
			res.Repositories = append(res.Repositories, LsRepository{Name: o.prefix, Tags: tags})
			return res, true, nil
		}
		if !isNameUnknown(err) {
			return nil, false, o.explain(fmt.Sprintf("listing tags of %s/%s", o.host, o.prefix), err)
		}
	}

	repos, err := l.catalog(ctx)
	if err != nil {
		return nil, false, o.explain("listing repositories of "+o.host, err)
	}
	if o.prefix != "" {
		var under []string
		for _, r := range repos {
			if strings.HasPrefix(r, o.prefix+"/") {
				under = append(under, r)
			}
		}
		if len(under) == 0 {
			return nil, false, fmt.Errorf("%s/%s: no such repository, and no repository under that namespace", o.host, o.prefix)
		}
		repos = under
	}
	res.Repositories = make([]LsRepository, len(repos))
	for i, r := range repos {
		res.Repositories[i].Name = r
	}
	if !o.Tags {
		return res, false, nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.Parallel)
	for i := range res.Repositories {
		g.Go(func() error {
			repo := res.Repositories[i].Name
			tags, err := l.tags(gctx, repo)
			if err != nil {
				// A repository deleted between catalog and tag list is
				// not an error: it simply has no tags any more.
				if isNameUnknown(err) {
					return nil
				}
				return o.explain(fmt.Sprintf("listing tags of %s/%s", o.host, repo), err)
			}
			res.Repositories[i].Tags = tags
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, false, err
	}
	return res, true, nil
}

// lister pages through a registry's catalog and tag lists.
//
// go-containerregistry's remote.Catalog/List are not used: they require a
// Link URL's scheme to equal name.Registry.Scheme(), which is "http" for
// loopback and private addresses even when the registry serves HTTPS (as
// airlock's own registry does by default), so paging fails there.
type lister struct {
	reg      name.Registry
	keychain authn.Keychain
	base     http.RoundTripper
	pageSize int
}

// catalog returns every repository name, sorted.
func (l *lister) catalog(ctx context.Context) ([]string, error) {
	var all []string
	err := l.pages(ctx, l.reg, l.reg.Scope(transport.PullScope), "/v2/_catalog", func(body io.Reader) (int, error) {
		var page struct {
			Repositories []string `json:"repositories"`
		}
		if err := json.NewDecoder(body).Decode(&page); err != nil {
			return 0, fmt.Errorf("decoding catalog page: %w", err)
		}
		all = append(all, page.Repositories...)
		return len(page.Repositories), nil
	})
	sort.Strings(all)
	return all, err
}

// tags returns every tag of repo, sorted.
func (l *lister) tags(ctx context.Context, repo string) ([]string, error) {
	r := l.reg.Repo(repo)
	var all []string
	err := l.pages(ctx, r, r.Scope(transport.PullScope), "/v2/"+repo+"/tags/list", func(body io.Reader) (int, error) {
		var page struct {
			Tags []string `json:"tags"`
		}
		if err := json.NewDecoder(body).Decode(&page); err != nil {
			return 0, fmt.Errorf("decoding tags page: %w", err)
		}
		all = append(all, page.Tags...)
		return len(page.Tags), nil
	})
	sort.Strings(all)
	return all, err
}

// maxPages stops a registry whose Link headers loop forever.
const maxPages = 100000

// pages GETs path with ?n=pageSize, hands each body to read, and follows
// `Link: <next>; rel="next"` until there is none. Credentials for res come
// from the keychain; the registry's token flow is run for scope.
func (l *lister) pages(ctx context.Context, res authn.Resource, scope, path string, read func(io.Reader) (int, error)) error {
	authr, err := l.keychain.Resolve(res)
	if err != nil {
		return err
	}
	tr, err := transport.NewWithContext(ctx, l.reg, authr, l.base, []string{scope})
	if err != nil {
		return err
	}
	client := &http.Client{Transport: tr}
	next := &url.URL{Scheme: l.reg.Scheme(), Host: l.reg.RegistryStr(), Path: path, RawQuery: "n=" + strconv.Itoa(l.pageSize)}
	seen := map[string]bool{}
	for range maxPages {
		if seen[next.String()] {
			return fmt.Errorf("registry pagination loops back to %s", next.Redacted())
		}
		seen[next.String()] = true
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, next.String(), nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		n, err := func() (int, error) {
			defer resp.Body.Close()
			if err := transport.CheckError(resp, http.StatusOK); err != nil {
				return 0, err
			}
			return read(resp.Body)
		}()
		if err != nil && len(seen) == 1 && next.Query().Has("n") && isPaginationNumberInvalid(err) {
			// The registry caps page sizes below --page-size (distribution
			// rejects n above its catalog maxentries): let it pick.
			next.RawQuery = ""
			continue
		}
		if err != nil {
			return err
		}
		link, err := nextLink(resp.Header.Get("Link"), next)
		if err != nil || link == nil {
			return err
		}
		// The next page must be on the same registry: credentials are
		// never sent to a host a response names.
		if link.Host != l.reg.RegistryStr() {
			return fmt.Errorf("registry pagination points to another host %q; refusing to follow it", link.Host)
		}
		if n == 0 {
			return fmt.Errorf("registry returned an empty page with a next link %s", link.Redacted())
		}
		next = link
	}
	return fmt.Errorf("registry pagination did not end after %d pages", maxPages)
}

// nextLink parses an RFC 8288 Link header and returns the rel="next" target
// resolved against the current URL, or nil when there is none.
func nextLink(header string, current *url.URL) (*url.URL, error) {
	if header == "" {
		return nil, nil
	}
	for _, part := range strings.Split(header, ",") {
		target, params, ok := strings.Cut(strings.TrimSpace(part), ";")
		target = strings.TrimSpace(target)
		if !ok || !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
			continue
		}
		isNext := false
		for _, p := range strings.Split(params, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(k, "rel") && slices.Contains(strings.Fields(strings.Trim(v, `"`)), "next") {
				isNext = true
			}
		}
		if !isNext {
			continue
		}
		u, err := current.Parse(strings.Trim(target, "<>"))
		if err != nil {
			return nil, fmt.Errorf("registry sent an invalid Link header: %w", err)
		}
		// Keep the scheme we talk over; the transport settled it at ping.
		u.Scheme = current.Scheme
		return u, nil
	}
	return nil, nil
}

func isPaginationNumberInvalid(err error) bool {
	var terr *transport.Error
	if errors.As(err, &terr) {
		for _, d := range terr.Errors {
			if d.Code == "PAGINATION_NUMBER_INVALID" {
				return true
			}
		}
	}
	return false
}

func isNameUnknown(err error) bool {
	var terr *transport.Error
	if !errors.As(err, &terr) {
		return false
	}
	if terr.StatusCode == http.StatusNotFound {
		return true
	}
	for _, d := range terr.Errors {
		if d.Code == transport.NameUnknownErrorCode {
			return true
		}
	}
	return false
}

// explain adds what to do for the usual failures.
func (o *RegistryLsOptions) explain(what string, err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch terr.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("%s: %w (log in with `airlock login %s -u USER` or pass --authfile)", what, err, o.host)
		case http.StatusNotFound:
			return fmt.Errorf("%s: %w (the registry may not offer the catalog API)", what, err)
		}
	}
	msg := err.Error()
	if strings.Contains(msg, "x509:") || strings.Contains(msg, "certificate") {
		return fmt.Errorf("%s: %w (trust the registry's CA with --ca-file FILE, or --insecure for a test registry)", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
