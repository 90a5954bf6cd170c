package release

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/release/releasetest"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

// The full REAL 4.12.0 payload (183 component tags) served by the embedded
// registry, components replaced by synthetic images.
func TestInspectRealPayload(t *testing.T) {
	reg := regtest.Start(t)
	opts := []remote.Option{remote.WithTransport(reg.Transport)}
	rel, err := releasetest.Build(reg.Host, releasetest.Options{Remote: opts})
	if err != nil {
		t.Fatal(err)
	}
	src := RemoteSource{Options: opts, Insecure: true}
	info, err := Inspect(context.Background(), src, ref.MustParse(rel.Ref), InspectOptions{Parallel: 4})
	if err != nil {
		t.Fatal(err)
	}
	if info.Version != "4.12.0" || info.Architecture != "amd64" || info.ComponentCount != 183 || info.Digest != rel.Digest {
		t.Fatalf("info: version %s arch %s components %d digest %s", info.Version, info.Architecture, info.ComponentCount, info.Digest)
	}
	// Expected total: every unique blob of release and components, computed
	// independently from the images Build pushed.
	want := map[string]int64{}
	add := func(r string) {
		t.Helper()
		nr := ref.MustParse(r)
		d, err := src.Resolve(context.Background(), nr)
		if err != nil {
			t.Fatal(err)
		}
		blobs, _, err := blobsOf(context.Background(), src, nr, d)
		if err != nil {
			t.Fatal(err)
		}
		for h, n := range blobs {
			want[h.String()] = n
		}
	}
	add(rel.Ref)
	var relSize int64
	for _, n := range want {
		relSize += n
	}
	multi := 0
	for i, c := range info.Components {
		if c.Name != rel.Names[i] || c.Image != rel.Components[c.Name] {
			t.Fatalf("component %d = %s %s, want %s %s", i, c.Name, c.Image, rel.Names[i], rel.Components[rel.Names[i]])
		}
		if c.Size <= 0 {
			t.Errorf("component %s has size %d", c.Name, c.Size)
		}
		if rel.Multi[c.Name] {
			multi++
			if strings.Join(c.Platforms, ",") != "linux/amd64,linux/arm64" {
				t.Errorf("multi-arch component %s platforms %v", c.Name, c.Platforms)
			}
		}
		add(c.Image)
	}
	var total, sum int64
	for _, n := range want {
		total += n
	}
	for _, c := range info.Components {
		sum += c.Size
	}
	if info.TotalSize != total {
		t.Errorf("total size %d, want %d", info.TotalSize, total)
	}
	// Components share a base layer, so the deduplicated total must be
	// smaller than the plain sum.
	if info.TotalSize-relSize >= sum {
		t.Errorf("total %d not deduplicated (sum of components %d)", info.TotalSize, sum)
	}
	if multi != 37 {
		t.Errorf("%d multi-arch components, want 37", multi)
	}
}

func TestInspectMultiArchRelease(t *testing.T) {
	reg := regtest.Start(t)
	opts := []remote.Option{remote.WithTransport(reg.Transport)}
	rel, err := releasetest.Build(reg.Host, releasetest.Options{Components: 3, Remote: opts})
	if err != nil {
		t.Fatal(err)
	}
	idx, err := releasetest.MultiArch(rel.Image)
	if err != nil {
		t.Fatal(err)
	}
	r := reg.Host + "/openshift-release-dev/ocp-release:4.12.0-multi"
	if _, err := synth.Push(idx, r, opts...); err != nil {
		t.Fatal(err)
	}
	info, err := Inspect(context.Background(), RemoteSource{Options: opts, Insecure: true}, ref.MustParse(r), InspectOptions{Parallel: 2})
	if err != nil {
		t.Fatal(err)
	}
	if info.Architecture != "multi" || info.ComponentCount != 3 {
		t.Fatalf("arch %s components %d", info.Architecture, info.ComponentCount)
	}
}

func TestInspectMissingComponent(t *testing.T) {
	reg := regtest.Start(t)
	opts := []remote.Option{remote.WithTransport(reg.Transport)}
	refs := `{"kind":"ImageStream","spec":{"tags":[{"name":"cli","from":{"kind":"DockerImage","name":"` + reg.Host + `/x/y@sha256:` + strings.Repeat("b", 64) + `"}}]}}`
	img, err := releasetest.Image([]byte(refs))
	if err != nil {
		t.Fatal(err)
	}
	r := reg.Host + "/ocp/release:bad"
	if _, err := synth.Push(img, r, opts...); err != nil {
		t.Fatal(err)
	}
	_, err = Inspect(context.Background(), RemoteSource{Options: opts, Insecure: true}, ref.MustParse(r), InspectOptions{Parallel: 2})
	if err == nil || !strings.Contains(err.Error(), "component cli") {
		t.Fatalf("err = %v, want it to name component cli", err)
	}
}
