package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func TestOpenCreatesLayoutAndRefusesForeignDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	if _, err := Open(dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"oci-layout", "index.json", "blobs/sha256"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "oci-layout"))
	if !strings.Contains(string(b), `"imageLayoutVersion":"1.0.0"`) {
		t.Errorf("oci-layout = %s", b)
	}
	// Reopening keeps it.
	if _, err := Open(dir); err != nil {
		t.Fatal(err)
	}
	foreign := t.TempDir()
	os.WriteFile(filepath.Join(foreign, "notes.txt"), []byte("mine"), 0o644)
	if _, err := Open(foreign); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("Open(non-empty dir) = %v, want a refusal", err)
	}
}

func TestWriteBlobVerifiesBeforeRename(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("layer content")
	d := digestOf(data)
	// Wrong content under the digest: refused, nothing left behind.
	if _, err := s.WriteBlob(d, int64(len(data)), bytes.NewReader([]byte("other content"))); err == nil {
		t.Fatal("wrong content accepted")
	}
	// Wrong size.
	if _, err := s.WriteBlob(d, 3, bytes.NewReader(data)); err == nil {
		t.Fatal("wrong size accepted")
	}
	if _, ok := s.HasBlob(d); ok {
		t.Fatal("blob present after failed writes")
	}
	entries, _ := os.ReadDir(filepath.Join(s.Dir(), "blobs", "sha256"))
	if len(entries) != 0 {
		t.Fatalf("leftover files after failed writes: %v", entries)
	}
	n, err := s.WriteBlob(d, int64(len(data)), bytes.NewReader(data))
	if err != nil || n != int64(len(data)) {
		t.Fatalf("WriteBlob = %d, %v", n, err)
	}
	got, err := s.ReadBlob(d)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("ReadBlob = %q, %v", got, err)
	}
	// Present: not read again.
	if n, err := s.WriteBlob(d, int64(len(data)), bytes.NewReader(nil)); err != nil || n != 0 {
		t.Fatalf("rewrite of present blob = %d, %v", n, err)
	}
	// A damaged blob is reported, not served.
	p, _ := s.BlobPath(d)
	os.WriteFile(p, []byte("layer CONTENT"), 0o644)
	if _, err := s.ReadBlob(d); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("ReadBlob of damaged blob = %v", err)
	}
	if _, err := s.BlobPath("sha256:zz"); err == nil {
		t.Error("bad digest accepted")
	}
}

func TestConcurrentRecordsAreAllKept(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const n = 40
	descs := make([]v1.Descriptor, n)
	for i := range descs {
		m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","n":%d}`, i))
		d, err := s.PutBytes(m)
		if err != nil {
			t.Fatal(err)
		}
		h, _ := v1.NewHash(d)
		descs[i] = v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: h, Size: int64(len(m))}
	}
	// Two Store values on one directory stand in for two processes: only
	// the file lock serialises them.
	s2, err := Open(s.Dir())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range descs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := s
			if i%2 == 1 {
				st = s2
			}
			if err := st.Record(fmt.Sprintf("ns/app%d:v1", i), descs[i], map[string]string{AnnotationSource: "example.com/x"}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	im, err := s.Index()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != n {
		t.Fatalf("index has %d entries, want %d", len(im.Manifests), n)
	}
	for i := range descs {
		d, err := s.Lookup(fmt.Sprintf("ns/app%d:v1", i))
		if err != nil || d.Digest != descs[i].Digest {
			t.Errorf("Lookup app%d = %v, %v", i, d.Digest, err)
		}
		if _, err := s.Lookup(fmt.Sprintf("ns/app%d@%s", i, descs[i].Digest)); err != nil {
			t.Errorf("Lookup by digest: %v", err)
		}
	}
	// Re-recording a name moves it instead of duplicating it.
	if err := s.Record("ns/app0:v1", descs[1], nil); err != nil {
		t.Fatal(err)
	}
	im, _ = s.Index()
	if len(im.Manifests) != n {
		t.Errorf("after retag: %d entries, want %d", len(im.Manifests), n)
	}
	if d, _ := s.Lookup("ns/app0:v1"); d.Digest != descs[1].Digest {
		t.Errorf("retag not applied")
	}
	if _, err := s.Lookup("ns/nope:v1"); err == nil {
		t.Error("Lookup of absent image succeeded")
	}
	// Recording a manifest that is not stored is refused.
	h, _ := v1.NewHash("sha256:" + strings.Repeat("0", 64))
	if err := s.Record("x:y", v1.Descriptor{Digest: h}, nil); err == nil {
		t.Error("Record of unstored manifest accepted")
	}
	// No temp files left behind.
	entries, _ := os.ReadDir(s.Dir())
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			t.Errorf("leftover %s", e.Name())
		}
	}
}

func TestOpenRemovesStaleTempFilesOnly(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir); err != nil {
		t.Fatal(err)
	}
	blobs := filepath.Join(dir, "blobs", "sha256")
	stale := filepath.Join(blobs, tmpPrefix+"killed-writer")
	fresh := filepath.Join(blobs, tmpPrefix+"live-writer")
	os.WriteFile(stale, []byte("partial"), 0o644)
	os.WriteFile(fresh, []byte("partial"), 0o644)
	old := time.Now().Add(-2 * staleAfter)
	os.Chtimes(stale, old, old)
	if _, err := Open(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); err == nil {
		t.Error("stale temp file kept")
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Error("a live writer's temp file was removed")
	}
}
