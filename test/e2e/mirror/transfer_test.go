package mirror_test

import (
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
