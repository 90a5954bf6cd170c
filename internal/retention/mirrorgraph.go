package retention

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/airlock-mirror/airlock/internal/regscan"
	"github.com/airlock-mirror/airlock/internal/release/graph"
)

// MirrorGraph is the update graph built from what the registry holds, for
// an upgrade-path prune without a Cincinnati graph file: the release
// images (nodes: version and payload digest; edges: the previous/next
// lists of their release-metadata, between mirrored releases only) and,
// when the registry holds it, the graph-data image (openshift/graph-image
// :latest, as mirror.platform.graph mirrors it): the channel's versions
// and the blocked edges.
type MirrorGraph struct {
	Graph *graph.Graph
	// Source names the graph in reasons and errors.
	Source string
	// GraphImage is the graph-data image used (repo:tag), "" if none.
	GraphImage string
	Warnings   []string
}

// BuildMirrorGraph builds the graph of the releases of s within the
// repositories under within ("" for all), restricted to channel (which
// needs the graph-data image) when given. A release whose payload or
// metadata cannot be read is an error naming it: the graph would lack its
// updates, and the path kept could be the wrong one.
func BuildMirrorGraph(ctx context.Context, s *regscan.Snapshot, acc Access, within, channel string) (*MirrorGraph, error) {
	within = strings.Trim(within, "/")
	in := func(repo string) bool { return within == "" || repo == within || strings.HasPrefix(repo, within+"/") }
	var rels []graph.MirroredRelease
	for _, r := range s.Releases {
		if !in(r.Repo) {
			continue
		}
		if r.Error != "" || r.Version == "" {
			why := r.Error
			if why == "" {
				why = "no version in its release-metadata"
			}
			return nil, fmt.Errorf("release %s (%s): its release metadata could not be read (%s): the update graph built from the mirror would lack its updates, so nothing is pruned; re-mirror the release image, delete it, or give the update graph with --graph FILE", r.Ref(), r.Digest, why)
		}
		rels = append(rels, graph.MirroredRelease{Ref: r.Ref(), Version: r.Version, Payload: r.Repo + "@" + r.Digest, Previous: r.Previous, Next: r.Next})
	}
	if len(rels) == 0 {
		return nil, fmt.Errorf("the registry holds no OpenShift release image to build the update graph from: nothing to keep on an upgrade path")
	}
	mg := &MirrorGraph{Source: "the release metadata of the mirrored releases"}
	data, img, warns, err := graphData(ctx, s, acc, in)
	mg.Warnings = warns
	if err != nil {
		return nil, err
	}
	if data != nil {
		mg.GraphImage = img
		mg.Source += " and " + img
	}
	if channel != "" {
		mg.Source += " (channel " + channel + ")"
	}
	if mg.Graph, err = graph.Build(rels, data, channel); err != nil {
		return nil, fmt.Errorf("building the update graph from the mirror: %w", err)
	}
	if len(mg.Graph.Nodes) == 0 {
		return nil, fmt.Errorf("building the update graph from the mirror: none of the %d mirrored releases is in channel %s of %s: is it the clusters' channel?", len(rels), channel, img)
	}
	return mg, nil
}

// graphData reads the graph-data image of the registry: the repository
// named openshift/graph-image (or ending with it), tag latest. None is no
// error (the graph then has no channels and no blocked edges).
func graphData(ctx context.Context, s *regscan.Snapshot, acc Access, in func(string) bool) (*graph.Data, string, []string, error) {
	var found []*regscan.Repo
	for _, r := range s.Repos {
		if in(r.Name) && (r.Name == graph.GraphImageRepo || strings.HasSuffix(r.Name, "/"+graph.GraphImageRepo)) {
			found = append(found, r)
		}
	}
	if len(found) == 0 {
		return nil, "", nil, nil
	}
	sort.Slice(found, func(i, j int) bool { return found[i].Name < found[j].Name })
	var warns []string
	if len(found) > 1 {
		var names []string
		for _, r := range found[1:] {
			names = append(names, r.Name)
		}
		warns = append(warns, fmt.Sprintf("several graph-data images: using %s:latest, not %s", found[0].Name, strings.Join(names, ", ")))
	}
	repo := found[0]
	var tag *regscan.Tag
	for i := range repo.Tags {
		if repo.Tags[i].Name == "latest" {
			tag = repo.Tags[i]
		}
	}
	if tag == nil {
		warns = append(warns, fmt.Sprintf("graph-data repository %s has no latest tag: its channels and blocked edges are not used", repo.Name))
		return nil, "", warns, nil
	}
	img := repo.Name + ":latest"
	fail := func(err error) (*graph.Data, string, []string, error) {
		return nil, "", warns, fmt.Errorf("graph-data image %s could not be read: %w: re-mirror it (mirror.platform.graph: true), delete it, or give the update graph with --graph FILE", img, err)
	}
	digest := tag.Digest
	if tag.Manifest != nil && len(tag.Manifest.Children) > 0 {
		digest = ""
		for _, c := range tag.Manifest.Children {
			if c.Present {
				digest = c.Digest
				break
			}
		}
		if digest == "" {
			return fail(fmt.Errorf("no image of index %s is in the registry", tag.Digest))
		}
	}
	opts := acc.NameOptions
	if opts == nil {
		opts = []name.Option{name.Insecure}
	}
	d, err := name.NewDigest(acc.Registry+"/"+repo.Name+"@"+digest, opts...)
	if err != nil {
		return fail(err)
	}
	im, err := remote.Image(d, append(append([]remote.Option{}, acc.Remote...), remote.WithContext(ctx))...)
	if err != nil {
		return fail(err)
	}
	files, err := dataFiles(im)
	if err != nil {
		return fail(err)
	}
	if files == nil {
		return fail(fmt.Errorf("no layer holds /%s", graph.DataDir))
	}
	data, err := graph.ReadData(files, img)
	if err != nil {
		return fail(err)
	}
	return data, img, warns, nil
}

// dataFiles reads the graph data from the topmost layer holding
// graph.DataDir (the base image's layers below are not read).
func dataFiles(img v1.Image) (map[string][]byte, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	for i := len(layers) - 1; i >= 0; i-- {
		rc, err := layers[i].Uncompressed()
		if err != nil {
			return nil, err
		}
		files, found, err := graph.TarFiles(rc, graph.DataDir)
		rc.Close()
		if err != nil {
			return nil, err
		}
		if found {
			return files, nil
		}
	}
	return nil, nil
}
