package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
	"github.com/airlock-mirror/airlock/internal/transfer"
)

// skopeoDigests checks with skopeo every SRC@DIGEST=DST line of an airlock
// mapping file: the raw manifest at DST must hash to DIGEST. It returns
// how many lines it checked.
func skopeoDigests(t *testing.T, skopeo string, env []string, mappingFile string) int {
	t.Helper()
	b, err := os.ReadFile(mappingFile)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		src, dst, ok := strings.Cut(l, "=")
		_, want, ok2 := strings.Cut(src, "@")
		if !ok || !ok2 {
			t.Fatalf("mapping line %q", l)
		}
		raw := mustRun(t, env, "", skopeo, "inspect", "--raw", "--tls-verify=false", "docker://"+dst).stdout
		sum := sha256.Sum256([]byte(raw))
		if got := "sha256:" + hex.EncodeToString(sum[:]); got != want {
			t.Errorf("%s: skopeo reads %s, the source digest is %s", dst, got, want)
		}
		n++
	}
	return n
}

// TestTransferSetPartialFromTwoDisks drives the airlock binary as a user
// does: mirror-to-disk writes a transfer set; it is carried on two disks
// (segment 1, which holds the store's index and plan, on the first, the
// manifest on the second); one byte of segment 1 is flipped. archive
// verify of both disks names the segment and its images; mirror --from
// DISK1 --from DISK2 --partial pushes every other image (skopeo reads each
// at its source digest) and names the rest; segment 1 carried again, the
// same command completes the mirror, every image checked with skopeo.
func TestTransferSetPartialFromTwoDisks(t *testing.T) {
	skopeo := requireTool(t, "skopeo")
	env := clientEnv(t)
	src := regtest.Start(t)
	entries, err := synth.Workload(53, 8, 4096)
	if err != nil {
		t.Fatal(err)
	}
	pushed, err := synth.PushWorkload(entries, src.Host, remote.WithTransport(src.Transport))
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	for r := range pushed {
		refs = append(refs, r)
	}
	sort.Strings(refs)
	isc := "apiVersion: mirror.openshift.io/v2alpha1\nkind: ImageSetConfiguration\nmirror:\n  additionalImages:\n"
	for _, r := range refs {
		isc += "  - name: " + r + "\n"
	}
	work := t.TempDir()
	cfg := filepath.Join(work, "imageset.yaml")
	os.WriteFile(cfg, []byte(isc), 0o644)
	store := filepath.Join(work, "store")
	mustRun(t, env, "", airlockBin, "mirror", "-c", cfg, "--insecure", "file://"+store, "--segment-bytes", "40000")
	m, err := transfer.ReadManifest(store)
	if err != nil {
		t.Fatal(err)
	}
	first := m.Segments[0].Name
	affected := m.ImagesNeeding(map[string]bool{first: true})
	if len(m.Segments) < 3 || len(affected) == 0 || len(affected) == len(m.Images) {
		t.Fatalf("want several segments and segment 1 holding blobs of some images, not all: %d segments, %d of %d images", len(m.Segments), len(affected), len(m.Images))
	}

	disk1, disk2 := filepath.Join(work, "usb1"), filepath.Join(work, "usb2")
	carry := func(name, to string) {
		b, err := os.ReadFile(filepath.Join(store, name))
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(to, 0o755)
		os.WriteFile(filepath.Join(to, name), b, 0o644)
	}
	for i, s := range m.Segments {
		if i%2 == 0 {
			carry(s.Name, disk1)
		} else {
			carry(s.Name, disk2)
		}
	}
	carry(transfer.ManifestName, disk2)
	mustRun(t, env, "", airlockBin, "archive", "verify", disk1, disk2)
	seg1 := filepath.Join(disk1, first)
	good, _ := os.ReadFile(seg1)
	bad := append([]byte(nil), good...)
	bad[len(bad)/2] ^= 0x01
	os.WriteFile(seg1, bad, 0o644)

	r := run(t, env, "", airlockBin, "archive", "verify", disk1, disk2)
	if r.err == nil || !strings.Contains(r.stderr, first) || !strings.Contains(r.stderr, "checksum mismatch") {
		t.Fatalf("archive verify of a corrupt %s:\n%s", first, r)
	}
	for _, img := range affected {
		if !strings.Contains(r.stderr, img) {
			t.Errorf("archive verify does not name %s:\n%s", img, r.stderr)
		}
	}

	dst := regtest.Start(t)
	src.Server.Close() // the disconnected side reaches no source
	d2m := []string{"mirror", "-c", cfg, "--insecure", "--from", "file://" + disk1, "--from", "file://" + disk2, "docker://" + dst.Host + "/dr"}
	r = run(t, env, "", airlockBin, append(d2m, "--partial")...)
	if r.err == nil || !strings.Contains(r.stderr, first) {
		t.Fatalf("--partial with a bad segment 1: want a non-zero exit naming %s:\n%s", first, r)
	}
	for _, img := range affected {
		if !strings.Contains(r.stderr, "not pushed (blobs in a bad segment): "+img) {
			t.Errorf("--partial does not list %s as not pushed:\n%s", img, r.stderr)
		}
	}
	mapping := filepath.Join(disk1, "working-dir", "mapping.txt")
	partial := skopeoDigests(t, skopeo, env, mapping)
	if want := len(refs) - len(affected); partial != want {
		t.Errorf("--partial pushed %d images, want the %d whose blobs are intact", partial, want)
	}

	os.WriteFile(seg1, good, 0o644)
	mustRun(t, env, "", airlockBin, d2m...)
	if all := skopeoDigests(t, skopeo, env, mapping); all != len(refs) {
		t.Errorf("after re-copying %s: %d of %d images at the destination", first, all, len(refs))
	}
}
