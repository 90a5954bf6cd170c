package cli

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/airlock-mirror/airlock/internal/store"
)

func runArchive(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := NewRootCommand(IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	root.SetArgs(args)
	err := root.Execute()
	return out.String() + errOut.String(), err
}

func storeImage(t *testing.T, st *store.Store, name string, n int) {
	t.Helper()
	layer := make([]byte, n)
	rand.Read(layer)
	ld, _ := st.PutBytes(layer)
	cd, _ := st.PutBytes([]byte(`{"n":"` + name + `"}`))
	lh, _ := v1.NewHash(ld)
	ch, _ := v1.NewHash(cd)
	m, _ := json.Marshal(v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1,
		Config: v1.Descriptor{MediaType: types.OCIConfigJSON, Digest: ch, Size: int64(len(`{"n":"` + name + `"}`))},
		Layers: []v1.Descriptor{{MediaType: types.OCILayer, Digest: lh, Size: int64(n)}}})
	md, _ := st.PutBytes(m)
	mh, _ := v1.NewHash(md)
	if err := st.Record(name, v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: mh, Size: int64(len(m))}, nil); err != nil {
		t.Fatal(err)
	}
}

// TestArchiveCommands: create (incremental), verify, ls, diff, and an
// extract of set 2 alone that names set 1 as missing.
func TestArchiveCommands(t *testing.T) {
	work := t.TempDir()
	src := filepath.Join(work, "store")
	st, err := store.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	storeImage(t, st, "ns/a:1", 50000)
	set1, set2 := filepath.Join(work, "set1"), filepath.Join(work, "set2")
	if out, err := runArchive(t, "archive", "create", "--from", "file://"+src, set1, "--segment-bytes", "40000"); err != nil || !strings.Contains(out, "(full)") {
		t.Fatalf("create set 1: %v\n%s", err, out)
	}
	storeImage(t, st, "ns/b:1", 1000)
	out, err := runArchive(t, "archive", "create", "--from", "file://"+src, set2, "--segment-bytes", "40000")
	if err != nil || !strings.Contains(out, "incremental") {
		t.Fatalf("create set 2: %v\n%s", err, out)
	}
	if out, err := runArchive(t, "archive", "verify", set1); err != nil || !strings.Contains(out, "intact") {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	if out, _ := runArchive(t, "archive", "ls", set2); !strings.Contains(out, "ns/a:1") || !strings.Contains(out, "ns/b:1") {
		t.Errorf("ls:\n%s", out)
	}
	if out, _ := runArchive(t, "archive", "diff", set1, set2); !strings.HasPrefix(out, "+ ns/b:1 ") || strings.Contains(out, "ns/a:1") {
		t.Errorf("diff:\n%s", out)
	}
	s1 := readSetID(t, set1)
	_, err = runArchive(t, "archive", "extract", set2, "file://"+filepath.Join(work, "dst"))
	if err == nil || !strings.Contains(err.Error(), "set "+s1) {
		t.Fatalf("extract of set 2 alone: want set %s named missing, got %v", s1, err)
	}
	if out, err := runArchive(t, "archive", "extract", set1, "file://"+filepath.Join(work, "dst")); err != nil {
		t.Fatalf("extract set 1: %v\n%s", err, out)
	}
	if out, err := runArchive(t, "archive", "extract", set2, "file://"+filepath.Join(work, "dst")); err != nil {
		t.Fatalf("extract set 2 after set 1: %v\n%s", err, out)
	}
}

func readSetID(t *testing.T, dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "airlock-transfer.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		SetID string `json:"setID"`
	}
	json.Unmarshal(b, &m)
	return m.SetID
}

// TestMirrorTransferFlags: several --from without a transfer set in any is
// refused naming them; --disk-limit outside mirror-to-disk with a set is
// refused rather than ignored.
func TestMirrorTransferFlags(t *testing.T) {
	work := t.TempDir()
	cfg := filepath.Join(work, "isc.yaml")
	os.WriteFile(cfg, []byte("apiVersion: mirror.openshift.io/v2alpha1\nkind: ImageSetConfiguration\nmirror:\n  additionalImages:\n  - name: 127.0.0.1:1/x/y:1\n"), 0o644)
	a, b := filepath.Join(work, "a"), filepath.Join(work, "b")
	os.Mkdir(a, 0o755)
	os.Mkdir(b, 0o755)
	_, err := runArchive(t, "mirror", "-c", cfg, "--from", "file://"+a, "--from", "file://"+b, "docker://127.0.0.1:1/dst")
	if err == nil || !strings.Contains(err.Error(), "--from given 2 times") || !strings.Contains(err.Error(), a) || !strings.Contains(err.Error(), b) {
		t.Errorf("two --from without a set: %v", err)
	}
	_, err = runArchive(t, "mirror", "-c", cfg, "--from", "file://"+a, "docker://127.0.0.1:1/dst", "--disk-limit", "1G")
	if err == nil || !strings.Contains(err.Error(), "--disk-limit applies to mirror-to-disk") {
		t.Errorf("--disk-limit with disk-to-mirror: %v", err)
	}
	_, err = runArchive(t, "mirror", "-c", cfg, "file://"+filepath.Join(work, "store"), "--disk-limit", "1G")
	if err == nil || !strings.Contains(err.Error(), "--disk-limit applies to mirror-to-disk with a transfer set") {
		t.Errorf("--disk-limit without a transfer set: %v", err)
	}
}
