package regscan

import (
	"context"
	"sort"

	"github.com/blang/semver/v4"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/airlock-mirror/airlock/internal/catalog"
	"github.com/airlock-mirror/airlock/internal/release"
)

// Catalog is an operator catalog image in the registry with the presence of
// every bundle and related image it lists.
type Catalog struct {
	Repo    string `json:"repository"`
	Tag     string `json:"tag"`
	Digest  string `json:"digest"`
	Format  string `json:"format,omitempty"`
	AliasOf string `json:"aliasOf,omitempty"` // another tag of the same catalog, shown once
	Error   string `json:"error,omitempty"`

	Packages []*Package `json:"packages,omitempty"`

	Bundles        int `json:"bundles"`
	BundlesPresent int `json:"bundlesPresent"`
	Related        int `json:"relatedImages"`
	RelatedPresent int `json:"relatedImagesPresent"`
}

// Ref is repo:tag.
func (c *Catalog) Ref() string { return c.Repo + ":" + c.Tag }

// Complete says whether every bundle and related image is in the registry.
func (c *Catalog) Complete() bool {
	return c.Error == "" && c.Bundles == c.BundlesPresent && c.Related == c.RelatedPresent
}

// Package is one package of a catalog.
type Package struct {
	Name           string     `json:"name"`
	DefaultChannel string     `json:"defaultChannel"`
	Channels       []*Channel `json:"channels"`
	Bundles        []*Bundle  `json:"bundles"`
	Complete       bool       `json:"complete"`
}

// Channel is one channel with its head and the versions it keeps.
type Channel struct {
	Name     string   `json:"name"`
	Head     string   `json:"head"`
	Versions []string `json:"versions"`
}

// Bundle is one bundle with its image and related images.
type Bundle struct {
	Name     string     `json:"name"`
	Version  string     `json:"version"`
	Image    string     `json:"image"`
	Present  Presence   `json:"present"`
	Related  []ImageRef `json:"relatedImages"`
	Complete bool       `json:"complete"`
}

// ImageRef is an upstream image reference and whether the mirror holds it.
type ImageRef struct {
	Name    string   `json:"name,omitempty"`
	Image   string   `json:"image"`
	Present Presence `json:"present"`
}

// load reads the catalog content of img; an unreadable catalog keeps its
// error for the page instead of failing the whole scan.
func (c *Catalog) load(ctx context.Context, img v1.Image) *catalog.Catalog {
	cat, err := catalog.FromImage(ctx, img)
	if err != nil {
		c.Error = err.Error()
		return nil
	}
	return cat
}

// images lists every image the catalog names.
func catalogImages(cat *catalog.Catalog) []string {
	var out []string
	for _, b := range cat.Config.Bundles {
		out = append(out, b.Image)
		for _, ri := range b.RelatedImages {
			out = append(out, ri.Image)
		}
	}
	return out
}

// fill builds the view of cat once the presence of its images is known.
func (c *Catalog) fill(s *Snapshot, cat *catalog.Catalog) {
	c.Format = string(cat.Format)
	cfg := cat.Config
	pkgs := map[string]*Package{}
	for _, p := range cfg.Packages {
		pkgs[p.Name] = &Package{Name: p.Name, DefaultChannel: p.DefaultChannel, Complete: true}
	}
	pkgOf := func(name string) *Package {
		p := pkgs[name]
		if p == nil {
			p = &Package{Name: name, Complete: true}
			pkgs[name] = p
		}
		return p
	}
	// Versions and channel heads come from the catalog's own queries, so
	// the view shows exactly what `airlock catalog bundles|channels` print.
	infos, err := cat.Bundles(catalog.Selector{})
	if err != nil {
		c.Error = err.Error()
		return
	}
	versions := map[string]string{} // package/bundle -> version
	for _, bi := range infos {
		versions[bi.Package+"/"+bi.Name] = bi.Version
	}
	for i := range cfg.Bundles {
		b := &cfg.Bundles[i]
		p := pkgOf(b.Package)
		vb := &Bundle{Name: b.Name, Image: b.Image, Version: versions[b.Package+"/"+b.Name], Complete: true}
		vb.Present = s.present(b.Image)
		c.Bundles++
		if vb.Present == PresencePresent {
			c.BundlesPresent++
		} else {
			vb.Complete = false
		}
		for _, ri := range b.RelatedImages {
			if ri.Image == "" || ri.Image == b.Image {
				continue
			}
			ir := ImageRef{Name: ri.Name, Image: ri.Image, Present: s.present(ri.Image)}
			c.Related++
			if ir.Present == PresencePresent {
				c.RelatedPresent++
			} else {
				vb.Complete = false
			}
			vb.Related = append(vb.Related, ir)
		}
		if !vb.Complete {
			p.Complete = false
		}
		p.Bundles = append(p.Bundles, vb)
	}
	chans, err := cat.Channels(catalog.Selector{})
	if err != nil {
		c.Error = err.Error()
		return
	}
	heads := map[string]string{}
	for _, ci := range chans {
		heads[ci.Package+"/"+ci.Name] = ci.HeadVersion
	}
	for _, ch := range cfg.Channels {
		p := pkgOf(ch.Package)
		vc := &Channel{Name: ch.Name, Head: heads[ch.Package+"/"+ch.Name]}
		for _, e := range ch.Entries {
			if v := versions[ch.Package+"/"+e.Name]; v != "" {
				vc.Versions = append(vc.Versions, v)
			}
		}
		sortVersions(vc.Versions)
		p.Channels = append(p.Channels, vc)
	}
	for _, p := range pkgs {
		sort.Slice(p.Channels, func(i, j int) bool { return p.Channels[i].Name < p.Channels[j].Name })
		sort.Slice(p.Bundles, func(i, j int) bool { return p.Bundles[i].Name < p.Bundles[j].Name })
		c.Packages = append(c.Packages, p)
	}
	sort.Slice(c.Packages, func(i, j int) bool { return c.Packages[i].Name < c.Packages[j].Name })
}

// Release is an OpenShift release image in the registry with the presence
// of every component of its payload.
type Release struct {
	Repo       string     `json:"repository"`
	Tag        string     `json:"tag"`
	Digest     string     `json:"digest"`
	Version    string     `json:"version"`
	Arch       string     `json:"architecture,omitempty"`
	Error      string     `json:"error,omitempty"`
	Components []ImageRef `json:"components,omitempty"`
	Present    int        `json:"componentsPresent"`
	Signed     bool       `json:"signed"`
	// Previous and Next are the release-metadata update lists (the edges
	// the update service builds its graph from).
	Previous []string  `json:"previous,omitempty"`
	Next     []string  `json:"next,omitempty"`
	Manifest *Manifest `json:"-"`
}

// Ref is repo:tag.
func (r *Release) Ref() string { return r.Repo + ":" + r.Tag }

// Complete says whether every component is in the registry.
func (r *Release) Complete() bool { return r.Error == "" && r.Present == len(r.Components) }

func (r *Release) load(img v1.Image) *release.Payload {
	r.Signed = r.Manifest.Signed()
	p, err := release.Read(img, r.Ref())
	if err != nil {
		r.Error = err.Error()
		return nil
	}
	return p
}

func releaseImages(p *release.Payload) []string {
	out := make([]string, 0, len(p.Components))
	for _, c := range p.Components {
		out = append(out, c.Image.String())
	}
	return out
}

func (r *Release) fill(s *Snapshot, p *release.Payload) {
	r.Version, r.Arch = p.Version, p.Architecture
	r.Previous, r.Next = p.Previous, p.Metadata.Next
	for _, c := range p.Components {
		ir := ImageRef{Name: c.Name, Image: c.Image.String(), Present: s.present(c.Image.String())}
		if ir.Present == PresencePresent {
			r.Present++
		}
		r.Components = append(r.Components, ir)
	}
}

// sortVersions sorts semantic versions, newest last; unparsable ones sort
// as strings after them.
func sortVersions(vs []string) {
	sort.SliceStable(vs, func(i, j int) bool {
		a, aerr := semver.Parse(vs[i])
		b, berr := semver.Parse(vs[j])
		switch {
		case aerr == nil && berr == nil:
			return a.LT(b)
		case aerr == nil:
			return true
		case berr == nil:
			return false
		}
		return vs[i] < vs[j]
	})
}
