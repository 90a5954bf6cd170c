package transfer

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/airlock-mirror/airlock/internal/store"
)

// addImage stores an image with the given layer sizes (random content)
// and names it in the index.
func addImage(t testing.TB, st *store.Store, name string, layers ...int) {
	t.Helper()
	put := func(b []byte) v1.Descriptor {
		d, err := st.PutBytes(b)
		if err != nil {
			t.Fatal(err)
		}
		h, _ := v1.NewHash(d)
		return v1.Descriptor{Digest: h, Size: int64(len(b)), MediaType: types.OCILayer}
	}
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1}
	m.Config = put([]byte(fmt.Sprintf(`{"name":%q}`, name)))
	m.Config.MediaType = types.OCIConfigJSON
	for _, n := range layers {
		b := make([]byte, n)
		rand.Read(b)
		m.Layers = append(m.Layers, put(b))
	}
	mb, _ := json.Marshal(m)
	d := put(mb)
	d.MediaType = types.OCIManifestSchema1
	if err := st.Record(name, d, nil); err != nil {
		t.Fatal(err)
	}
}

func newStore(t testing.TB) (string, *store.Store) {
	dir := filepath.Join(t.TempDir(), "store")
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, st
}

func create(t testing.TB, storeDir, out string, segSize int64, full bool) *Manifest {
	t.Helper()
	m, err := Create(CreateOptions{Store: storeDir, Out: out, SegmentSize: segSize, Full: full, AirlockVersion: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func verifyOK(t *testing.T, dirs ...string) *Report {
	t.Helper()
	r, err := Verify(dirs)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() {
		t.Fatalf("verify: %s", r.Error())
	}
	return r
}

// threeImages: a, b and c with 20-40 KiB layers, a and b sharing nothing.
func threeImages(t testing.TB) (string, *store.Store) {
	dir, st := newStore(t)
	addImage(t, st, "ns/a:1", 30000, 20000)
	addImage(t, st, "ns/b:1", 40000)
	addImage(t, st, "ns/c:1", 25000, 25000)
	return dir, st
}

func TestRoundTripAndSizeLimit(t *testing.T) {
	src, _ := threeImages(t)
	out := t.TempDir()
	const limit = 64 << 10
	m := create(t, src, out, limit, false)
	if len(m.Segments) < 3 {
		t.Fatalf("want several segments of %d bytes, got %d", limit, len(m.Segments))
	}
	for _, s := range m.Segments {
		fi, err := os.Stat(filepath.Join(out, s.Name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > limit || fi.Size() != s.Size {
			t.Errorf("%s: %d bytes on disk, manifest %d, limit %d", s.Name, fi.Size(), s.Size, limit)
		}
	}
	r := verifyOK(t, out)
	dst := filepath.Join(t.TempDir(), "dst")
	if err := Extract(r, dst); err != nil {
		t.Fatal(err)
	}
	for _, b := range m.Blobs {
		want, _ := os.ReadFile(filepath.Join(src, "blobs", "sha256", b.Digest[7:]))
		got, err := os.ReadFile(filepath.Join(dst, "blobs", "sha256", b.Digest[7:]))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("blob %s not restored: %v", b.Digest, err)
		}
	}
	a, _ := os.ReadFile(filepath.Join(src, "index.json"))
	b, _ := os.ReadFile(filepath.Join(dst, "index.json"))
	if !bytes.Equal(a, b) {
		t.Errorf("index.json differs")
	}
	for _, e := range mustDir(t, out) {
		if strings.HasPrefix(e, TempPrefix) {
			t.Errorf("temp file %s left", e)
		}
	}
}

func mustDir(t *testing.T, d string) []string {
	es, err := os.ReadDir(d)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func TestOversizedBlobOwnSegment(t *testing.T) {
	src, st := newStore(t)
	addImage(t, st, "big:1", 100000)
	var warns []string
	m, err := Create(CreateOptions{Store: src, Out: t.TempDir(), SegmentSize: 32 << 10, Warn: func(s string) { warns = append(warns, s) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "segment of its own") {
		t.Fatalf("warnings %q", warns)
	}
	big := 0
	for _, s := range m.Segments {
		if s.Size > 32<<10 {
			big++
		}
	}
	if big != 1 {
		t.Fatalf("want exactly one oversized segment, got %d of %v", big, m.Segments)
	}
}

func TestDamagedSegmentsNamed(t *testing.T) {
	src, _ := threeImages(t)
	base := t.TempDir()
	create(t, src, base, 64<<10, false)
	m, _ := ReadManifest(base)
	// the segment holding ns/b's 40000-byte layer
	var target string
	for _, b := range m.Blobs {
		if b.Size == 40000 {
			target = b.Segment
		}
	}
	cases := map[string]func(dir string){
		ProblemChecksum: func(dir string) {
			p := filepath.Join(dir, target)
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 0xff
			os.WriteFile(p, b, 0o644)
		},
		ProblemTruncated: func(dir string) {
			os.Truncate(filepath.Join(dir, target), 10000)
		},
		ProblemMissing: func(dir string) { os.Remove(filepath.Join(dir, target)) },
	}
	for problem, damage := range cases {
		t.Run(problem, func(t *testing.T) {
			dir := t.TempDir()
			copyDir(t, base, dir)
			damage(dir)
			r, err := Verify([]string{dir})
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Bad) != 1 || r.Bad[0].Name != target || r.Bad[0].Problem != problem {
				t.Fatalf("want %s %s, got %+v", target, problem, r.Bad)
			}
			// ns/b (its layer is there) and exactly the images with any
			// blob (config, manifest, layer) packed into the same segment
			inTarget := map[string]bool{}
			for _, b := range m.Blobs {
				if b.Segment == target {
					inTarget[b.Digest] = true
				}
			}
			var want []string
			for _, img := range m.Images {
				for _, d := range img.Blobs {
					if inTarget[d] {
						want = append(want, img.Name)
						break
					}
				}
			}
			imgs := strings.Join(r.Bad[0].Images, ",")
			if !strings.Contains(imgs, "ns/b:1") || imgs != strings.Join(want, ",") {
				t.Errorf("affected images %v, want %v (with ns/b:1)", r.Bad[0].Images, want)
			}
			if !strings.Contains(r.Error(), target) || !strings.Contains(r.Error(), "ns/b:1") {
				t.Errorf("message does not name segment and image: %s", r.Error())
			}
		})
	}
}

func copyDir(t *testing.T, from, to string) {
	for _, n := range mustDir(t, from) {
		b, err := os.ReadFile(filepath.Join(from, n))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(to, n), b, 0o644)
	}
}

func TestSegmentsSpreadOverDirsAndForeign(t *testing.T) {
	src, _ := threeImages(t)
	set := t.TempDir()
	m := create(t, src, set, 64<<10, false)
	// spread: odd segments in d1 with the manifest, even ones in d2
	d1, d2 := t.TempDir(), t.TempDir()
	for i, s := range m.Segments {
		d := d1
		if i%2 == 1 {
			d = d2
		}
		os.Rename(filepath.Join(set, s.Name), filepath.Join(d, s.Name))
	}
	os.Rename(filepath.Join(set, ManifestName), filepath.Join(d2, ManifestName))
	r := verifyOK(t, d1, d2)
	if err := Extract(r, filepath.Join(t.TempDir(), "x")); err != nil {
		t.Fatal(err)
	}
	// a segment of another set under the same name
	other, _ := threeImages(t)
	oset := t.TempDir()
	create(t, other, oset, 64<<10, false)
	os.Rename(filepath.Join(oset, m.Segments[0].Name), filepath.Join(d1, m.Segments[0].Name))
	r, err := Verify([]string{d1, d2})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Bad) != 1 || r.Bad[0].Problem != ProblemForeign || r.Bad[0].Name != m.Segments[0].Name {
		t.Fatalf("want %s %s, got %+v", m.Segments[0].Name, ProblemForeign, r.Bad)
	}
}

func TestGzipSegmentRead(t *testing.T) {
	src, _ := threeImages(t)
	dir := t.TempDir()
	m := create(t, src, dir, 1<<20, false)
	p := filepath.Join(dir, m.Segments[0].Name)
	b, _ := os.ReadFile(p)
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(b)
	zw.Close()
	os.WriteFile(p, z.Bytes(), 0o644)
	r := verifyOK(t, dir)
	if len(r.Gzip) != 1 {
		t.Errorf("gzip segment not reported: %v", r.Gzip)
	}
	if err := Extract(r, filepath.Join(t.TempDir(), "x")); err != nil {
		t.Fatal(err)
	}
}

// TestMaliciousEntriesRefused crafts segments with each kind of entry an
// extractor must refuse, and checks nothing lands outside the target.
func TestMaliciousEntriesRefused(t *testing.T) {
	blob := bytes.Repeat([]byte("x"), 100)
	dgst := "0000000000000000000000000000000000000000000000000000000000000000"
	reg := func(name string, size int64) *tar.Header {
		return &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644}
	}
	cases := map[string][]*tar.Header{
		"absolute":  {reg("/tmp/evil", 100)},
		"dotdot":    {reg("blobs/../../evil", 100)},
		"symlink":   {{Typeflag: tar.TypeSymlink, Name: "index.json", Linkname: "/etc/passwd"}},
		"hardlink":  {{Typeflag: tar.TypeLink, Name: "index.json", Linkname: "../evil"}},
		"device":    {{Typeflag: tar.TypeChar, Name: "oci-layout", Devmajor: 1, Devminor: 3}},
		"duplicate": {reg("oci-layout", 100), reg("oci-layout", 100)},
		"unknown":   {reg("evil.sh", 100)},
		"oversize":  {reg("blobs/sha256/"+dgst, 1<<40)},
	}
	for name, hdrs := range cases {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			segDir := filepath.Join(root, "set")
			os.Mkdir(segDir, 0o755)
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			for _, h := range hdrs {
				if err := tw.WriteHeader(h); err != nil {
					t.Fatal(err)
				}
				if h.Typeflag == tar.TypeReg && h.Size == 100 {
					tw.Write(blob)
				}
			}
			// the oversize entry is left short on purpose: raw bytes
			b := buf.Bytes()
			if name != "oversize" {
				tw.Close()
				b = buf.Bytes()
			}
			p := filepath.Join(segDir, SegmentName(1))
			os.WriteFile(p, b, 0o644)
			r := &Report{Manifest: &Manifest{Blobs: []Blob{{Digest: "sha256:" + dgst, Size: 1 << 40}}}, Paths: map[string]string{SegmentName(1): p}}
			target := filepath.Join(root, "store")
			err := Extract(r, target)
			if !errors.Is(err, ErrUnsafeEntry) {
				t.Fatalf("want ErrUnsafeEntry, got %v", err)
			}
			if _, err := os.Stat(filepath.Join(root, "evil")); err == nil {
				t.Error("evil written outside the store")
			}
			if _, err := os.Stat("/tmp/evil"); err == nil {
				t.Error("/tmp/evil written")
			}
			if fi, err := os.Lstat(filepath.Join(target, "index.json")); err == nil && fi.Mode()&os.ModeSymlink != 0 {
				t.Error("symlink created")
			}
		})
	}
}

func TestIncrementalShipsOnlyNewBlobs(t *testing.T) {
	src, st := threeImages(t)
	set1, set2 := t.TempDir(), t.TempDir()
	m1 := create(t, src, set1, 1<<20, false)
	if !m1.Full {
		t.Fatal("first set should be full")
	}
	addImage(t, st, "ns/d:1", 12345)
	m2 := create(t, src, set2, 1<<20, false)
	shipped := 0
	for _, b := range m2.Blobs {
		if b.Segment != "" {
			shipped++
		}
	}
	// the new image: its layer, config and manifest
	if shipped != 3 || m2.Full || len(m2.DependsOn) != 1 || m2.DependsOn[0] != m1.SetID {
		t.Fatalf("set 2 ships %d blobs, full=%v, dependsOn %v (set 1 %s)", shipped, m2.Full, m2.DependsOn, m1.SetID)
	}
	// set 2 alone into an empty store: set 1 is named as missing
	dst := filepath.Join(t.TempDir(), "dst")
	if err := Extract(verifyOK(t, set2), dst); err != nil {
		t.Fatal(err)
	}
	miss := MissingDependencies(m2, dst)
	if len(miss[m1.SetID]) != 3 {
		t.Fatalf("missing %v, want set %s for the 3 old images", miss, m1.SetID)
	}
	if err := Extract(verifyOK(t, set1), dst); err != nil {
		t.Fatal(err)
	}
	if miss := MissingDependencies(m2, dst); len(miss) != 0 {
		t.Fatalf("after set 1, still missing %v", miss)
	}
	// --full ships everything again
	m3 := create(t, src, t.TempDir(), 1<<20, true)
	for _, b := range m3.Blobs {
		if b.Segment == "" {
			t.Fatalf("full set lacks %s", b.Digest)
		}
	}
}

func TestSignature(t *testing.T) {
	src, _ := threeImages(t)
	dir := t.TempDir()
	create(t, src, dir, 1<<20, false)
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, edk, _ := ed25519.GenerateKey(rand.Reader)
	for name, k := range map[string]any{"ecdsa": ek, "ed25519": edk} {
		t.Run(name, func(t *testing.T) {
			kd := t.TempDir()
			der, _ := x509.MarshalPKCS8PrivateKey(k)
			pub, _ := x509.MarshalPKIXPublicKey(k.(crypto.Signer).Public())
			os.WriteFile(filepath.Join(kd, "k"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
			os.WriteFile(filepath.Join(kd, "k.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644)
			if err := Sign(dir, filepath.Join(kd, "k")); err != nil {
				t.Fatal(err)
			}
			if err := VerifySignature(dir, filepath.Join(kd, "k.pub")); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, ManifestName)
			b, _ := os.ReadFile(p)
			os.WriteFile(p, append(b, ' '), 0o644)
			defer os.WriteFile(p, b, 0o644)
			if err := VerifySignature(dir, filepath.Join(kd, "k.pub")); err == nil {
				t.Fatal("changed manifest verified")
			}
		})
	}
}

// TestSinceShipsOnlyBlobsWrittenAfter: `mirror --since DATE` makes a set
// of only the blobs written into the store after DATE, whatever earlier
// sets shipped; the older ones are listed as not shipped and the set is
// not full.
func TestSinceShipsOnlyBlobsWrittenAfter(t *testing.T) {
	src, st := threeImages(t)
	old := time.Now().Add(-2 * time.Hour)
	pool := filepath.Join(src, "blobs", "sha256")
	es, err := os.ReadDir(pool)
	if err != nil {
		t.Fatal(err)
	}
	oldBlobs := 0
	for _, e := range es {
		if len(e.Name()) == 64 {
			if err := os.Chtimes(filepath.Join(pool, e.Name()), old, old); err != nil {
				t.Fatal(err)
			}
			oldBlobs++
		}
	}
	addImage(t, st, "ns/d:1", 12345)
	since := time.Now().Add(-time.Hour)
	out := t.TempDir()
	m, err := Create(CreateOptions{Store: src, Out: out, SegmentSize: 1 << 20, Since: since, AirlockVersion: "test"})
	if err != nil {
		t.Fatal(err)
	}
	shipped, before := 0, 0
	for _, b := range m.Blobs {
		switch {
		case b.Segment != "":
			shipped++
		case b.InSet == "before-since":
			before++
		}
	}
	// the new image: its layer, config and manifest
	if shipped != 3 || before != oldBlobs || m.Full || m.Since == nil || !m.Since.Equal(since.UTC()) {
		t.Fatalf("--since: %d shipped (want 3), %d left as before-since (want %d), full=%v, since=%v", shipped, before, oldBlobs, m.Full, m.Since)
	}
	// Without --since, the next set ships the older blobs and depends on
	// the --since set for the new ones: --since left none of them out of
	// the history.
	m2 := create(t, src, t.TempDir(), 1<<20, false)
	shipped = 0
	for _, b := range m2.Blobs {
		if b.Segment != "" {
			shipped++
		}
	}
	if shipped != oldBlobs || len(m2.DependsOn) != 1 || m2.DependsOn[0] != m.SetID {
		t.Errorf("set after --since: %d shipped (want %d), dependsOn %v (want %s)", shipped, oldBlobs, m2.DependsOn, m.SetID)
	}
}
