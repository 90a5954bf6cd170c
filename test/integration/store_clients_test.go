package integration

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/airlock-mirror/airlock/internal/engine"
	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/testutil/gotool"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

// Pinned peer clients, the versions ../shared/bench measures against.
const (
	craneModule  = "github.com/google/go-containerregistry/cmd/crane@v0.22.1"
	regctlModule = "github.com/regclient/regclient/cmd/regctl@v0.11.7"
)

// TestStoreReadableByCraneAndRegctl: the local store airlock writes is a
// plain OCI image layout that other tools read: regctl reads every image by
// digest and copies one out in full, and crane pushes the whole store to a
// registry, where every manifest then resolves with the digest airlock
// recorded. (skopeo reading the store is tested in internal/engine.)
// mirrorWorkloadToStore pushes synth.Workload(seed, 4 images, 2 of them
// multi-arch indexes) to a test registry and mirrors it with the engine into
// a new store under mirror/REPO:TAG; it returns the store and "host/repo:tag"
// -> digest of what was pushed.
func mirrorWorkloadToStore(t *testing.T, seed int64) (string, map[string]string) {
	t.Helper()
	src := regtest.Start(t)
	entries, err := synth.Workload(seed, 4, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pushed, err := synth.PushWorkload(entries, src.Host, remote.WithTransport(src.Transport))
	if err != nil {
		t.Fatal(err)
	}
	store := t.TempDir()
	var p plan.Plan
	for s := range pushed {
		r := ref.MustParse(s)
		p.Add(plan.Item{Source: r, Dests: []ref.Ref{{Transport: ref.File, Path: "mirror/" + r.Path, Tag: r.Tag}}, Kind: plan.KindImage})
	}
	eng, err := engine.New(engine.Options{Transport: src.Transport, Insecure: true, StoreDir: store})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Run(context.Background(), p); err != nil {
		t.Fatalf("mirroring to the store: %v", err)
	}
	return store, pushed
}

func TestStoreReadableByCraneAndRegctl(t *testing.T) {
	crane := gotool.Path(t, craneModule)
	regctl := gotool.Path(t, regctlModule)

	store, pushed := mirrorWorkloadToStore(t, 41)

	// What the store says it holds.
	raw, err := os.ReadFile(filepath.Join(store, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var index struct {
		Manifests []struct {
			Digest string `json:"digest"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(raw, &index); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, d := range pushed {
		want[d] = true
	}
	got := map[string]bool{}
	for _, m := range index.Manifests {
		got[m.Digest] = true
	}
	if len(got) != len(want) {
		t.Fatalf("store index lists %d digests, %d images were mirrored", len(got), len(want))
	}

	env := clientEnv(t)
	for d := range want {
		if !got[d] {
			t.Fatalf("store index lacks %s", d)
		}
		r := mustRun(t, env, "", regctl, "manifest", "get", "ocidir://"+store+"@"+d, "--format", "{{.GetDescriptor.Digest}}")
		if strings.TrimSpace(r.stdout) != d {
			t.Errorf("regctl reads %s from the store as %q", d, strings.TrimSpace(r.stdout))
		}
		out := filepath.Join(t.TempDir(), "out")
		mustRun(t, env, "", regctl, "image", "copy", "ocidir://"+store+"@"+d, "ocidir://"+out+":copy")
	}

	dst := regtest.Start(t)
	mustRun(t, env, "", crane, "push", "--index", "--insecure", store, dst.Host+"/from-store/all:v1")
	for d := range want {
		r, err := name.NewDigest(dst.Host+"/from-store/all@"+d, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		desc, err := remote.Head(r, remote.WithTransport(dst.Transport))
		if err != nil {
			t.Errorf("crane pushed the store, but %s is not at the registry: %v", d, err)
			continue
		}
		if desc.Digest.String() != d {
			t.Errorf("%s arrived as %s", d, desc.Digest)
		}
	}
}
