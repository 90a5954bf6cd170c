package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/airlock-mirror/airlock/internal/mapping"
	"github.com/airlock-mirror/airlock/internal/testutil/clitest"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// airlockBinary builds cmd/airlock once per test process into a temporary
// directory: the crash tests kill a real process, not a goroutine.
func airlockBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "airlock-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "airlock")
		_, self, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(self), "..", "..")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/airlock")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/airlock: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// blobSet is every unique blob of a workload with its size.
func blobSet(t *testing.T, entries []synth.Entry) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	addImage := func(img v1.Image) {
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		out[m.Config.Digest.String()] = m.Config.Size
		for _, l := range m.Layers {
			out[l.Digest.String()] = l.Size
		}
	}
	for _, e := range entries {
		if e.Image != nil {
			addImage(e.Image)
			continue
		}
		im, err := e.Index.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range im.Manifests {
			img, err := e.Index.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			addImage(img)
		}
	}
	return out
}

// crashRun starts the airlock binary with args and SIGKILLs it as soon as
// the proxy has seen killAt blob bytes in total (0 = never). It reports
// whether the process was killed; a run that ends by itself must exit 0.
func crashRun(t *testing.T, bin string, p *Proxy, killAt int64, args ...string) (killed bool) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var logs strings.Builder
	cmd.Stdout = &logs
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	if killAt > 0 {
		p.OnBytes(func(total int64) {
			if total >= killAt {
				once.Do(func() { _ = cmd.Process.Signal(syscall.SIGKILL) })
			}
		})
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(40 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("airlock %s did not finish in 40s\n%s", strings.Join(args, " "), logs.String())
	}
	p.OnBytes(nil)
	if !p.WaitIdle(10 * time.Second) {
		t.Fatal("proxy still forwarding requests 10s after the client ended")
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return true
		}
	}
	if err != nil {
		t.Fatalf("airlock %s: %v\n%s", strings.Join(args, " "), err, logs.String())
	}
	return false
}

// blobPresence says, for each blob of the workload, whether the registry
// holds it in every repository of the mirror that needs it (nothing to do),
// in some of them (a mount suffices), or in none (it must be uploaded).
type blobPresence struct {
	all, any map[string]bool
	missing  int64 // bytes of blobs held in no repository
}

func presenceAtRegistry(t *testing.T, host string, entries []synth.Entry, prefix string) blobPresence {
	t.Helper()
	needs := map[string]map[string]bool{} // digest -> repos
	sizes := map[string]int64{}
	for _, e := range entries {
		for d, s := range blobSet(t, []synth.Entry{e}) {
			if needs[d] == nil {
				needs[d] = map[string]bool{}
			}
			needs[d][prefix+"/"+e.Repo] = true
			sizes[d] = s
		}
	}
	p := blobPresence{all: map[string]bool{}, any: map[string]bool{}}
	for d, repos := range needs {
		all := true
		for repo := range repos {
			resp, err := http.Head("http://" + host + "/v2/" + repo + "/blobs/" + d)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				p.any[d] = true
			} else {
				all = false
			}
		}
		p.all[d] = all
		if !p.any[d] {
			p.missing += sizes[d]
		}
	}
	return p
}

// TestCrashResumeRegistry kills `airlock image mirror` (registry to
// registry) with SIGKILL at three points of the transfer, then lets it
// finish. The mirror must end complete and intact, the final run must
// upload exactly the bytes of the blobs that were still missing, and a
// further run must move no blob bytes at all.
func TestCrashResumeRegistry(t *testing.T) {
	bin := airlockBinary(t)
	src := regtest.Start(t)
	dst := regtest.Start(t)
	entries := workload(t, src.Host, 47, 12, 256*1024)
	blobs := blobSet(t, entries)
	var unique int64
	for _, s := range blobs {
		unique += s
	}

	srcProxy, err := NewProxy(src.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer srcProxy.Close()
	dstProxy, err := NewProxy(dst.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer dstProxy.Close()
	mapping := writeMapping(t, entries, srcProxy.Host, dstProxy.Host+"/mirror")
	args := []string{"image", "mirror", "-f", mapping, "--report", filepath.Join(t.TempDir(), "errors.txt")}

	// Kill points: after 15%, 45% and 75% of the unique bytes have been
	// uploaded in total (counted across runs, so every run makes progress).
	kills := 0
	for _, frac := range []float64{0.15, 0.45, 0.75} {
		at := int64(frac * float64(unique))
		if dstProxy.Counts().UploadBytes >= at {
			continue
		}
		// The destination proxy only sees uploads, so its byte hook counts
		// uploaded bytes.
		if crashRun(t, bin, dstProxy, at, args...) {
			kills++
		}
		t.Logf("after kill at %.0f%%: %d of %d unique bytes uploaded so far", frac*100, dstProxy.Counts().UploadBytes, unique)
	}
	if kills == 0 {
		t.Fatal("no run was killed: the kill points never triggered, so nothing about resume was tested")
	}

	pres := presenceAtRegistry(t, dst.Host, entries, "mirror")
	before := dstProxy.Counts()
	if crashRun(t, bin, dstProxy, 0, args...) {
		t.Fatal("final run was killed")
	}
	after := dstProxy.Counts()
	// What the final run uploaded, blob by blob (completed uploads only).
	var uploaded, remounted int64
	for d, n := range after.Uploaded {
		n -= before.Uploaded[d]
		switch {
		case n == 0:
			continue
		case n > 1:
			t.Errorf("final run uploaded blob %s (%d bytes) %d times; once is enough", d, blobs[d], n)
		case pres.all[d]:
			t.Errorf("final run uploaded blob %s (%d bytes), which every repository needing it already held", d, blobs[d])
		case pres.any[d]:
			// Held in another repository of the destination: a mount
			// would have moved no bytes. The engine's blob-location cache
			// journals every placement, so only a kill in the instant
			// between an upload's completion and its journal line can
			// cause this; a cost, not a correctness issue.
			remounted += blobs[d]
			t.Logf("final run re-uploaded blob %s (%d bytes) held in another destination repository; a cross-repository mount would have been free", d, blobs[d])
		}
		uploaded += int64(n) * blobs[d]
	}
	if got := after.UploadBytes - before.UploadBytes; got != uploaded {
		t.Errorf("final run sent %d upload bytes but completed uploads of only %d bytes: %d bytes wasted on uploads that did not finish", got, uploaded, got-uploaded)
	}
	if uploaded-remounted != pres.missing {
		t.Errorf("final run uploaded %d bytes of blobs missing everywhere; %d bytes were missing: a resume must upload exactly what is missing", uploaded-remounted, pres.missing)
	}
	t.Logf("final run: %d bytes were missing, uploaded %d (%d of them re-uploads of blobs held in another repository)", pres.missing, uploaded, remounted)
	checkMirrored(t, entries, dst.Host, "mirror")

	// A no-op re-run moves no blob bytes either way.
	srcBefore, dstBefore := srcProxy.Counts(), dstProxy.Counts()
	if crashRun(t, bin, dstProxy, 0, args...) {
		t.Fatal("no-op run was killed")
	}
	srcAfter, dstAfter := srcProxy.Counts(), dstProxy.Counts()
	if n := srcAfter.BlobGets - srcBefore.BlobGets; n != 0 {
		t.Errorf("no-op re-run downloaded %d blobs from the source, want 0", n)
	}
	if n := dstAfter.UploadReqs - dstBefore.UploadReqs; n != 0 {
		t.Errorf("no-op re-run made %d upload requests to the destination, want 0", n)
	}
	t.Logf("%d kills; unique %d bytes; uploaded %d in total (%.2fx); no-op run: %d requests to the destination",
		kills, unique, after.UploadBytes, float64(after.UploadBytes)/float64(unique), dstAfter.Requests-dstBefore.Requests)
}

var hexNameRE = regexp.MustCompile(`^[a-f0-9]{64}$`)

// checkStoreBlobs hashes every blob under its final name in a store and
// fails on any whose content does not match its name; it returns the
// digests present.
func checkStoreBlobs(t *testing.T, dir string) map[string]bool {
	t.Helper()
	present := map[string]bool{}
	ents, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if errors.Is(err, os.ErrNotExist) {
		return present
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !hexNameRE.MatchString(e.Name()) {
			continue // temporary files are allowed; final names must be right
		}
		f, err := os.Open(filepath.Join(dir, "blobs", "sha256", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != e.Name() {
			t.Errorf("store blob %s is corrupt: its content hashes to %s", e.Name(), got)
		}
		present["sha256:"+e.Name()] = true
	}
	return present
}

// TestCrashResumeStore kills a registry-to-disk mirror (file:// store) at
// three points, checking after each kill that no blob under a final name is
// corrupt; the final run must download exactly the missing blobs, and the
// store must then mirror on to a registry intact.
func TestCrashResumeStore(t *testing.T) {
	bin := airlockBinary(t)
	src := regtest.Start(t)
	entries := workload(t, src.Host, 53, 12, 256*1024)
	blobs := blobSet(t, entries)
	var unique int64
	for _, s := range blobs {
		unique += s
	}
	srcProxy, err := NewProxy(src.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer srcProxy.Close()
	store := filepath.Join(t.TempDir(), "store")
	mapping := writeMapping(t, entries, srcProxy.Host, "file://mirror")
	args := []string{"image", "mirror", "--dir", store, "-f", mapping, "--report", filepath.Join(t.TempDir(), "errors.txt")}

	kills := 0
	for _, frac := range []float64{0.15, 0.45, 0.75} {
		at := int64(frac * float64(unique))
		if srcProxy.Counts().BlobGetBytes >= at {
			continue
		}
		if crashRun(t, bin, srcProxy, at, args...) {
			kills++
		}
		present := checkStoreBlobs(t, store)
		t.Logf("after kill at %.0f%%: %d of %d blobs complete in the store", frac*100, len(present), len(blobs))
	}
	if kills == 0 {
		t.Fatal("no run was killed: the kill points never triggered, so nothing about resume was tested")
	}
	present := checkStoreBlobs(t, store)
	var missing int64
	for d, s := range blobs {
		if !present[d] {
			missing += s
		}
	}
	before := srcProxy.Counts()
	if crashRun(t, bin, srcProxy, 0, args...) {
		t.Fatal("final run was killed")
	}
	// At most what is missing (less only if partial downloads were resumed).
	if got := srcProxy.Counts().BlobGetBytes - before.BlobGetBytes; got > missing {
		t.Errorf("final run downloaded %d blob bytes; only %d were missing from the store: a resume must fetch only what is missing", got, missing)
	}
	if present := checkStoreBlobs(t, store); len(present) < len(blobs) {
		t.Errorf("store holds %d blobs after the final run, want at least %d", len(present), len(blobs))
	}

	// The store is usable: disk -> registry, then check every image.
	dst := regtest.Start(t)
	var b strings.Builder
	for _, e := range entries {
		fmt.Fprintf(&b, "file://mirror/%s:%s %s/mirror/%s\n", e.Repo, e.Tag, dst.Host, e.Repo)
	}
	back := filepath.Join(t.TempDir(), "back.txt")
	if err := os.WriteFile(back, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, errOut, err := clitest.Run(t, "image", "mirror", "--from-dir", store, "-f", back, "--report", filepath.Join(t.TempDir(), "e.txt")); err != nil {
		t.Fatalf("disk to registry after crashes: %v\n%s%s", err, out, errOut)
	}
	checkMirrored(t, entries, dst.Host, "mirror")
}

// TestInterruptThenRetryReport sends SIGINT (Ctrl-C) mid-run: airlock must
// stop promptly with a non-zero exit, write a failure report that parses as
// a mapping, and re-running that report must complete the mirror.
func TestInterruptThenRetryReport(t *testing.T) {
	bin := airlockBinary(t)
	src := regtest.Start(t)
	dst := regtest.Start(t)
	entries := workload(t, src.Host, 59, 10, 256*1024)
	unique := uniqueBlobBytes(t, entries)
	dstProxy, err := NewProxy(dst.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer dstProxy.Close()
	mappingFile := writeMapping(t, entries, src.Host, dstProxy.Host+"/mirror")
	report := filepath.Join(t.TempDir(), "mirror-errors.txt")

	cmd := exec.Command(bin, "image", "mirror", "-f", mappingFile, "--report", report)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	var sent time.Time
	dstProxy.OnBytes(func(total int64) {
		if total >= unique/3 {
			once.Do(func() { sent = time.Now(); _ = cmd.Process.Signal(syscall.SIGINT) })
		}
	})
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(40 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("airlock did not finish\n%s", logs.String())
	}
	dstProxy.OnBytes(nil)
	if sent.IsZero() {
		t.Fatalf("the run finished before the interrupt point (err %v); nothing was tested\n%s", err, logs.String())
	}
	if took := time.Since(sent); took > 10*time.Second {
		t.Errorf("airlock took %s to stop after SIGINT", took)
	}
	if err == nil {
		t.Fatalf("an interrupted run exited 0\n%s", logs.String())
	}
	b, rerr := os.ReadFile(report)
	if rerr != nil {
		t.Fatalf("no failure report after an interrupt: %v\n%s", rerr, logs.String())
	}
	if _, perr := mapping.Parse(nil, mapping.Input{Name: report, R: strings.NewReader(string(b))}); perr != nil {
		t.Fatalf("failure report does not parse as a mapping: %v\n%s", perr, b)
	}
	t.Logf("failure report after SIGINT:\n%.600s", b)
	dstProxy.WaitIdle(10 * time.Second)
	out, errOut, err := clitest.Run(t, "image", "mirror", "-f", report, "--report", filepath.Join(t.TempDir(), "again.txt"))
	if err != nil {
		t.Fatalf("re-running the failure report: %v\n%s%s", err, out, errOut)
	}
	checkMirrored(t, entries, dst.Host, "mirror")
}
