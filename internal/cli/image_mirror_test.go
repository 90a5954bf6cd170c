package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

// runAirlock runs the command tree in-process with args and stdin.
func imRun(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := NewRootCommand(IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut})
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = root.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

// pushImage pushes a small deterministic image to host/repo:tag and returns
// its digest.
func imPush(t *testing.T, seed int64, reference string) string {
	t.Helper()
	img, err := synth.Image(seed, synth.WithLayers(2), synth.WithLayerSize(2048))
	if err != nil {
		t.Fatal(err)
	}
	d, err := synth.Push(img, reference)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// catalog lists the repositories of a registry.
func imCatalog(t *testing.T, reg *regtest.Registry) []string {
	t.Helper()
	resp, err := http.Get(reg.URL + "/v2/_catalog")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c struct {
		Repositories []string `json:"repositories"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatal(err)
	}
	return c.Repositories
}

func imWriteFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// A mapping with bad lines copies nothing, even its good lines, and names
// every bad line.
func TestImageMirrorBadMappingCopiesNothing(t *testing.T) {
	src := regtest.Start(t)
	dst := regtest.Start(t)
	imPush(t, 1, src.Ref("app/ok:1"))
	m := imWriteFile(t, "mapping.txt", strings.Join([]string{
		src.Ref("app/ok:1") + " " + dst.Ref("app/ok"),
		src.Ref("app/notag") + " " + dst.Ref("app/notag"),
		src.Ref("app/ok:1") + "=" + dst.Ref("app/x@sha256:"+strings.Repeat("0", 64)),
	}, "\n")+"\n")
	_, _, err := imRun(t, "", "image", "mirror", "-f", m)
	if err == nil {
		t.Fatal("a mapping with bad lines was accepted")
	}
	for _, want := range []string{"mapping.txt:2", "has neither tag nor digest", "mapping.txt:3", "names a digest", "nothing was copied"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	if repos := imCatalog(t, dst); len(repos) != 0 {
		t.Fatalf("destination has repositories %v after a rejected mapping; nothing may be copied", repos)
	}
}

// A missing source fails only its own image: the others are copied, the
// command exits non-zero naming it, and the failure report re-runs it.
func TestImageMirrorFailureReportAndRetry(t *testing.T) {
	src := regtest.Start(t)
	dst := regtest.Start(t)
	dA := imPush(t, 2, src.Ref("app/a:1"))
	m := imWriteFile(t, "mapping.txt", "# two images, one not there yet\n"+
		src.Ref("app/a:1")+" "+dst.Ref("mirror/a")+"\n"+
		src.Ref("app/b:1")+" "+dst.Ref("mirror/b")+"\n")
	report := filepath.Join(t.TempDir(), "mirror-errors.txt")

	out, errOut, err := imRun(t, "", "image", "mirror", "-f", m, "--report", report)
	if err == nil {
		t.Fatalf("mirror with a missing source succeeded:\n%s%s", out, errOut)
	}
	if !strings.Contains(err.Error(), "1 of 2 image(s) failed") || !strings.Contains(err.Error(), "-f "+report) {
		t.Errorf("error = %v; want the count and the retry command", err)
	}
	if !strings.Contains(out, "FAILED:  "+src.Ref("app/b:1")+" ("+m+":3)") {
		t.Errorf("summary does not name the failed image and its line:\n%s", out)
	}
	rep, rerr := os.ReadFile(report)
	if rerr != nil {
		t.Fatalf("failure report not written: %v", rerr)
	}
	if !strings.Contains(string(rep), "\n"+src.Ref("app/b:1")+" "+dst.Ref("mirror/b:1")+"\n") || strings.Contains(string(rep), "app/a") {
		t.Errorf("failure report should list exactly the failed image:\n%s", rep)
	}
	// The good image was copied despite the failure.
	if _, _, err := imRun(t, "", "verify", src.Ref("app/a:1")+"="+dst.Ref("mirror/a")); err != nil {
		t.Errorf("the image that did not fail was not mirrored: %v", err)
	}

	// --skip-missing: the same run succeeds and writes no report.
	report2 := filepath.Join(t.TempDir(), "skip.txt")
	if out, errOut, err := imRun(t, "", "image", "mirror", "-f", m, "--skip-missing", "--report", report2); err != nil {
		t.Fatalf("--skip-missing still failed: %v\n%s%s", err, out, errOut)
	} else if !strings.Contains(out, "missing: "+src.Ref("app/b:1")) {
		t.Errorf("--skip-missing summary does not list the missing image:\n%s", out)
	}
	if _, err := os.Stat(report2); !os.IsNotExist(err) {
		t.Errorf("a run without failures wrote a failure report (stat: %v)", err)
	}

	// Fix the cause, re-run the report: only the failed image is copied.
	dB := imPush(t, 3, src.Ref("app/b:1"))
	out, errOut, err = imRun(t, "", "image", "mirror", "-f", report, "-o", "json", "--report", filepath.Join(t.TempDir(), "r.txt"))
	if err != nil {
		t.Fatalf("re-running the failure report: %v\n%s%s", err, out, errOut)
	}
	var j struct {
		OK    bool `json:"ok"`
		Items []struct {
			Digest string `json:"digest"`
			Status string `json:"status"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatalf("-o json output is not JSON: %v\n%s", err, out)
	}
	if !j.OK || len(j.Items) != 1 || j.Items[0].Digest != dB || j.Items[0].Status != "copied" {
		t.Errorf("re-run JSON = %+v; want one copied item with digest %s", j, dB)
	}
	vout, _, err := imRun(t, "", "verify", "-f", m, "-v")
	if err != nil || !strings.Contains(vout, dA) || !strings.Contains(vout, dB) {
		t.Errorf("verify after retry: %v\n%s", err, vout)
	}
}

// --dry-run resolves and prints sizes but writes nothing.
func TestImageMirrorDryRun(t *testing.T) {
	src := regtest.Start(t)
	dst := regtest.Start(t)
	d := imPush(t, 4, src.Ref("app/c:2"))
	out, errOut, err := imRun(t, "", "image", "mirror", "--dry-run", src.Ref("app/c:2"), dst.Ref("app/c"))
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, src.Ref("app/c:2")+"  "+d) || !strings.Contains(out, "-> "+dst.Ref("app/c:2")) || !strings.Contains(out, "nothing was copied") {
		t.Errorf("dry-run listing lacks the source digest or destination:\n%s", out)
	}
	if repos := imCatalog(t, dst); len(repos) != 0 {
		t.Fatalf("dry run wrote %v", repos)
	}
}

// Mapping from stdin, several destinations on one line, tag inherited.
func TestImageMirrorStdinSeveralDestinations(t *testing.T) {
	src := regtest.Start(t)
	dst := regtest.Start(t)
	d := imPush(t, 5, src.Ref("app/d:7"))
	line := src.Ref("app/d:7") + " " + dst.Ref("one/d") + " " + dst.Ref("two/d:pinned") + "\n"
	if out, errOut, err := imRun(t, line, "image", "mirror", "-f", "-"); err != nil {
		t.Fatalf("%v\n%s%s", err, out, errOut)
	}
	for _, r := range []string{dst.Ref("one/d:7"), dst.Ref("two/d:pinned")} {
		vout, _, err := imRun(t, "", "verify", "-v", src.Ref("app/d:7")+"="+r)
		if err != nil || !strings.Contains(vout, d) {
			t.Errorf("%s: %v\n%s", r, err, vout)
		}
	}
}

func TestImageMirrorValidate(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"quay.io/a/b:1", "file://x/b", "--dir", "/tmp/a", "--from-dir", "/tmp/b", "file://y/c:1=quay.io/y/c"}, ""}, // pairs and plain args mixed: rejected by the parser
		{[]string{"file://a/b:1=file://c/d", "--dir", "/tmp/a", "--from-dir", "/tmp/b"}, "one store per run"},
		{[]string{"quay.io/a/b:1", "reg.local/b", "-o", "yaml"}, "want text or json"},
		{[]string{"quay.io/a/b:1", "reg.local/b", "--filter-by-os", "linux/(amd64"}, "not a regular expression"},
		{[]string{"quay.io/a/b:1", "reg.local/b", "--retry-times", "-1"}, "must be 0 or more"},
		{[]string{"-f", "/nonexistent/mapping.txt"}, "/nonexistent/mapping.txt"},
		// oc's flag names reach the same settings: a missing auth file is an error.
		{[]string{"quay.io/a/b:1", "reg.local/b", "--registry-config", "/nonexistent/auth.json"}, "/nonexistent/auth.json"},
		{[]string{"quay.io/a/b:1", "reg.local/b", "--certificate-authority", "/nonexistent/ca.crt"}, "/nonexistent/ca.crt"},
		{[]string{}, "no mappings given"},
	}
	for _, tc := range tests {
		_, _, err := imRun(t, "", append([]string{"image", "mirror"}, tc.args...)...)
		if err == nil {
			t.Errorf("image mirror %v: accepted, want an error", tc.args)
			continue
		}
		if tc.want != "" && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("image mirror %v: error %q, want it to contain %q", tc.args, err, tc.want)
		}
	}
}

// Registry -> file:// store -> registry with --dir / --from-dir keeps the digest.
func TestImageMirrorThroughStore(t *testing.T) {
	src := regtest.Start(t)
	dst := regtest.Start(t)
	idx, err := synth.Index(6, []string{"linux/amd64", "linux/arm64"}, synth.WithLayerSize(1024))
	if err != nil {
		t.Fatal(err)
	}
	d, err := synth.Push(idx, src.Ref("app/multi:1"))
	if err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(t.TempDir(), "store")
	if out, errOut, err := imRun(t, "", "image", "mirror", "--dir", store, src.Ref("app/multi:1"), "file://app/multi"); err != nil {
		t.Fatalf("to disk: %v\n%s%s", err, out, errOut)
	}
	if out, errOut, err := imRun(t, "", "image", "mirror", "--from-dir", store, "file://app/multi:1", dst.Ref("app/multi")); err != nil {
		t.Fatalf("from disk: %v\n%s%s", err, out, errOut)
	}
	vout, _, err := imRun(t, "", "verify", "-v", "--dir", store, "file://app/multi:1="+dst.Ref("app/multi"))
	if err != nil || !strings.Contains(vout, d) {
		t.Fatalf("verify store -> registry: %v\n%s", err, vout)
	}
}
