package ocicompat_test

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
)

// The OCI distribution-spec conformance suite, pinned. The module has no
// tagged release under its own path, so this is the pseudo-version the Go
// module proxy serves for the spec repository's main branch; it is the
// v1.1 suite (OCI_VERSION=1.1 profile). hack/conformance.sh uses the same.
const (
	conformanceModule  = "github.com/opencontainers/distribution-spec/conformance"
	conformanceVersion = "v0.0.0-20260831232431-97274622c111"
	// The suite runs ~850 cases against a full-featured registry; far fewer
	// means it did not really run (wrong config, early abort).
	minConformanceCases = 800
)

// TestConformance runs the real OCI distribution-spec conformance suite
// (1.1 profile: pull, push, content discovery, content management, every
// data kind including sha512 and non-distributable layers) against the
// in-process airlock registry, as `airlock registry serve` builds it (the
// registry package wires this layer in), and fails on every failed case. It needs the
// Go module proxy to fetch the suite (CI has it); without it the test fails
// and says so, it does not skip.
func TestConformance(t *testing.T) {
	bin := buildConformanceSuite(t)
	t.Run("https+htpasswd", func(t *testing.T) {
		reg := regtest.Start(t, regtest.WithTLS(), regtest.WithAuth("conformance", "Conf0rmance!"))
		runConformance(t, bin, reg)
	})
	t.Run("http+anonymous", func(t *testing.T) {
		reg := regtest.Start(t)
		runConformance(t, bin, reg)
	})
}

// buildConformanceSuite downloads the pinned suite module through the Go
// module proxy and compiles it outside airlock's module (its dependencies
// must not leak into airlock's go.mod).
func buildConformanceSuite(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the conformance suite is built with the go tool, which is not on PATH: %v", err)
	}
	work := t.TempDir()
	env := append(os.Environ(), "GOFLAGS=-mod=mod", "CGO_ENABLED=0", "GOWORK=off")

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dl := exec.CommandContext(ctx, goBin, "mod", "download", "-json", conformanceModule+"@"+conformanceVersion)
	dl.Dir = work // outside airlock's module: no go.mod here
	dl.Env = env
	out, err := dl.Output()
	var info struct{ Dir, Error string }
	_ = json.Unmarshal(out, &info)
	if err != nil || info.Dir == "" {
		t.Fatalf("cannot download the OCI conformance suite %s@%s (needs the Go module proxy, GOPROXY=%s): %v %s %s",
			conformanceModule, conformanceVersion, os.Getenv("GOPROXY"), err, info.Error, stderrOf(err))
	}

	// The module cache is read-only; build from a writable copy so go can
	// record go.sum entries of the suite's own dependencies.
	src := filepath.Join(work, "suite")
	if err := os.CopyFS(src, os.DirFS(info.Dir)); err != nil {
		t.Fatalf("copying the conformance suite from %s: %v", info.Dir, err)
	}
	_ = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err == nil {
			mode := os.FileMode(0o644)
			if d.IsDir() {
				mode = 0o755
			}
			_ = os.Chmod(p, mode)
		}
		return nil
	})
	bin := filepath.Join(work, "conformance")
	build := exec.CommandContext(ctx, goBin, "build", "-o", bin, ".")
	build.Dir = src
	build.Env = env
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the OCI conformance suite from %s: %v\n%s", src, err, out)
	}
	return bin
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

// junit is the part of the suite's junit.xml report the test reads.
type junit struct {
	Tests    int `xml:"tests,attr"`
	Failures int `xml:"failures,attr"`
	Skipped  int `xml:"skipped,attr"`
	Disabled int `xml:"disabled,attr"`
	Suites   []struct {
		Cases []struct {
			Name   string `xml:"name,attr"`
			Status string `xml:"status,attr"` // passed, skipped, failure, error
			// The suite writes the reason of a failure or skip here (the
			// request/response transcript goes to system-err).
			SystemOut string `xml:"system-out"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// runConformance runs the suite binary against reg and reports every
// failed case as a test error.
func runConformance(t *testing.T, bin string, reg *regtest.Registry) {
	t.Helper()
	results := t.TempDir()
	tlsMode := "disabled"
	var extraEnv []string
	if reg.TLS {
		// The suite has no CA option (and its "insecure" mode still
		// verifies); Go reads extra roots from SSL_CERT_FILE.
		tlsMode = "enabled"
		extraEnv = append(extraEnv, "SSL_CERT_FILE="+reg.CAFile)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Dir = results
	cmd.Env = append(os.Environ(),
		"OCI_REGISTRY="+reg.Host,
		"OCI_TLS="+tlsMode,
		"OCI_USERNAME="+reg.Username,
		"OCI_PASSWORD="+reg.Password,
		"OCI_VERSION=1.1",
		"OCI_RESULTS_DIR="+results,
		"OCI_REPO1=conformance/repo1",
		"OCI_REPO2=conformance/repo2",
		"OCI_LOG=error",
		// Optional in the spec and off in the suite's defaults; distribution
		// supports cancelling an upload, so test it too.
		"OCI_API_BLOBS_UPLOAD_CANCEL=true",
	)
	cmd.Env = append(cmd.Env, extraEnv...)
	// cmd.Dir is the empty results directory, so no stray
	// oci-conformance.yaml (the suite's default config file) applies.
	out, runErr := cmd.CombinedOutput()

	raw, err := os.ReadFile(filepath.Join(results, "junit.xml"))
	if err != nil {
		t.Fatalf("the conformance suite wrote no junit.xml (%v); run error %v, output:\n%s", err, runErr, out)
	}
	var rep junit
	if err := xml.Unmarshal(raw, &rep); err != nil {
		t.Fatalf("parsing the suite's junit.xml: %v", err)
	}
	t.Logf("OCI conformance against %s (%s): %d cases, %d failed, %d skipped, %d disabled", reg.URL, tlsMode, rep.Tests, rep.Failures, rep.Skipped, rep.Disabled)
	var failed, skipped []string
	for _, s := range rep.Suites {
		for _, c := range s.Cases {
			switch c.Status {
			case "failure", "error":
				failed = append(failed, fmt.Sprintf("%s: %s", c.Name, strings.TrimSpace(c.SystemOut)))
			case "skipped":
				skipped = append(skipped, fmt.Sprintf("%s: %s", c.Name, strings.TrimSpace(c.SystemOut)))
			}
		}
	}
	for _, s := range skipped {
		t.Logf("skipped (optional or disabled in the 1.1 profile): %s", s)
	}
	for _, f := range failed {
		t.Errorf("conformance case failed: %s", f)
	}
	if rep.Tests < minConformanceCases {
		t.Errorf("the suite ran only %d cases (want at least %d): it did not test the registry fully; output:\n%s", rep.Tests, minConformanceCases, out)
	}
	if rep.Failures != 0 && len(failed) == 0 {
		t.Errorf("the suite reports %d failures that the test could not attribute; output:\n%s", rep.Failures, out)
	}
	if runErr != nil && rep.Failures == 0 {
		t.Errorf("the suite exited with %v despite no failed case; output:\n%s", runErr, out)
	}
}

// TestConformanceScriptPinsSameSuite keeps hack/conformance.sh (run by
// hand) and TestConformance on the same suite version.
func TestConformanceScriptPinsSameSuite(t *testing.T) {
	script, err := os.ReadFile(filepath.Join("..", "..", "..", "hack", "conformance.sh"))
	if err != nil {
		t.Fatalf("reading hack/conformance.sh: %v", err)
	}
	for _, want := range []string{"SUITE_MODULE=" + conformanceModule + "\n", "SUITE_VERSION=" + conformanceVersion + "\n"} {
		if !strings.Contains(string(script), want) {
			t.Errorf("hack/conformance.sh does not pin %q; update it and conformanceVersion together", strings.TrimSpace(want))
		}
	}
}
