// Package releasetest builds synthetic OpenShift release images around the
// REAL 4.12.0 payload files in ../shared/testdata/release, for tests of the
// release reader, planner, CLI and end-to-end mirroring.
//
// Real component digests cannot be reproduced, so the components are
// deterministic synthetic images (every fifth one a multi-arch index) pushed
// to a test registry, and image-references is rewritten to point at them
// while keeping the real tag names and the real ImageStream format. The
// rewritten file goes in a new top layer above the real payload layer (which
// still holds the original image-references), so readers are also checked
// to honour layer overriding.
package releasetest

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/airlock-mirror/airlock/internal/testutil/synth"
	"golang.org/x/sync/errgroup"
)

// DataDir returns the absolute path of the real 4.12.0 payload files.
func DataDir() string {
	_, file, _, _ := runtime.Caller(0)
	// internal/release/releasetest/releasetest.go -> project root is 3 up.
	root := filepath.Join(filepath.Dir(file), "..", "..", "..")
	return filepath.Join(root, "..", "shared", "testdata", "release", "ocp-4.12.0-x86_64")
}

// Options shape the synthetic release.
type Options struct {
	// Components limits how many of the 183 real tags are kept (0 = all).
	Components int
	// Repo is the repository path components are pushed to (default
	// "openshift-release-dev/ocp-v4.0-art-dev", as in the real payload).
	Repo string
	// ReleaseRepo is where the release image is pushed (default
	// "openshift-release-dev/ocp-release").
	ReleaseRepo string
	// Tag of the release image (default "4.12.0-x86_64").
	Tag string
	// LayerSize is the payload bytes of each component layer (default 512).
	LayerSize int
	// Remote options for pushing (transport, auth).
	Remote []remote.Option
	// Version, when set, makes the release that version: release-metadata
	// and the io.openshift.release label say it (the real files say
	// 4.12.0), so tests can fill a registry with several releases.
	Version string
	// Seed, when set, makes the components from index Shared on unique to
	// this release (the first Shared ones are the same in every release,
	// as z-stream releases share most components).
	Seed   int64
	Shared int
	// Previous, with Version, is the release-metadata previous list (the
	// versions that update to this one); without it the list is dropped.
	Previous []string
}

// Release describes what Build pushed.
type Release struct {
	Ref        string            // host/repo:tag of the release image
	Digest     string            // release image manifest digest
	Image      v1.Image          // the release image
	Components map[string]string // tag name -> pushed component reference (by digest)
	Multi      map[string]bool   // tag names whose component is a multi-arch index
	Names      []string          // tag names in image-references order
	// ImageReferences is the rewritten image-references file.
	ImageReferences []byte
}

// Build pushes the components and the release image to host
// ("127.0.0.1:PORT").
func Build(host string, o Options) (*Release, error) {
	if o.Repo == "" {
		o.Repo = "openshift-release-dev/ocp-v4.0-art-dev"
	}
	if o.ReleaseRepo == "" {
		o.ReleaseRepo = "openshift-release-dev/ocp-release"
	}
	if o.Tag == "" {
		o.Tag = "4.12.0-x86_64"
	}
	if o.LayerSize == 0 {
		o.LayerSize = 512
	}
	dir := DataDir()
	raw, err := os.ReadFile(filepath.Join(dir, "release-manifests", "image-references"))
	if err != nil {
		return nil, err
	}
	var is map[string]any
	if err := json.Unmarshal(raw, &is); err != nil {
		return nil, err
	}
	spec := is["spec"].(map[string]any)
	tags := spec["tags"].([]any)
	if o.Components > 0 && o.Components < len(tags) {
		tags = tags[:o.Components]
		spec["tags"] = tags
	}
	// Components share a base layer, as real payload images share RHEL layers.
	base := synth.Layer(424242, o.LayerSize)
	rel := &Release{Components: map[string]string{}, Multi: map[string]bool{}}
	refs := make([]string, len(tags))
	var g errgroup.Group
	g.SetLimit(8)
	for i, t := range tags {
		name := t.(map[string]any)["name"].(string)
		multi := i%5 == 0
		rel.Multi[name] = multi
		rel.Names = append(rel.Names, name)
		seed := int64(1000 + i)
		if o.Seed != 0 && i >= o.Shared {
			seed += o.Seed * 100000
		}
		g.Go(func() error {
			var p synth.Pushable
			var err error
			if multi {
				p, err = synth.Index(seed, []string{"linux/amd64", "linux/arm64"}, synth.WithBase(base), synth.WithLayers(1), synth.WithLayerSize(o.LayerSize))
			} else {
				p, err = synth.Image(seed, synth.WithBase(base), synth.WithLayers(1), synth.WithLayerSize(o.LayerSize))
			}
			if err != nil {
				return err
			}
			dgst, err := synth.Push(p, host+"/"+o.Repo, o.Remote...)
			if err != nil {
				return fmt.Errorf("pushing component %s: %w", name, err)
			}
			refs[i] = host + "/" + o.Repo + "@" + dgst
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for i, t := range tags {
		tag := t.(map[string]any)
		tag["from"].(map[string]any)["name"] = refs[i]
		rel.Components[rel.Names[i]] = refs[i]
	}
	rewritten, err := json.MarshalIndent(is, "", "  ")
	if err != nil {
		return nil, err
	}
	rel.ImageReferences = rewritten
	img, err := Image(rewritten)
	if err != nil {
		return nil, err
	}
	if o.Version != "" {
		if img, err = WithMetadata(img, o.Version, o.Previous); err != nil {
			return nil, err
		}
	}
	rel.Image = img
	rel.Ref = host + "/" + o.ReleaseRepo + ":" + o.Tag
	if rel.Digest, err = synth.Push(img, rel.Ref, o.Remote...); err != nil {
		return nil, err
	}
	return rel, nil
}

// Image builds a release image: a synthetic base layer, the REAL payload
// layer (646 files), a top layer holding imageRefs as
// release-manifests/image-references (nil: no top layer), and the REAL
// release image config (labels, env, entrypoint, architecture).
func Image(imageRefs []byte) (v1.Image, error) {
	dir := DataDir()
	payload, err := tarball.LayerFromFile(filepath.Join(dir, "release-manifests-layer.tar.gz"))
	if err != nil {
		return nil, err
	}
	layers := []v1.Layer{synth.Layer(7, 2048), payload}
	if imageRefs != nil {
		top, err := TarLayer(map[string][]byte{"release-manifests/image-references": imageRefs})
		if err != nil {
			return nil, err
		}
		layers = append(layers, top)
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		return nil, err
	}
	cfgData, err := os.ReadFile(filepath.Join(dir, "release-image-config.json"))
	if err != nil {
		return nil, err
	}
	real, err := v1.ParseConfigFile(bytes.NewReader(cfgData))
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS, cf.Config, cf.Created = real.Architecture, real.OS, real.Config, real.Created
	return mutate.ConfigFile(img, cf)
}

// WithVersion returns img as release version: a top layer with the real
// release-metadata rewritten to the version (previous versions dropped:
// the update graph, not the payload, is what tests read edges from) and
// the io.openshift.release label set to it.
func WithVersion(img v1.Image, version string) (v1.Image, error) {
	return WithMetadata(img, version, nil)
}

// WithMetadata is WithVersion with previous as the metadata's previous
// list (none when empty).
func WithMetadata(img v1.Image, version string, previous []string) (v1.Image, error) {
	meta, err := os.ReadFile(filepath.Join(DataDir(), "release-manifests", "release-metadata"))
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(meta, &m); err != nil {
		return nil, err
	}
	m["version"] = version
	delete(m, "previous")
	if len(previous) > 0 {
		m["previous"] = previous
	}
	meta, err = json.Marshal(m)
	if err != nil {
		return nil, err
	}
	top, err := TarLayer(map[string][]byte{"release-manifests/release-metadata": meta})
	if err != nil {
		return nil, err
	}
	if img, err = mutate.AppendLayers(img, top); err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	labels := map[string]string{}
	for k, v := range cf.Config.Labels {
		labels[k] = v
	}
	labels["io.openshift.release"] = version
	cf.Config.Labels = labels
	return mutate.ConfigFile(img, cf)
}

// TarLayer returns a gzip'd tar layer holding files (path ->
// content), written in sorted order so the digest is deterministic.
func TarLayer(files map[string][]byte) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o444, Size: int64(len(files[n])), Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(files[n]); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	// tarball gzips the tar itself, as registries expect.
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
}

// MultiArch wraps a release image in a manifest list with an amd64 and an
// arm64 child (the arm64 child differs only in its config), the shape of
// a multi payload, and marks the metadata architecture "multi" as real
// multi payloads do.
func MultiArch(img v1.Image) (v1.ImageIndex, error) {
	meta, err := os.ReadFile(filepath.Join(DataDir(), "release-manifests", "release-metadata"))
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(meta, &m); err != nil {
		return nil, err
	}
	md, _ := m["metadata"].(map[string]any)
	if md == nil {
		md = map[string]any{}
	}
	md["release.openshift.io/architecture"] = "multi"
	m["metadata"] = md
	meta, _ = json.Marshal(m)
	top, err := TarLayer(map[string][]byte{"release-manifests/release-metadata": meta})
	if err != nil {
		return nil, err
	}
	amd, err := mutate.AppendLayers(img, top)
	if err != nil {
		return nil, err
	}
	cf, err := amd.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture = "arm64"
	arm, err := mutate.ConfigFile(amd, cf)
	if err != nil {
		return nil, err
	}
	idx := mutate.IndexMediaType(empty.Index, types.DockerManifestList)
	return mutate.AppendManifests(idx,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
	), nil
}
