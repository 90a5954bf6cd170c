package release

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlock-mirror/airlock/internal/release/releasetest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

func realFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(releasetest.DataDir(), name))
	if err != nil {
		t.Fatalf("real test data missing: %v", err)
	}
	return b
}

func TestParseRealImageReferences(t *testing.T) {
	_, comps, err := ParseImageReferences(realFile(t, "release-manifests/image-references"), "image-references")
	if err != nil {
		t.Fatal(err)
	}
	if len(comps) != 183 {
		t.Fatalf("got %d components, want 183", len(comps))
	}
	if comps[0].Name != "agent-installer-api-server" ||
		comps[0].Image.String() != "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:f30638f60452062aba36a26ee6c036feead2f03b28f2c47f2b0a991e4182331e" {
		t.Errorf("first component = %+v", comps[0])
	}
	for _, c := range comps {
		if c.Image.Repository() != "quay.io/openshift-release-dev/ocp-v4.0-art-dev" || c.Image.Digest == "" {
			t.Errorf("component %s: unexpected image %s", c.Name, c.Image)
		}
	}
}

func TestParseRealMetadata(t *testing.T) {
	m, err := ParseMetadata(realFile(t, "release-manifests/release-metadata"), "release-metadata")
	if err != nil {
		t.Fatal(err)
	}
	if m.Version != "4.12.0" || len(m.Previous) != 21 || m.Previous[0] != "4.11.11" || m.Metadata["url"] != "https://access.redhat.com/errata/RHSA-2022:7399" {
		t.Errorf("metadata = %+v", m)
	}
}

func TestParseImageReferencesErrors(t *testing.T) {
	tests := []struct{ name, json, want string }{
		{"tag without digest", `{"kind":"ImageStream","spec":{"tags":[{"name":"etcd","from":{"kind":"DockerImage","name":"quay.io/a/b:latest"}}]}}`,
			`tag "etcd": image "quay.io/a/b:latest" is not pinned by digest`},
		{"bad reference", `{"kind":"ImageStream","spec":{"tags":[{"name":"cli","from":{"kind":"DockerImage","name":"Quay.io/A B"}}]}}`, `tag "cli"`},
		{"wrong kind", `{"kind":"ConfigMap"}`, `kind is "ConfigMap", want ImageStream`},
		{"no tags", `{"kind":"ImageStream","spec":{"tags":[]}}`, "lists no component tags"},
		{"duplicate", `{"kind":"ImageStream","spec":{"tags":[{"name":"a","from":{"kind":"DockerImage","name":"q.io/a@sha256:` + strings.Repeat("a", 64) + `"}},{"name":"a","from":{"kind":"DockerImage","name":"q.io/a@sha256:` + strings.Repeat("a", 64) + `"}}]}}`, `tag "a" is listed twice`},
		{"not json", `{`, "not a valid ImageStream JSON"},
		{"from kind", `{"kind":"ImageStream","spec":{"tags":[{"name":"x","from":{"kind":"ImageStreamTag","name":"x:y"}}]}}`, `from.kind is "ImageStreamTag"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ParseImageReferences([]byte(tc.json), "payload.json")
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "payload.json: ") {
				t.Fatalf("err = %v, want it to name payload.json and contain %q", err, tc.want)
			}
		})
	}
}

// The real payload layer alone: the reader must find both files in it.
func TestReadRealPayloadLayer(t *testing.T) {
	img, err := releasetest.Image(nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Read(img, "test")
	if err != nil {
		t.Fatal(err)
	}
	if p.Version != "4.12.0" || p.Architecture != "amd64" || len(p.Components) != 183 || len(p.Previous) != 21 {
		t.Fatalf("payload = version %s arch %s %d components %d previous", p.Version, p.Architecture, len(p.Components), len(p.Previous))
	}
	if p.Components[0].Image.Registry != "quay.io" {
		t.Errorf("first component %s, want the real quay.io reference", p.Components[0].Image)
	}
}

// A top layer overriding image-references wins over the real one below.
func TestReadTopLayerOverrides(t *testing.T) {
	refs := `{"kind":"ImageStream","spec":{"tags":[{"name":"cli","from":{"kind":"DockerImage","name":"127.0.0.1:5000/x/y@sha256:` + strings.Repeat("b", 64) + `"}}]}}`
	img, err := releasetest.Image([]byte(refs))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Read(img, "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Components) != 1 || p.Components[0].Image.Registry != "127.0.0.1:5000" || p.Version != "4.12.0" {
		t.Fatalf("got %+v", p)
	}
}

func TestReadWhiteoutHidesLowerFile(t *testing.T) {
	img, err := releasetest.Image(nil)
	if err != nil {
		t.Fatal(err)
	}
	wh, err := releasetest.TarLayer(map[string][]byte{"release-manifests/.wh.image-references": {}})
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.AppendLayers(img, wh)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Read(img, "quay.io/x/release:1"); !errors.Is(err, ErrNotRelease) || !strings.Contains(err.Error(), "quay.io/x/release:1") {
		t.Fatalf("err = %v, want ErrNotRelease naming the image", err)
	}
}

func TestReadNotARelease(t *testing.T) {
	img, err := synth.Image(1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Read(img, "docker.io/library/busybox:1"); !errors.Is(err, ErrNotRelease) {
		t.Fatalf("err = %v, want ErrNotRelease", err)
	}
}

func TestArchExt(t *testing.T) {
	for _, tc := range []struct {
		arch string
		keep bool
		want string
	}{
		{"amd64", false, "-x86_64"}, {"arm64", false, "-aarch64"}, {"ppc64le", false, "-ppc64le"},
		{"s390x", false, "-s390x"}, {"amd64", true, "-multi"}, {"multi", false, "-multi"},
	} {
		if got := ArchExt(tc.arch, tc.keep); got != tc.want {
			t.Errorf("ArchExt(%s,%v) = %s, want %s", tc.arch, tc.keep, got, tc.want)
		}
	}
}

// poisonLayer fails if anyone reads it: the reader must find both payload
// files in the layers above and never open the (large) base layers below.
type poisonLayer struct{ v1.Layer }

func (poisonLayer) Uncompressed() (io.ReadCloser, error) {
	return nil, errors.New("base layer was read")
}

func (poisonLayer) Compressed() (io.ReadCloser, error) {
	return nil, errors.New("base layer was read")
}

func TestReadStopsAtPayloadLayer(t *testing.T) {
	img, err := releasetest.Image(nil)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	// Put an unreadable layer below the real payload layer.
	poisoned, err := mutate.AppendLayers(empty.Image, poisonLayer{layers[0]}, layers[1])
	if err != nil {
		t.Fatal(err)
	}
	refs, meta, err := ReadFiles(poisoned)
	if err != nil {
		t.Fatalf("reader touched the base layer: %v", err)
	}
	if len(refs) != 118929 || len(meta) != 514 {
		t.Fatalf("read %d and %d bytes, want the real 118929 and 514", len(refs), len(meta))
	}
}

func BenchmarkReadRealPayload(b *testing.B) {
	img, err := releasetest.Image(nil)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Read(img, "bench"); err != nil {
			b.Fatal(err)
		}
	}
}
