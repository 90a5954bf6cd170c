// Package catalog_test mirrors an operator catalog end to end through the
// airlock CLI: a REAL file-based catalog (four packages of the
// community-operators 4.18 index) is rewritten to point at synthetic images
// pushed to a "source" embedded registry, built into a multi-arch catalog
// image with `airlock catalog build`, then `airlock catalog mirror` selects
// two operators, mirrors them to a second registry and rebuilds the catalog.
// The test checks every referenced digest at the destination under oc's
// names, that unselected operators were not copied, the manifests, and the
// rebuilt catalog's /configs content on every platform.
package catalog_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/operator-framework/operator-registry/alpha/declcfg"
	"sigs.k8s.io/yaml"

	"github.com/airlock-mirror/airlock/internal/catalog"
	"github.com/airlock-mirror/airlock/internal/catalogmirror"
	"github.com/airlock-mirror/airlock/internal/clusterres"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/testutil/clitest"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

const community = "../../../../shared/testdata/catalogs/community-operators-prod-v4.18"

var packages = []string{"kubevirt-wol", "shipwright-operator", "ecr-secret-operator", "odf-node-recovery-operator"}

// syntheticCatalog loads the real packages, pushes one synthetic image to
// src for every image reference they contain (every third one a two-arch
// index), and rewrites the references to those images in the same form:
// digest stays digest, tag stays tag, tag+digest stays tag+digest. missing
// names references that are rewritten but deliberately not pushed.
func syntheticCatalog(t *testing.T, src *regtest.Registry, missing map[string]bool) (*catalog.Catalog, map[string]string) {
	t.Helper()
	ctx := context.Background()
	tmp := t.TempDir()
	for _, p := range packages {
		b, err := os.ReadFile(filepath.Join(community, p, "catalog.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tmp, p+".yaml"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c, err := catalog.LoadDir(ctx, tmp)
	if err != nil {
		t.Fatal(err)
	}
	rewritten := map[string]string{} // original reference -> new reference
	seed := int64(100)
	rewrite := func(orig string) string {
		if orig == "" {
			return orig
		}
		if n, ok := rewritten[orig]; ok {
			return n
		}
		r, err := ref.Parse(orig)
		if err != nil {
			return orig // invalid references stay as they are (warnings)
		}
		seed++
		repo := src.Host + "/" + r.Path
		var x synth.Pushable
		if seed%3 == 0 {
			x, err = synth.Index(seed, []string{"linux/amd64", "linux/arm64"}, synth.WithLayers(1), synth.WithLayerSize(512))
		} else {
			x, err = synth.Image(seed, synth.WithLayers(1), synth.WithLayerSize(512))
		}
		if err != nil {
			t.Fatal(err)
		}
		d, err := x.Digest()
		if err != nil {
			t.Fatal(err)
		}
		var out string
		switch {
		case r.Tag != "" && r.Digest != "":
			out = repo + ":" + r.Tag + "@" + d.String()
		case r.Digest != "":
			out = repo + "@" + d.String()
		case r.Tag != "":
			out = repo + ":" + r.Tag
		default:
			out = repo
		}
		rewritten[orig] = out
		if !missing[orig] {
			target := repo + "@" + d.String()
			if r.Tag != "" {
				target = repo + ":" + r.Tag
			} else if r.Digest == "" {
				target = repo + ":latest"
			}
			if _, err := synth.Push(x, target, remote.WithTransport(src.Transport)); err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	for i := range c.Config.Bundles {
		b := &c.Config.Bundles[i]
		b.Image = rewrite(b.Image)
		for j := range b.RelatedImages {
			b.RelatedImages[j].Image = rewrite(b.RelatedImages[j].Image)
		}
	}
	return c, rewritten
}

func TestCatalogMirrorEndToEnd(t *testing.T) {
	src := regtest.Start(t)
	dst := regtest.Start(t)
	ctx := context.Background()
	full, _ := syntheticCatalog(t, src, nil)

	// Build the source catalog image with the CLI on a multi-arch "opm" base.
	fbcDir := filepath.Join(t.TempDir(), "catalog")
	if err := catalog.WriteDir(full, fbcDir, "yaml"); err != nil {
		t.Fatal(err)
	}
	platforms := []string{"linux/amd64", "linux/arm64", "linux/s390x"}
	base, err := synth.Index(1, platforms)
	if err != nil {
		t.Fatal(err)
	}
	baseRef := src.Host + "/operator-framework/opm:v1.50.0"
	if _, err := synth.Push(base, baseRef, remote.WithTransport(src.Transport)); err != nil {
		t.Fatal(err)
	}
	index := src.Host + "/redhat/community-operator-index:v4.18"
	out, errOut, err := clitest.Run(t, "catalog", "build", "--from-dir", fbcDir, "--base", baseRef, "--to", index)
	if err != nil {
		t.Fatalf("catalog build: %v\n%s%s", err, out, errOut)
	}

	// Mirror two of the four operators.
	manifests := filepath.Join(t.TempDir(), "manifests")
	out, errOut, err = clitest.Run(t, "catalog", "mirror", index, dst.Host+"/olm",
		"--package", "kubevirt-wol", "--package", "shipwright-operator", "--to-manifests", manifests,
		"--registry-poll", "30m", "--memory-target", "64Mi")
	if err != nil {
		t.Fatalf("catalog mirror: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	t.Logf("stdout:\n%s", out)

	// What the selection should need, computed independently from the
	// source catalog: every image of the kept bundles.
	mappingTxt, err := os.ReadFile(filepath.Join(manifests, "mapping.txt"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(mappingTxt)), "\n")
	if len(lines) < 3 {
		t.Fatalf("mapping.txt has %d lines:\n%s", len(lines), mappingTxt)
	}
	selectedPkgs := map[string]bool{}
	rebuiltRef := dst.Host + "/olm/redhat-community-operator-index:v4.18"
	rebuilt := readCatalogPerPlatform(t, dst, rebuiltRef, platforms)
	for _, p := range rebuilt.Config.Packages {
		selectedPkgs[p.Name] = true
	}
	// A real client agrees: the rebuilt catalog's index digest and every
	// platform's configs label, read with skopeo.
	if got, want := skopeoRawDigest(t, rebuiltRef), dst.DigestOf(t, rebuiltRef); got != want {
		t.Errorf("skopeo reads %s as %s, registry says %s", rebuiltRef, got, want)
	}
	for _, p := range platforms {
		arch := strings.TrimPrefix(p, "linux/")
		if l := skopeoLabels(t, rebuiltRef, arch); l[catalog.LabelConfigs] != "/configs" {
			t.Errorf("skopeo sees labels %v on %s", l, arch)
		}
	}
	if !selectedPkgs["kubevirt-wol"] || !selectedPkgs["shipwright-operator"] || selectedPkgs["ecr-secret-operator"] || selectedPkgs["odf-node-recovery-operator"] {
		t.Errorf("rebuilt catalog packages %v, want kubevirt-wol and shipwright-operator only", rebuilt.PackageNames())
	}
	imgs, _ := catalog.RelatedImages(rebuilt)
	if len(imgs) == 0 {
		t.Fatal("rebuilt catalog references no images")
	}
	inMapping := map[string]string{}
	rebuiltNote := false
	for _, l := range lines {
		if strings.HasPrefix(l, "# ") {
			// The rebuilt catalog is no copy: mapping.txt says so in a comment.
			rebuiltNote = rebuiltNote || strings.Contains(l, "is not copied: it is rebuilt")
			continue
		}
		s, d, ok := strings.Cut(l, "=")
		if !ok {
			t.Fatalf("bad mapping line %q", l)
		}
		inMapping[s] = d
	}
	if !rebuiltNote {
		t.Errorf("mapping.txt does not explain that the catalog was rebuilt:\n%s", mappingTxt)
	}
	dstOlm, _ := catalogmirror.ParseDest(dst.Host + "/olm")
	for _, img := range imgs {
		srcRef := img.Parsed
		if !srcRef.HasTagOrDigest() {
			srcRef.Tag = "latest"
		}
		want := src.DigestOf(t, srcRef.Name())
		if want == "" {
			t.Fatalf("source image %s missing (test setup)", srcRef.Name())
		}
		d := catalogmirror.Mount(srcRef, dstOlm, catalogmirror.DefaultMaxComponents)
		if got := dst.DigestOf(t, d.Name()); got != want {
			t.Errorf("%s: destination %s has digest %q, want %s", srcRef.Name(), d.Name(), got, want)
		}
		if got := skopeoRawDigest(t, d.Name()); got != want {
			t.Errorf("%s: skopeo pulls %s with digest %s, want %s", srcRef.Name(), d.Name(), got, want)
		}
		if srcRef.Digest != "" {
			if got := dst.DigestOf(t, d.Repository()+"@"+srcRef.Digest); got != srcRef.Digest {
				t.Errorf("%s: not pullable by digest at %s", srcRef.Name(), d.Repository())
			}
		}
		if inMapping[srcRef.Name()] != d.Name() {
			t.Errorf("mapping.txt maps %s to %q, want %s", srcRef.Name(), inMapping[srcRef.Name()], d.Name())
		}
		checkAllPlatforms(t, dst, d)
	}
	// Images only unselected packages use were not copied.
	fullImgs, _ := catalog.RelatedImages(full)
	needed := map[string]bool{}
	for _, img := range imgs {
		needed[img.Parsed.Name()] = true
	}
	notCopied := 0
	for _, img := range fullImgs {
		if needed[img.Parsed.Name()] {
			continue
		}
		d := catalogmirror.Mount(img.Parsed, dstOlm, catalogmirror.DefaultMaxComponents)
		if dst.DigestOf(t, d.Name()) != "" && !sharesRepoTag(imgs, d, dstOlm) {
			t.Errorf("image %s of an unselected operator was copied to %s", img.Ref, d.Name())
		}
		notCopied++
	}
	if notCopied == 0 {
		t.Error("the selection kept every image; the test proves nothing about filtering")
	}

	// Manifests: IDMS/ICSP list the digest sources, CatalogSource the
	// rebuilt catalog with the requested options.
	idms, err := os.ReadFile(filepath.Join(manifests, "imageDigestMirrorSet.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range imgs {
		if img.Parsed.Digest != "" && !bytes.Contains(idms, []byte("source: "+img.Parsed.Repository()+"\n")) {
			t.Errorf("imageDigestMirrorSet.yaml has no entry for %s", img.Parsed.Repository())
		}
	}
	itms, _ := os.ReadFile(filepath.Join(manifests, "imageTagMirrorSet.yaml"))
	for _, img := range imgs {
		if img.Parsed.Digest == "" && !bytes.Contains(itms, []byte("source: "+img.Parsed.Repository()+"\n")) {
			t.Errorf("imageTagMirrorSet.yaml has no entry for tag-referenced %s", img.Parsed.Repository())
		}
	}
	if _, err := os.Stat(filepath.Join(manifests, "imageContentSourcePolicy.yaml")); err != nil {
		t.Error(err)
	}
	csData, err := os.ReadFile(filepath.Join(manifests, "catalogSource.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cs clusterres.CatalogSource
	if err := yaml.Unmarshal(bytes.TrimPrefix(csData, []byte("---\n")), &cs); err != nil {
		t.Fatal(err)
	}
	if cs.Spec.Image != rebuiltRef || cs.Metadata.Name != "community-operator-index" || cs.Metadata.Namespace != "openshift-marketplace" ||
		cs.Spec.UpdateStrategy == nil || cs.Spec.UpdateStrategy.RegistryPoll.Interval != "30m0s" ||
		cs.Spec.GRPCPodConfig == nil || cs.Spec.GRPCPodConfig.MemoryTarget != "64Mi" {
		t.Errorf("catalogSource.yaml:\n%s", csData)
	}

	// A second run copies nothing new and gives the same catalog digest.
	before := dst.DigestOf(t, rebuiltRef)
	out, errOut, err = clitest.Run(t, "catalog", "mirror", index, dst.Host+"/olm",
		"--package", "kubevirt-wol", "--package", "shipwright-operator", "--to-manifests", manifests)
	if err != nil {
		t.Fatalf("second catalog mirror: %v\n%s%s", err, out, errOut)
	}
	if after := dst.DigestOf(t, rebuiltRef); after != before {
		t.Errorf("re-run changed the rebuilt catalog digest: %s -> %s", before, after)
	}
	_ = ctx
}

// sharesRepoTag reports whether dest is also the destination of a needed
// image (two references that fold to the same name).
func sharesRepoTag(imgs []catalog.Image, d, dest ref.Ref) bool {
	for _, img := range imgs {
		if catalogmirror.Mount(img.Parsed, dest, catalogmirror.DefaultMaxComponents).Name() == d.Name() {
			return true
		}
	}
	return false
}

// checkAllPlatforms proves a mirrored manifest list kept every child.
func checkAllPlatforms(t *testing.T, reg *regtest.Registry, d ref.Ref) {
	t.Helper()
	r, err := name.ParseReference(d.Name(), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(r, remote.WithTransport(reg.Transport))
	if err != nil {
		t.Errorf("%s: %v", d, err)
		return
	}
	if !desc.MediaType.IsIndex() {
		return
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	if len(im.Manifests) != 2 {
		t.Errorf("%s: %d platforms, want 2 (all architectures)", d, len(im.Manifests))
	}
	for _, m := range im.Manifests {
		if got := reg.DigestOf(t, d.Repository()+"@"+m.Digest.String()); got != m.Digest.String() {
			t.Errorf("%s: child %s (%s) missing", d, m.Digest, m.Platform.Architecture)
		}
	}
}

// readCatalogPerPlatform reads the catalog image's /configs on every
// platform, checks they agree, and returns one.
func readCatalogPerPlatform(t *testing.T, reg *regtest.Registry, reference string, platforms []string) *catalog.Catalog {
	t.Helper()
	r, err := name.ParseReference(reference, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(r, remote.WithTransport(reg.Transport))
	if err != nil {
		t.Fatalf("rebuilt catalog %s: %v", reference, err)
	}
	im, _ := idx.IndexManifest()
	var got []string
	var first *catalog.Catalog
	for _, m := range im.Manifests {
		got = append(got, m.Platform.OS+"/"+m.Platform.Architecture)
		img, err := idx.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		checkServeConfig(t, img)
		c, err := catalog.FromImage(context.Background(), img)
		if err != nil {
			t.Fatalf("reading /configs of %s (%s): %v", reference, m.Platform.Architecture, err)
		}
		// The same validation opm runs before serving: a catalog it would
		// refuse is a catalog pod in CrashLoopBackOff.
		if model, err := declcfg.ConvertToModel(*c.Config); err != nil {
			t.Errorf("rebuilt catalog (%s) does not convert to opm's model: %v", m.Platform.Architecture, err)
		} else if err := model.Validate(); err != nil {
			t.Errorf("rebuilt catalog (%s) fails opm's validation: %v", m.Platform.Architecture, err)
		}
		if first == nil {
			first = c
		} else if strings.Join(c.PackageNames(), ",") != strings.Join(first.PackageNames(), ",") || len(c.Config.Bundles) != len(first.Config.Bundles) {
			t.Errorf("platform %s has another catalog", m.Platform.Architecture)
		}
	}
	sort.Strings(got)
	want := append([]string{}, platforms...)
	sort.Strings(want)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("rebuilt catalog platforms %v, want %v", got, want)
	}
	return first
}

func checkServeConfig(t *testing.T, img v1.Image) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.Labels[catalog.LabelConfigs] != "/configs" {
		t.Errorf("labels %v", cf.Config.Labels)
	}
	for _, a := range append(cf.Config.Entrypoint, cf.Config.Cmd...) {
		if strings.Contains(a, "cache") {
			t.Errorf("command still uses a pre-built cache: %v %v", cf.Config.Entrypoint, cf.Config.Cmd)
		}
	}
}

// TestCatalogMirrorReportsFailedBundles removes one related image of a
// selected bundle from the source: everything else is copied, the run
// exits non-zero, and the failure names the bundle.
func TestCatalogMirrorReportsFailedBundles(t *testing.T) {
	src := regtest.Start(t)
	dst := regtest.Start(t)
	// Find an image only ecr-secret-operator's head uses... any related
	// image of the package works: choose the first one of its head bundle.
	probe, _ := syntheticCatalog(t, regtest.Start(t), nil)
	var victim, victimBundle string
	heads := map[string]bool{}
	chans, _ := probe.Channels(catalog.Selector{Packages: []string{"ecr-secret-operator"}})
	for _, ch := range chans {
		heads[ch.Head] = true
	}
	for _, b := range probe.Config.Bundles {
		if b.Package == "ecr-secret-operator" && heads[b.Name] && len(b.RelatedImages) > 1 {
			for _, ri := range b.RelatedImages {
				if ri.Image != b.Image && ri.Image != "" {
					victim, victimBundle = ri.Image, b.Name
					break
				}
			}
		}
		if victim != "" {
			break
		}
	}
	if victim == "" {
		t.Fatal("no related image to remove (test data changed)")
	}
	// The probe catalog was rewritten to another host: map back to the
	// original reference by path.
	orig := ""
	origCat, err := catalog.LoadFile(context.Background(), filepath.Join(community, "ecr-secret-operator", "catalog.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	vp := ref.MustParse(victim)
	for _, b := range origCat.Config.Bundles {
		for _, ri := range b.RelatedImages {
			if r, err := ref.Parse(ri.Image); err == nil && r.Path == vp.Path && r.Tag == vp.Tag {
				orig = ri.Image
			}
		}
	}
	if orig == "" {
		t.Fatalf("cannot find the original of %s", victim)
	}
	c, rewritten := syntheticCatalog(t, src, map[string]bool{orig: true})
	dir := filepath.Join(t.TempDir(), "catalog")
	if err := catalog.WriteDir(c, dir, "json"); err != nil {
		t.Fatal(err)
	}
	manifests := filepath.Join(t.TempDir(), "m")
	out, errOut, err := clitest.Run(t, "catalog", "mirror", dir, dst.Host, "--package", "ecr-secret-operator", "--to-manifests", manifests)
	if err == nil {
		t.Fatalf("mirror with a missing image succeeded:\n%s%s", out, errOut)
	}
	if !strings.Contains(errOut, "bundle "+victimBundle) || !strings.Contains(errOut, ref.MustParse(rewritten[orig]).Repository()) {
		t.Errorf("stderr does not name bundle %s and the missing image %s:\n%s", victimBundle, rewritten[orig], errOut)
	}
	if !strings.Contains(errOut, "local catalog") {
		t.Errorf("no note that a local catalog is not mirrored as an image:\n%s", errOut)
	}
	// Every other image of the selection arrived.
	res, err := catalogmirror.Collect(mustFilter(t, c, "ecr-secret-operator"), catalogmirror.Options{Dest: mustDest(t, dst.Host), MaxComponents: 2})
	if err != nil {
		t.Fatal(err)
	}
	copied := 0
	for _, it := range res.Plan.Items {
		if it.Source.Name() == ref.MustParse(rewritten[orig]).Name() {
			continue
		}
		if dst.DigestOf(t, it.Dests[0].Name()) == "" {
			t.Errorf("%s not copied although only %s was missing", it.Source, rewritten[orig])
		}
		copied++
	}
	if copied == 0 {
		t.Error("nothing else to copy; the test proves nothing")
	}
	if _, err := os.Stat(filepath.Join(manifests, "mapping.txt")); err != nil {
		t.Errorf("manifests not written before mirroring: %v", err)
	}
}

func mustDest(t *testing.T, s string) ref.Ref {
	t.Helper()
	d, err := catalogmirror.ParseDest(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func mustFilter(t *testing.T, c *catalog.Catalog, pkg string) *catalog.Catalog {
	t.Helper()
	out, _, err := catalog.Filter(context.Background(), c, imagesetOperator(pkg))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCatalogMirrorThroughDisk is the air-gap workflow: mirror a selection
// to the local store on the connected side, stop the source registry, then
// upload from the store to the disconnected registry. Every referenced
// digest and the rebuilt catalog must arrive unchanged.
func TestCatalogMirrorThroughDisk(t *testing.T) {
	src := regtest.Start(t)
	dst := regtest.Start(t)
	full, _ := syntheticCatalog(t, src, nil)
	fbcDir := filepath.Join(t.TempDir(), "catalog")
	if err := catalog.WriteDir(full, fbcDir, "json"); err != nil {
		t.Fatal(err)
	}
	base, _ := synth.Index(2, []string{"linux/amd64", "linux/arm64"})
	baseRef := src.Host + "/operator-framework/opm:v1"
	if _, err := synth.Push(base, baseRef, remote.WithTransport(src.Transport)); err != nil {
		t.Fatal(err)
	}
	index := src.Host + "/redhat/community-operator-index:v4.18"
	if out, errOut, err := clitest.Run(t, "catalog", "build", "--from-dir", fbcDir, "--base", baseRef, "--to", index); err != nil {
		t.Fatalf("catalog build: %v\n%s%s", err, out, errOut)
	}
	store := t.TempDir()
	out, errOut, err := clitest.Run(t, "catalog", "mirror", index, "file://olm", "--dir", store, "--package", "shipwright-operator",
		"--to-manifests", filepath.Join(t.TempDir(), "m1"))
	if err != nil {
		t.Fatalf("mirror to disk: %v\n%s%s", err, out, errOut)
	}
	if err := src.Server.Close(); err != nil {
		t.Fatal(err)
	}

	stored := "file://olm/redhat/community-operator-index:v4.18"
	m2 := filepath.Join(t.TempDir(), "m2")
	out, errOut, err = clitest.Run(t, "catalog", "mirror", stored, dst.Host+"/olm", "--dir", store, "--to-manifests", m2)
	if err != nil {
		t.Fatalf("upload from disk: %v\n%s%s", err, out, errOut)
	}
	mapping, _ := os.ReadFile(filepath.Join(m2, "mapping.txt"))
	if strings.Contains(string(mapping), src.Host) {
		t.Errorf("upload read from the source registry:\n%s", mapping)
	}

	rebuilt := readCatalogPerPlatform(t, dst, dst.Host+"/olm/redhat-community-operator-index:v4.18", []string{"linux/amd64", "linux/arm64"})
	if got := strings.Join(rebuilt.PackageNames(), ","); got != "shipwright-operator" {
		t.Errorf("uploaded catalog packages %s", got)
	}
	imgs, _ := catalog.RelatedImages(rebuilt)
	dstOlm := mustDest(t, dst.Host+"/olm")
	for _, img := range imgs {
		s := img.Parsed
		if !s.HasTagOrDigest() {
			s.Tag = "latest"
		}
		d := catalogmirror.Mount(s, dstOlm, catalogmirror.DefaultMaxComponents)
		got := dst.DigestOf(t, d.Name())
		if got == "" || (s.Digest != "" && got != s.Digest) {
			t.Errorf("%s: at %s digest %q", s.Name(), d.Name(), got)
		}
		checkAllPlatforms(t, dst, d)
	}
	idms, err := os.ReadFile(filepath.Join(m2, "imageDigestMirrorSet.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(idms), "file:") || !strings.Contains(string(idms), "source: "+src.Host+"/") {
		t.Errorf("IDMS of the upload must name the original sources:\n%s", idms)
	}
}
