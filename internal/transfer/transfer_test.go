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
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
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
	// a segment on neither disk, and a third disk not mounted: the
	// message names the segment, every directory searched and the
	// unreadable one
	last := m.Segments[len(m.Segments)-1].Name
	for _, d := range []string{d1, d2} {
		os.Remove(filepath.Join(d, last))
	}
	d3 := filepath.Join(t.TempDir(), "not-mounted")
	r, err = Verify([]string{d1, d2, d3})
	if err != nil {
		t.Fatal(err)
	}
	var miss *BadSegment
	for i := range r.Bad {
		if r.Bad[i].Name == last {
			miss = &r.Bad[i]
		}
	}
	if miss == nil || miss.Problem != ProblemMissing {
		t.Fatalf("want %s missing, got %+v", last, r.Bad)
	}
	for _, want := range []string{last, d1, d2, d3} {
		if !strings.Contains(r.Error(), want) {
			t.Errorf("message does not name %s:\n%s", want, r.Error())
		}
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

// TestBadFirstSegmentKeepsMetadata: segment 1 holds the store's metadata
// (index.json, the plan); one byte of it flipped must cost only its blobs.
// The manifest's copy of the metadata restores index.json, so every image
// whose blobs are elsewhere stays usable; a manifest whose metadata was
// changed writes nothing.
func TestBadFirstSegmentKeepsMetadata(t *testing.T) {
	src, _ := threeImages(t)
	dir := t.TempDir()
	m := create(t, src, dir, 64<<10, false)
	first := m.Segments[0].Name
	p := filepath.Join(dir, first)
	b, _ := os.ReadFile(p)
	b[len(b)/2] ^= 1
	os.WriteFile(p, b, 0o644)
	r, err := Verify([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Bad) != 1 || r.Bad[0].Name != first || r.Bad[0].Problem != ProblemChecksum {
		t.Fatalf("want %s %s, got %+v", first, ProblemChecksum, r.Bad)
	}
	affected := map[string]bool{}
	for _, n := range r.Bad[0].Images {
		affected[n] = true
	}
	if len(affected) == 0 || len(affected) == len(m.Images) {
		t.Fatalf("segment 1 should affect some but not all images: %v of %d", r.Bad[0].Images, len(m.Images))
	}
	dst := filepath.Join(t.TempDir(), "dst")
	if err := Extract(r, dst); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(filepath.Join(src, "index.json"))
	got, err := os.ReadFile(filepath.Join(dst, "index.json"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("index.json not restored from the manifest (%v)", err)
	}
	st, err := store.Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range m.Images {
		complete := true
		for _, d := range img.Blobs {
			if _, ok := st.HasBlob(d); !ok {
				complete = false
			}
		}
		if complete == affected[img.Name] {
			t.Errorf("%s: all blobs present=%v, affected by %s=%v", img.Name, complete, first, affected[img.Name])
		}
	}

	// A manifest whose embedded index.json was altered: refused, named.
	mp := filepath.Join(dir, ManifestName)
	var raw map[string]any
	mb, _ := os.ReadFile(mp)
	json.Unmarshal(mb, &raw)
	md := raw["metadata"].([]any)
	for _, e := range md {
		if e.(map[string]any)["name"] == "index.json" {
			e.(map[string]any)["data"] = []byte(`{"manifests":[]}`)
		}
	}
	mb, _ = json.Marshal(raw)
	os.WriteFile(mp, mb, 0o644)
	r, err = Verify([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	dst2 := filepath.Join(t.TempDir(), "dst2")
	err = Extract(r, dst2)
	if err == nil || !strings.Contains(err.Error(), "index.json") || !strings.Contains(err.Error(), ManifestName) {
		t.Fatalf("altered metadata: want an error naming index.json and %s, got %v", ManifestName, err)
	}
	if _, err := os.Stat(filepath.Join(dst2, "index.json")); err == nil {
		// store.Open writes an empty index; it must not be the forged one
		if b, _ := os.ReadFile(filepath.Join(dst2, "index.json")); strings.Contains(string(b), `"manifests":[]`) && !bytes.Contains(b, []byte("schemaVersion")) {
			t.Errorf("forged index.json written: %s", b)
		}
	}
}

// TestEstimateSpace: the estimate for a run into an empty directory counts
// every blob for the store and again for the set, at least what Create
// then writes; after a set, only unshipped blobs count for the next set,
// and the old set's files count as freed.
func TestEstimateSpace(t *testing.T) {
	src, st := threeImages(t)
	incoming := map[string]int64{}
	var poolBytes int64
	for _, e := range mustDir(t, filepath.Join(src, "blobs", "sha256")) {
		sz, _ := st.HasBlob("sha256:" + e)
		incoming["sha256:"+e] = sz
		poolBytes += sz
	}
	n, err := EstimateSpace(SpaceOptions{Store: filepath.Join(t.TempDir(), "new"), Incoming: incoming, SegmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	m := create(t, src, out, 64<<10, false)
	var actual int64
	for _, e := range mustDir(t, out) {
		fi, _ := os.Stat(filepath.Join(out, e))
		actual += fi.Size()
	}
	if n.Store != poolBytes || n.Set < actual || n.Set > actual+2*metadataSlack || n.Freed != 0 || n.Total() != n.Store+n.Set {
		t.Fatalf("estimate %+v (total %d): want store %d, set at least the %d bytes Create wrote", n, n.Total(), poolBytes, actual)
	}
	// The store as the source side has it after the set, with its files
	// in the store directory (as mirror writes them), and one new image.
	for _, s := range append(m.Segments, Segment{Name: ManifestName}) {
		b, _ := os.ReadFile(filepath.Join(out, s.Name))
		os.WriteFile(filepath.Join(src, s.Name), b, 0o644)
	}
	addImage(t, st, "ns/d:1", 5000)
	n2, err := EstimateSpace(SpaceOptions{Store: src, Incoming: incoming, SegmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if n2.Store != 0 || n2.Freed != actual {
		t.Fatalf("second estimate %+v: want nothing new for the store and the old set (%d bytes) freed", n2, actual)
	}
	// ns/d's three blobs (~6 KiB) and the per-blob manifest share: far
	// below a set that would ship everything again
	full, _ := EstimateSpace(SpaceOptions{Store: src, Incoming: incoming, SegmentSize: 64 << 10, Full: true})
	if n2.Set >= full.Set-poolBytes {
		t.Fatalf("incremental estimate %d, full %d: already shipped blobs counted", n2.Set, full.Set)
	}
}

// pgpKeyFiles writes an armored OpenPGP secret and public key pair
// generated here, and returns their paths.
func pgpKeyFiles(t *testing.T, name string) (sec, pub string, e *openpgp.Entity) {
	t.Helper()
	e, err := openpgp.NewEntity(name, "", name+"@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(file, typ string, ser func(w io.Writer) error) string {
		var b bytes.Buffer
		w, err := armor.Encode(&b, typ, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := ser(w); err != nil {
			t.Fatal(err)
		}
		w.Close()
		p := filepath.Join(dir, file)
		os.WriteFile(p, b.Bytes(), 0o600)
		return p
	}
	sec = write("sec.asc", openpgp.PrivateKeyType, func(w io.Writer) error { return e.SerializePrivate(w, nil) })
	pub = write("pub.asc", openpgp.PublicKeyType, e.Serialize)
	return sec, pub, e
}

func TestOpenPGPSignature(t *testing.T) {
	src, _ := threeImages(t)
	dir := t.TempDir()
	create(t, src, dir, 1<<20, false)
	sec, pub, _ := pgpKeyFiles(t, "airlock-test")
	if err := Sign(dir, sec); err != nil {
		t.Fatal(err)
	}
	asc, err := os.ReadFile(filepath.Join(dir, PGPSignatureName))
	if err != nil || !bytes.HasPrefix(asc, []byte("-----BEGIN PGP SIGNATURE-----")) {
		t.Fatalf("%s: %v\n%s", PGPSignatureName, err, asc)
	}
	if err := VerifySignature(dir, pub); err != nil {
		t.Fatal(err)
	}
	// another key, a changed manifest: refused, naming the signature
	_, otherPub, _ := pgpKeyFiles(t, "someone-else")
	if err := VerifySignature(dir, otherPub); err == nil || !strings.Contains(err.Error(), PGPSignatureName) {
		t.Fatalf("signature checked with another key: %v", err)
	}
	p := filepath.Join(dir, ManifestName)
	b, _ := os.ReadFile(p)
	os.WriteFile(p, append(b, ' '), 0o644)
	if err := VerifySignature(dir, pub); err == nil {
		t.Fatal("changed manifest verified")
	}
	os.WriteFile(p, b, 0o644)
	// a public key cannot sign; a passphrase-protected key is refused
	// with the way out
	if err := Sign(dir, pub); err == nil || !strings.Contains(err.Error(), "secret key") {
		t.Fatalf("signing with a public key: %v", err)
	}
	_, _, e := pgpKeyFiles(t, "protected")
	if err := e.EncryptPrivateKeys([]byte("pass"), nil); err != nil {
		t.Fatal(err)
	}
	var enc bytes.Buffer
	w, _ := armor.Encode(&enc, openpgp.PrivateKeyType, nil)
	e.SerializePrivateWithoutSigning(w, nil)
	w.Close()
	ep := filepath.Join(t.TempDir(), "enc.asc")
	os.WriteFile(ep, enc.Bytes(), 0o600)
	if err := Sign(t.TempDir(), ep); err == nil {
		t.Fatal("signing a set that is not there")
	}
	if err := Sign(dir, ep); err == nil || !strings.Contains(err.Error(), "passphrase") {
		t.Fatalf("passphrase-protected key: %v", err)
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
