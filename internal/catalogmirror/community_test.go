package catalogmirror

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/airlock-mirror/airlock/internal/catalog"
	"github.com/airlock-mirror/airlock/internal/clusterres"
	"github.com/airlock-mirror/airlock/internal/ref"
)

// TestWholeCommunityCatalog plans the entire real community catalog
// (35 packages, 727 bundles, 2184 image references in several spellings)
// and checks the plan covers every normalised reference once, with oc's
// naming, and that the mirror sets stay under the size limit.
func TestWholeCommunityCatalog(t *testing.T) {
	c, err := catalog.LoadDir(context.Background(), filepath.Join(shared, "community-operators-prod-v4.18"))
	if err != nil {
		t.Fatal(err)
	}
	imgs, _ := catalog.RelatedImages(c)
	unique := map[string]bool{}
	for _, img := range imgs {
		p := img.Parsed
		if !p.HasTagOrDigest() {
			p.Tag = "latest"
		}
		unique[p.Name()] = true
	}
	index := ref.MustParse("registry.redhat.io/redhat/community-operator-index:v4.18")
	res, err := Collect(c, Options{Index: &index, Dest: mustDest(t, "mirror.example.com:5000/olm"), MaxComponents: DefaultMaxComponents})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(res.Plan.Items) - 1; got != len(unique) {
		t.Errorf("plan has %d images, catalog references %d distinct images", got, len(unique))
	}
	if len(unique) < 2000 {
		t.Errorf("only %d distinct images: the shared catalog changed", len(unique))
	}
	for _, it := range res.Plan.Items {
		d := it.Dests[0]
		if strings.Count(d.Path, "/") != 1 || d.Digest != "" || d.Tag == "" {
			t.Errorf("%s -> %s: want olm/<folded name>:tag", it.Source, d)
		}
		if it.Source.Digest != "" && it.Source.Tag == "" && d.Tag != DigestTag(it.Source) {
			t.Errorf("%s -> %s: digest-only source must get its fnv tag", it.Source, d)
		}
	}
	dir := t.TempDir()
	if _, err := WriteManifests(dir, res, ManifestOptions{Name: "community-operator-index"}); err != nil {
		t.Fatal(err)
	}
	mapping, _ := os.ReadFile(filepath.Join(dir, FileMapping))
	if n := bytes.Count(mapping, []byte("\n")); n != len(res.Plan.Items) {
		t.Errorf("mapping.txt has %d lines, plan %d items", n, len(res.Plan.Items))
	}
	idms, _ := os.ReadFile(filepath.Join(dir, FileIDMS))
	for i, doc := range strings.Split(string(idms), "---\n")[1:] {
		if len(doc) > clusterres.MaxObjectBytes {
			t.Errorf("IDMS object %d is %d bytes", i, len(doc))
		}
		var obj clusterres.ImageDigestMirrorSet
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil || obj.Kind != "ImageDigestMirrorSet" {
			t.Errorf("IDMS object %d does not parse: %v", i, err)
		}
	}
}

// BenchmarkCollectCommunity measures planning the whole community catalog
// (the catalog is loaded once, outside the timer).
func BenchmarkCollectCommunity(b *testing.B) {
	c, err := catalog.LoadDir(context.Background(), filepath.Join(shared, "community-operators-prod-v4.18"))
	if err != nil {
		b.Fatal(err)
	}
	index := ref.MustParse("registry.redhat.io/redhat/community-operator-index:v4.18")
	dest, _ := ParseDest("mirror.example.com/olm")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := Collect(c, Options{Index: &index, Dest: dest, MaxComponents: DefaultMaxComponents})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := clusterres.ImageDigestMirrorSets(res.Pairs, clusterres.SetOptions{Name: "x"}); err != nil {
			b.Fatal(err)
		}
	}
}
