// Package retention decides what a mirror registry can let go of and lets
// it go: policies such as "keep the last N tags of each repository", "keep
// the last N versions of each operator channel" and "keep what was pulled
// lately" turn a registry Snapshot (package regscan) into a Decision — which
// manifests to delete, why, and how many bytes that frees after dedup —
// which Apply carries out through the registry API. Garbage collection of
// the embedded registry then returns the space (package registry).
//
// Safety rules, whatever the policy: a manifest is deleted only when no kept
// tag points to it and no kept index, catalog or release needs it; a blob is
// counted as freed only when no kept manifest uses it; signatures and other
// referrers of kept manifests stay, those of deleted manifests go with them.
package retention

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/blang/semver/v4"

	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/regscan"
)

// Policy says what to keep. Zero fields keep everything they govern.
type Policy struct {
	// KeepLast keeps the newest N tags of each repository (newest by
	// semantic version when tags parse as one, else by image creation time,
	// else by name). Catalog and release repositories are included.
	KeepLast int
	// KeepVersions keeps the newest N bundles of each channel of every
	// operator catalog in the registry; the catalog image is rebuilt
	// without the others, and their bundle and related images are deleted
	// unless a kept bundle or release still names them.
	KeepVersions int
	// KeepPulledWithin keeps tags pulled within this period, whatever the
	// other rules say (needs Pulls).
	KeepPulledWithin time.Duration
	// Protect lists repositories (regular expressions on the repository
	// name) that are never pruned.
	Protect []*regexp.Regexp
	// Within, when set, limits pruning to the repositories it names or
	// holds ("ocp4": ocp4/...); the others are kept as if protected but
	// still scanned, so a blob they share is not counted as freed.
	Within string
	// UpgradePath keeps the release images on the upgrade path from the
	// clusters' current versions to the channel head and lets the other
	// releases go (nil: releases are governed by the other rules only).
	UpgradePath *UpgradePath
}

// Pulls tells when a tag was last pulled; nil when unknown.
type Pulls interface {
	LastPull(repo, tag string) (time.Time, bool)
}

// Target is one manifest to delete from one repository.
type Target struct {
	Repo   string   `json:"repository"`
	Digest string   `json:"digest"`
	Tags   []string `json:"tags,omitempty"`
	Reason string   `json:"reason"`
}

// CatalogChange is a catalog image rebuilt without dropped bundles.
type CatalogChange struct {
	Ref     string              `json:"catalog"`
	Dropped map[string][]string `json:"droppedBundles"` // package -> bundle names
	Kept    int                 `json:"keptBundles"`
}

// Decision is what a policy does to a snapshot.
type Decision struct {
	Delete   []Target        `json:"delete"`
	Catalogs []CatalogChange `json:"catalogs,omitempty"`
	// Releases is the upgrade-path verdict on every release image, sorted
	// by version (only with Policy.UpgradePath).
	Releases []ReleaseDecision `json:"releases,omitempty"`
	// Warnings are things the operator should know before applying.
	Warnings []string `json:"warnings,omitempty"`
	// FreedBytes is the size of the blobs only deleted manifests use: what
	// garbage collection returns.
	FreedBytes int64 `json:"freedBytes"`
	FreedBlobs int   `json:"freedBlobs"`
	KeptTags   int   `json:"keptTags"`

	// catalogKeep holds, per catalog ref, the bundles to keep (for Apply).
	catalogKeep map[string]map[string]bool
}

// Decide applies p to s at time now.
func Decide(s *regscan.Snapshot, p Policy, pulls Pulls, now time.Time) (*Decision, error) {
	if p.KeepPulledWithin > 0 && pulls == nil {
		return nil, fmt.Errorf("keeping recently pulled tags needs the pull log of the embedded registry (prune with --root)")
	}
	d := &Decision{catalogKeep: map[string]map[string]bool{}}
	within := strings.Trim(p.Within, "/")
	protected := func(repo string) bool {
		if within != "" && repo != within && !strings.HasPrefix(repo, within+"/") {
			return true
		}
		for _, re := range p.Protect {
			if re.MatchString(repo) {
				return true
			}
		}
		return false
	}

	// 0. Releases the upgrade path keeps (pinned like any rule) or lets go.
	relKeep, relDrop := map[string]bool{}, map[string]string{} // repo@digest
	if p.UpgradePath != nil {
		pp, err := p.UpgradePath.plan(s)
		if err != nil {
			return nil, err
		}
		d.Warnings = append(d.Warnings, pp.warnings...)
		for _, r := range s.Releases {
			rd := pp.decide(r)
			if protected(r.Repo) && !rd.Keep {
				rd.Keep, rd.Reason = true, "in a repository this prune does not touch (--protect, or outside the --registry prefix)"
			}
			d.Releases = append(d.Releases, rd)
			key := r.Repo + "@" + r.Digest
			if rd.Keep {
				relKeep[key] = true
			} else {
				relDrop[key] = rd.Reason
			}
		}
		// A digest two tags share is kept when either release is.
		for k := range relKeep {
			delete(relDrop, k)
		}
		sortReleaseDecisions(d.Releases)
	}

	// 1. Tags each repository keeps.
	type tagRef struct {
		repo   string
		tag    *regscan.Tag
		reason string
	}
	var dropped []tagRef
	keptDigests := map[string]bool{} // repo@digest kept by a tag
	// pinned are kept by an explicit rule (protected, among the newest N,
	// pulled lately); without --keep-last every tag is kept by default, but
	// that does not shield the images of dropped bundles.
	pinned := map[string]bool{}
	for _, r := range s.Repos {
		tags := append([]*regscan.Tag(nil), r.Tags...)
		sortNewestFirst(tags)
		for i, t := range tags {
			key := r.Name + "@" + t.Digest
			rule := protected(r.Name) || (p.KeepLast > 0 && i < p.KeepLast) || relKeep[key]
			if !rule && p.KeepPulledWithin > 0 {
				if when, ok := pulls.LastPull(r.Name, t.Name); ok && now.Sub(when) <= p.KeepPulledWithin {
					rule = true
				}
			}
			if t.Manifest == nil {
				rule = true // unreadable: never delete what we could not inspect
			}
			if rule {
				pinned[key] = true
			}
			upDrop, dropRelease := relDrop[key]
			if keep := rule || (p.KeepLast <= 0 && !dropRelease); keep {
				d.KeptTags++
				keptDigests[key] = true
			} else {
				reason := fmt.Sprintf("not among the newest %d tags of %s", p.KeepLast, r.Name)
				if dropRelease {
					reason = upDrop
				}
				dropped = append(dropped, tagRef{r.Name, t, reason})
			}
		}
	}

	// A release the upgrade path lets go but another rule keeps (among the
	// newest N, pulled lately) is kept: say so rather than "drop".
	for i := range d.Releases {
		r := &d.Releases[i]
		if !r.Keep && keptDigests[r.repo+"@"+r.Digest] {
			r.Keep, r.Reason = true, "kept by another rule (--keep-last or --keep-pulled-within), though "+r.Reason
		}
	}

	// 2. Catalog bundles to drop, and the images only they name.
	droppedImages := map[string]string{} // upstream image -> reason
	neededImages := map[string]bool{}    // named by something kept
	for _, c := range s.Catalogs {
		if c.AliasOf != "" || c.Error != "" {
			continue
		}
		keptCatalog := keptDigests[c.Repo+"@"+c.Digest]
		keepBundles := map[string]bool{}
		change := CatalogChange{Ref: c.Ref(), Dropped: map[string][]string{}}
		for _, pk := range c.Packages {
			kept := keepNewest(pk, p.KeepVersions)
			if protected(c.Repo) || !keptCatalog {
				// A protected catalog keeps all; a catalog whose tag goes
				// keeps nothing of its own (its images may still be named
				// by another catalog).
				if protected(c.Repo) {
					kept = allBundles(pk)
				} else {
					kept = map[string]bool{}
				}
			}
			for _, b := range pk.Bundles {
				imgs := append([]string{b.Image}, relatedImages(b)...)
				if kept[b.Name] {
					keepBundles[pk.Name+"/"+b.Name] = true
					change.Kept++
					for _, img := range imgs {
						neededImages[img] = true
					}
					continue
				}
				if keptCatalog {
					change.Dropped[pk.Name] = append(change.Dropped[pk.Name], b.Name)
				}
				for _, img := range imgs {
					droppedImages[img] = fmt.Sprintf("only bundle %s of %s (catalog %s) names it", b.Name, pk.Name, c.Ref())
				}
			}
		}
		if keptCatalog && len(change.Dropped) > 0 {
			d.Catalogs = append(d.Catalogs, change)
			d.catalogKeep[c.Ref()] = keepBundles
		}
	}
	// Releases whose manifest goes take their components along, unless a
	// kept release shares them (z-stream releases share most components,
	// by digest, whatever repository or tag names them).
	var goneReleases []*regscan.Release
	neededDigest := map[string]bool{}
	for _, rel := range s.Releases {
		if keptDigests[rel.Repo+"@"+rel.Digest] || rel.Error != "" {
			for _, c := range rel.Components {
				neededImages[c.Image] = true
				if r, err := ref.Parse(c.Image); err == nil && r.Digest != "" {
					neededDigest[r.Digest] = true
				}
			}
			continue
		}
		goneReleases = append(goneReleases, rel)
	}

	// 3. Manifests to delete: dropped tags whose digest no kept tag holds,
	// and images only dropped bundles named.
	want := map[string]*Target{} // repo@digest
	for _, tr := range dropped {
		key := tr.repo + "@" + tr.tag.Digest
		if keptDigests[key] {
			continue
		}
		t := want[key]
		if t == nil {
			t = &Target{Repo: tr.repo, Digest: tr.tag.Digest, Reason: tr.reason}
			want[key] = t
		}
		t.Tags = append(t.Tags, tr.tag.Name)
	}
	// Needed by their mirror copy too: two references (a tag and a digest)
	// may name one manifest.
	neededCopies := map[string]bool{}
	for img := range neededImages {
		if repo, digest, ok := locate(s, img); ok {
			neededCopies[repo+"@"+digest] = true
		}
	}
	for img, reason := range droppedImages {
		if neededImages[img] {
			continue
		}
		repo, digest, ok := locate(s, img)
		if !ok || pinned[repo+"@"+digest] || neededCopies[repo+"@"+digest] || protected(repo) {
			continue
		}
		key := repo + "@" + digest
		if want[key] == nil {
			want[key] = &Target{Repo: repo, Digest: digest, Reason: reason}
		}
	}
	keepCopy := func(repo, digest string) bool {
		key := repo + "@" + digest
		return pinned[key] || neededCopies[key] || protected(repo) || want[key] != nil
	}
	for key, reason := range componentCopies(s, goneReleases, neededDigest, keepCopy) {
		repo, digest, _ := strings.Cut(key, "@")
		t := &Target{Repo: repo, Digest: digest, Reason: reason}
		for _, tg := range s.Repo(repo).Tags {
			if tg.Digest == digest {
				t.Tags = append(t.Tags, tg.Name)
			}
		}
		want[key] = t
	}
	for _, t := range want {
		sort.Strings(t.Tags)
		d.Delete = append(d.Delete, *t)
	}
	sort.Slice(d.Delete, func(i, j int) bool {
		if d.Delete[i].Repo != d.Delete[j].Repo {
			return d.Delete[i].Repo < d.Delete[j].Repo
		}
		return d.Delete[i].Digest < d.Delete[j].Digest
	})
	d.freed(s, want)
	return d, nil
}

// freed counts the blobs that only deleted manifests use.
func (d *Decision) freed(s *regscan.Snapshot, deleted map[string]*Target) {
	keptBlobs := map[string]bool{}
	gone := map[string]int64{}
	visit := func(m *regscan.Manifest, into func(string, int64)) {
		for b, n := range m.Blobs() {
			into(b, n)
		}
	}
	for _, r := range s.Repos {
		manifests := map[string]*regscan.Manifest{}
		for _, t := range r.Tags {
			if t.Manifest != nil {
				manifests[t.Digest] = t.Manifest
			}
		}
		for _, m := range r.Untagged {
			manifests[m.Digest] = m
		}
		for dg, m := range manifests {
			if deleted[r.Name+"@"+dg] != nil {
				visit(m, func(b string, n int64) { gone[b] = n })
			} else {
				visit(m, func(b string, _ int64) { keptBlobs[b] = true })
			}
		}
	}
	for b, n := range gone {
		if !keptBlobs[b] {
			d.FreedBlobs++
			d.FreedBytes += n
		}
	}
}

// locate finds the repository and digest of the mirror copy of an upstream
// image the snapshot saw (tagged or found by digest).
func locate(s *regscan.Snapshot, image string) (string, string, bool) {
	r, err := ref.Parse(image)
	if err != nil {
		return "", "", false
	}
	for _, repo := range s.Repos {
		if repo.Name != r.Path && !strings.HasSuffix(repo.Name, "/"+r.Path) {
			continue
		}
		if r.Digest != "" {
			for _, m := range repo.Untagged {
				if m.Digest == r.Digest {
					return repo.Name, m.Digest, true
				}
			}
		}
		for _, t := range repo.Tags {
			if (r.Digest != "" && t.Digest == r.Digest) || (r.Digest == "" && t.Name == r.Tag) {
				return repo.Name, t.Digest, true
			}
		}
	}
	return "", "", false
}

func relatedImages(b *regscan.Bundle) []string {
	out := make([]string, 0, len(b.Related))
	for _, ri := range b.Related {
		out = append(out, ri.Image)
	}
	return out
}

func allBundles(pk *regscan.Package) map[string]bool {
	m := map[string]bool{}
	for _, b := range pk.Bundles {
		m[b.Name] = true
	}
	return m
}

// keepNewest returns the bundles among the newest n of any channel of pk
// (n <= 0 keeps all).
func keepNewest(pk *regscan.Package, n int) map[string]bool {
	if n <= 0 {
		return allBundles(pk)
	}
	byVersion := map[string][]string{}
	for _, b := range pk.Bundles {
		byVersion[b.Version] = append(byVersion[b.Version], b.Name)
	}
	keep := map[string]bool{}
	for _, ch := range pk.Channels {
		vs := ch.Versions // oldest first (regscan sorts them)
		if len(vs) > n {
			vs = vs[len(vs)-n:]
		}
		for _, v := range vs {
			for _, name := range byVersion[v] {
				keep[name] = true
			}
		}
	}
	return keep
}

// sortNewestFirst orders tags newest first: semantic versions descending
// (a leading "v" allowed), then by image creation, then by name.
func sortNewestFirst(tags []*regscan.Tag) {
	ver := func(t string) (semver.Version, bool) {
		v, err := semver.ParseTolerant(t)
		return v, err == nil
	}
	sort.SliceStable(tags, func(i, j int) bool {
		a, aok := ver(tags[i].Name)
		b, bok := ver(tags[j].Name)
		switch {
		case aok && bok:
			if !a.EQ(b) {
				return a.GT(b)
			}
		case aok != bok:
			return aok
		}
		ca, cb := created(tags[i]), created(tags[j])
		if !ca.Equal(cb) {
			return ca.After(cb)
		}
		return tags[i].Name > tags[j].Name
	})
}

func created(t *regscan.Tag) time.Time {
	if t.Manifest == nil {
		return time.Time{}
	}
	return t.Manifest.Created
}
