package mirror_test

import (
	"archive/tar"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/airlock-mirror/airlock/internal/testutil/clitest"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/transfer"
)

// TestTransferSetRoundTrip: mirror-to-disk writes segments; only the
// segments and the manifest are carried; archive verify passes; one
// corrupted segment is named and --partial pushes everything else; the
// re-copied segment completes the mirror, and airlock verify finds every
// planned digest at the destination.
func TestTransferSetRoundTrip(t *testing.T) {
	f := newFixture(t)
	work := t.TempDir()
	dir := filepath.Join(work, "store")
	cfg := f.config(t, work, "ecr-secret-operator")
	out := run(t, "mirror", "-c", cfg, "file://"+dir, "--graph-url", f.graphURL, "--segment-bytes", "100000")
	if !strings.Contains(out, "transfer set ") {
		t.Fatalf("no transfer set written:\n%s", out)
	}
	m, err := transfer.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Segments) < 3 {
		t.Fatalf("want several segments, got %d", len(m.Segments))
	}
	// Carry only the set: segments and manifest, nothing of the store.
	carry := filepath.Join(work, "carry")
	os.Mkdir(carry, 0o755)
	for _, s := range append(m.Segments, transfer.Segment{Name: transfer.ManifestName}) {
		b, err := os.ReadFile(filepath.Join(dir, s.Name))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(carry, s.Name), b, 0o644)
	}
	run(t, "archive", "verify", carry)
	ls := run(t, "archive", "ls", carry)
	if !strings.Contains(ls, "ecr-secret-operator") || !strings.Contains(ls, "release 4.12.2") {
		t.Errorf("archive ls lacks the package or release:\n%s", ls)
	}

	// One byte of the last segment (blobs only) flipped.
	bad := m.Segments[len(m.Segments)-1].Name
	p := filepath.Join(carry, bad)
	good, _ := os.ReadFile(p)
	broken := append([]byte(nil), good...)
	broken[len(broken)/3] ^= 1
	os.WriteFile(p, broken, 0o644)
	_, errOut, err := clitest.Run(t, "archive", "verify", carry)
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Fatalf("archive verify of a corrupt %s: %v\n%s", bad, err, errOut)
	}

	dst := regtest.Start(t)
	f.src.Server.Close()
	// Without --partial nothing is pushed.
	if _, _, err := clitest.Run(t, "mirror", "-c", cfg, "--from", "file://"+carry, "docker://"+dst.Host+"/mirror"); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("disk-to-mirror of a damaged set: %v", err)
	}
	_, errOut, err = clitest.Run(t, "mirror", "-c", cfg, "--from", "file://"+carry, "docker://"+dst.Host+"/mirror", "--partial")
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(errOut, "not pushed") {
		t.Fatalf("--partial: want an error naming %s and the images not pushed: %v\n%s", bad, err, errOut)
	}
	// The segment carried again: the mirror completes.
	os.WriteFile(p, good, 0o644)
	run(t, "mirror", "-c", cfg, "--from", "file://"+carry, "docker://"+dst.Host+"/mirror")
	vmap := filepath.Join(carry, "working-dir", "mapping.txt")
	vout := run(t, "verify", "-f", vmap)
	lines := strings.Count(mustRead(t, vmap), "\n")
	if lines == 0 || !strings.Contains(vout, strconv.Itoa(lines)) {
		t.Errorf("verify of %d mappings:\n%s", lines, vout)
	}
}

// TestTransferSetBadFirstSegmentOnTwoDisks: the set is carried on two
// disks, segment 1 (the one with the store's metadata) on the first, the
// manifest on the second. One byte of segment 1 flipped: archive verify
// of both disks names it and the images it affects; mirror --from disk1
// --from disk2 --partial still pushes every other image (the metadata
// comes from the manifest) and names the rest; re-copying segment 1
// completes the mirror, and airlock verify finds every planned digest.
func TestTransferSetBadFirstSegmentOnTwoDisks(t *testing.T) {
	f := newFixture(t)
	work := t.TempDir()
	dir := filepath.Join(work, "store")
	cfg := f.config(t, work, "ecr-secret-operator")
	run(t, "mirror", "-c", cfg, "file://"+dir, "--graph-url", f.graphURL, "--segment-bytes", "100000")
	m, err := transfer.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Segments) < 3 {
		t.Fatalf("want several segments, got %d", len(m.Segments))
	}
	if !segmentHolds(t, filepath.Join(dir, m.Segments[0].Name), "index.json") {
		t.Fatalf("%s does not hold the store's index.json", m.Segments[0].Name)
	}
	disk1, disk2 := filepath.Join(work, "usb1"), filepath.Join(work, "usb2")
	os.Mkdir(disk1, 0o755)
	os.Mkdir(disk2, 0o755)
	copyTo := func(name, to string) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(to, name), b, 0o644)
	}
	for i, s := range m.Segments {
		if i%2 == 0 {
			copyTo(s.Name, disk1)
		} else {
			copyTo(s.Name, disk2)
		}
	}
	copyTo(transfer.ManifestName, disk2)
	run(t, "archive", "verify", disk1, disk2)

	first := m.Segments[0].Name
	p := filepath.Join(disk1, first)
	good, _ := os.ReadFile(p)
	broken := append([]byte(nil), good...)
	broken[len(broken)/2] ^= 1
	os.WriteFile(p, broken, 0o644)
	affected := m.ImagesNeeding(map[string]bool{first: true})
	if len(affected) == 0 || len(affected) == len(m.Images) {
		t.Fatalf("segment 1 should hold blobs of some images, not all: %d of %d", len(affected), len(m.Images))
	}
	_, _, err = clitest.Run(t, "archive", "verify", disk1, disk2)
	if err == nil || !strings.Contains(err.Error(), first) || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Fatalf("archive verify of a corrupt %s: %v", first, err)
	}
	for _, img := range affected {
		if !strings.Contains(err.Error(), img) {
			t.Errorf("archive verify does not name affected image %s:\n%v", img, err)
		}
	}

	dst := regtest.Start(t)
	f.src.Server.Close()
	from := []string{"--from", "file://" + disk1, "--from", "file://" + disk2}
	args := append([]string{"mirror", "-c", cfg}, from...)
	args = append(args, "docker://"+dst.Host+"/mirror")
	_, errOut, err := clitest.Run(t, append(args, "--partial")...)
	if err == nil || !strings.Contains(err.Error(), first) {
		t.Fatalf("--partial with a bad segment 1: want an error naming %s, got %v\n%s", first, err, errOut)
	}
	for _, img := range affected {
		if !strings.Contains(errOut, "not pushed (blobs in a bad segment): "+img) {
			t.Errorf("--partial does not name %s as not pushed:\n%s", img, errOut)
		}
	}
	// What was pushed is exactly the mapping of the partial run, and all
	// of it is at the destination with the planned digests.
	vmap := filepath.Join(disk1, "working-dir", "mapping.txt")
	partialLines := strings.Count(mustRead(t, vmap), "\n")
	vout := run(t, "verify", "-f", vmap)
	if partialLines == 0 || !strings.Contains(vout, strconv.Itoa(partialLines)) {
		t.Errorf("verify of the %d mappings pushed by --partial:\n%s", partialLines, vout)
	}

	// Segment 1 carried again onto the first disk: the mirror completes.
	os.WriteFile(p, good, 0o644)
	run(t, args...)
	lines := strings.Count(mustRead(t, vmap), "\n")
	if lines <= partialLines {
		t.Errorf("the complete run maps %d images, --partial %d: the partial run should have left some out", lines, partialLines)
	}
	vout = run(t, "verify", "-f", vmap)
	if !strings.Contains(vout, strconv.Itoa(lines)) {
		t.Errorf("verify of %d mappings:\n%s", lines, vout)
	}
}

// segmentHolds reports whether the tar segment at p has an entry name.
func segmentHolds(t *testing.T, p, name string) bool {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return false
		}
		if err != nil {
			t.Fatalf("reading %s: %v", p, err)
		}
		if h.Name == name {
			return true
		}
	}
}

// TestTransferSetFreeSpaceCountsStoreAndSegments: with a transfer set the
// blobs are written twice (store, then segments). A limit that holds the
// store but not the segments too fails the mirror before any blob is
// copied, naming DIR, the need and what is free; a limit that holds both
// lets it through.
func TestTransferSetFreeSpaceCountsStoreAndSegments(t *testing.T) {
	f := newFixture(t)
	work := t.TempDir()
	cfg := f.config(t, work, "ecr-secret-operator")
	dir := filepath.Join(work, "store")
	var cp struct {
		Total struct {
			TransferBytes int64 `json:"transferBytes"`
		} `json:"total"`
	}
	if err := json.Unmarshal([]byte(run(t, "plan", "-c", cfg, "file://"+dir, "--graph-url", f.graphURL, "-o", "json")), &cp); err != nil {
		t.Fatal(err)
	}
	store := cp.Total.TransferBytes
	if store < 100000 {
		t.Fatalf("plan counts %d bytes: too little for the test", store)
	}
	// Enough for the store alone (plus its manifests), not for the set too.
	limit := strconv.FormatInt(store*3/2, 10)
	_, errOut, err := clitest.Run(t, "mirror", "-c", cfg, "file://"+dir, "--graph-url", f.graphURL, "--segment-bytes", "100000", "--disk-limit", limit)
	if err == nil {
		t.Fatalf("mirror with %s bytes free for %d bytes of blobs written twice succeeded", limit, store)
	}
	for _, want := range []string{"not enough space for file://" + dir, "written twice", "free on", "needed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v\n%s", want, err, errOut)
		}
	}
	if blobs, _ := os.ReadDir(filepath.Join(dir, "blobs", "sha256")); len(blobs) > 0 {
		t.Errorf("%d blobs written before the space check failed", len(blobs))
	}
	for _, e := range mustDirNames(t, dir) {
		if transfer.IsTransferFile(e) {
			t.Errorf("transfer file %s written", e)
		}
	}
	// Room for both: the same run goes through and writes the set.
	limit = strconv.FormatInt(store*2+8<<20, 10)
	out := run(t, "mirror", "-c", cfg, "file://"+dir, "--graph-url", f.graphURL, "--segment-bytes", "100000", "--disk-limit", limit)
	if !strings.Contains(out, "transfer set ") {
		t.Fatalf("no transfer set written:\n%s", out)
	}
	if _, err := transfer.ReadManifest(dir); err != nil {
		t.Fatal(err)
	}
}

func mustDirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}
