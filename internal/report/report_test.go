package report

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlock-mirror/airlock/internal/engine"
	"github.com/airlock-mirror/airlock/internal/mapping"
	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
)

var update = flag.Bool("update", false, "rewrite golden files")

var when = time.Date(2026, 11, 22, 13, 0, 0, 0, time.UTC)

const (
	dgA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	dgB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	dgC = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
)

// sample is a report with every status: copied, skipped, failed (source
// unreadable, one of two destinations), missing.
func sample() *engine.Report {
	return &engine.Report{
		Items: []engine.ItemResult{
			{
				Source: ref.MustParse("quay.io/app/web:1.2"), Kind: plan.KindImage, Origin: plan.Origin{File: "mapping.txt:3"},
				Dests:  []engine.DestResult{{Ref: ref.MustParse("mirror.local:5000/app/web:1.2"), Digest: dgA, Status: engine.StatusCopied}},
				Digest: dgA, Size: 3 << 20, Bytes: 3 << 20, Status: engine.StatusCopied,
			},
			{
				Source: ref.MustParse("quay.io/app/api:2"), Kind: plan.KindImage, Origin: plan.Origin{File: "mapping.txt:4"},
				Dests:  []engine.DestResult{{Ref: ref.MustParse("mirror.local:5000/app/api:2"), Digest: dgB, Status: engine.StatusSkipped}},
				Digest: dgB, Size: 1500, Status: engine.StatusSkipped,
			},
			{
				Source: ref.MustParse("registry.redhat.io/ubi9/ubi@" + dgC), Kind: plan.KindRelated,
				Origin: plan.Origin{Catalog: "redhat-operator-index:v4.18", Packages: []string{"foo-operator"}, Bundles: []string{"foo.v1.2.3"}},
				Dests: []engine.DestResult{
					{Ref: ref.MustParse("mirror.local:5000/ubi9/ubi:sha256-" + strings.Repeat("c", 64)), Status: engine.StatusFailed, Error: "unauthorized"},
				},
				Status: engine.StatusFailed,
				Err:    errors.New("reading registry.redhat.io/ubi9/ubi: GET https://registry.redhat.io/v2/ubi9/ubi/manifests/sha256:ccc: 401 unauthorized:\n authentication required"),
			},
			{
				Source: ref.MustParse("quay.io/app/two:1"), Kind: plan.KindImage, Origin: plan.Origin{File: "mapping.txt:6"},
				Dests: []engine.DestResult{
					{Ref: ref.MustParse("mirror.local:5000/app/two:1"), Digest: dgA, Status: engine.StatusCopied},
					{Ref: ref.MustParse("file://backup/app/two:1"), Status: engine.StatusFailed, Error: "no space left on device"},
				},
				Digest: dgA, Status: engine.StatusFailed, Err: errors.New("writing file://backup/app/two:1: no space left on device"),
			},
			{
				Source: ref.MustParse("quay.io/app/gone:0.1"), Kind: plan.KindImage, Origin: plan.Origin{File: "mapping.txt:7"},
				Dests:  []engine.DestResult{{Ref: ref.MustParse("mirror.local:5000/app/gone:0.1"), Status: engine.StatusMissing}},
				Status: engine.StatusMissing, Err: errors.New("manifest unknown"),
			},
		},
		Stats: engine.Stats{Images: 5, ImagesCopied: 1, ImagesSkipped: 1, ImagesFailed: 2, ImagesMissing: 1,
			Manifests: 2, BlobsCopied: 7, BlobsMounted: 2, BlobsSkipped: 4, Bytes: 3 << 20, Duration: 1500 * time.Millisecond},
	}
}

func TestSummaryGolden(t *testing.T) {
	var b bytes.Buffer
	Summary(&b, sample())
	golden(t, "testdata/summary.golden", b.Bytes())
}

func TestFailuresGoldenAndReRunnable(t *testing.T) {
	var b bytes.Buffer
	if err := Failures(&b, sample(), when); err != nil {
		t.Fatal(err)
	}
	golden(t, "testdata/failures.golden", b.Bytes())

	// The failure report is a mapping file: it parses, and names exactly
	// the failed images and their unwritten destinations.
	ms, err := mapping.Parse(nil, mapping.Input{Name: "mirror-errors.txt", R: bytes.NewReader(b.Bytes())})
	if err != nil {
		t.Fatalf("failure report does not parse as a mapping: %v", err)
	}
	var got []string
	for _, p := range mapping.Pairs(ms) {
		got = append(got, p.Source.String()+" "+p.Dest.String())
	}
	want := []string{
		"quay.io/app/two:1 file://backup/app/two:1",
		"registry.redhat.io/ubi9/ubi@" + dgC + " mirror.local:5000/ubi9/ubi:sha256-" + strings.Repeat("c", 64),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("failure report re-runs\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestJSONGolden(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, NewJSON(sample(), false, "mirror-errors.txt")); err != nil {
		t.Fatal(err)
	}
	golden(t, "testdata/report.golden.json", b.Bytes())
	if !strings.Contains(b.String(), `"error": "reading registry.redhat.io/ubi9/ubi`) {
		t.Error("JSON report lacks the failed item's error text")
	}
}

func TestDryRunGolden(t *testing.T) {
	r := &engine.Report{Items: []engine.ItemResult{
		{Source: ref.MustParse("quay.io/app/web:1.2"), Digest: dgA, Size: 5 << 20, Status: engine.StatusPlanned,
			Dests: []engine.DestResult{{Ref: ref.MustParse("mirror.local:5000/app/web:1.2"), Digest: dgA, Status: engine.StatusPlanned},
				{Ref: ref.MustParse("mirror.local:5000/backup/web:1.2"), Digest: dgA, Status: engine.StatusSkipped}}},
		{Source: ref.MustParse("quay.io/app/multi:3"), Digest: dgB, Size: 700 << 10, Status: engine.StatusPlanned,
			Dests: []engine.DestResult{{Ref: ref.MustParse("mirror.local:5000/app/multi:3"), Digest: dgC, Status: engine.StatusPlanned}}},
		{Source: ref.MustParse("quay.io/app/gone:1"), Status: engine.StatusFailed, Err: errors.New("manifest unknown")},
	}}
	var b bytes.Buffer
	DryRun(&b, r)
	golden(t, "testdata/dryrun.golden", b.Bytes())
}

func TestVerificationGolden(t *testing.T) {
	checks := []Check{
		{Source: "quay.io/app/web:1.2", Dest: "mirror.local:5000/app/web:1.2", Pos: "mapping.txt:1", Expected: dgA, Actual: dgA, Status: CheckOK},
		{Source: "quay.io/app/api@" + dgB, Dest: "mirror.local:5000/app/api:sha256-" + strings.Repeat("b", 64), Pos: "mapping.txt:2", Expected: dgB, Status: CheckMissing},
		{Source: "quay.io/app/x:1", Dest: "mirror.local:5000/app/x:1", Pos: "mapping.txt:3", Expected: dgA, Actual: dgC, Status: CheckMismatch},
		{Source: "quay.io/app/y:1", Dest: "mirror.local:5000/app/y:1", Pos: "mapping.txt:4", Status: CheckError, Error: "resolving mirror.local:5000/app/y:1: 401\nunauthorized"},
		{Source: "quay.io/app/z:1", Dest: "mirror.local:5000/app/z:1", Pos: "mapping.txt:5", Expected: dgB, Actual: dgB, Status: CheckIncomplete, Error: "1 of 2 child manifest(s) missing: " + dgC + " (linux/arm64)"},
	}
	var b bytes.Buffer
	Verification(&b, checks, true)
	golden(t, "testdata/verify.golden", b.Bytes())
	j := NewVerifyJSON(checks)
	if j.OK || j.Failed != 4 || j.Total != 5 {
		t.Errorf("NewVerifyJSON = ok %v, failed %d of %d; want false, 4 of 5", j.OK, j.Failed, j.Total)
	}
}

func TestWriteFailuresAtomicAndOnlyOnFailure(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mirror-errors.txt")
	if err := os.WriteFile(path, []byte("previous report\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ok := &engine.Report{Items: []engine.ItemResult{{Source: ref.MustParse("quay.io/a/b:1"), Status: engine.StatusCopied}}}
	written, err := WriteFailures(path, ok, when)
	if err != nil || written {
		t.Fatalf("WriteFailures(no failures) = %v, %v; want false, nil", written, err)
	}
	if b, _ := os.ReadFile(path); string(b) != "previous report\n" {
		t.Fatalf("a run without failures changed the existing report: %q", b)
	}
	written, err = WriteFailures(path, sample(), when)
	if err != nil || !written {
		t.Fatalf("WriteFailures = %v, %v", written, err)
	}
	b, err := os.ReadFile(path)
	if err != nil || !strings.HasPrefix(string(b), "# airlock: 2 image(s) failed") {
		t.Fatalf("report = %q, %v", b, err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("directory holds %d entries after the write, want only the report (no temp files left)", len(ents))
	}
	// An unwritable place (beneath a regular file) is an error naming the
	// file, not a panic; a missing directory is simply created.
	if _, err := WriteFailures(filepath.Join(path, "sub", "r.txt"), sample(), when); err == nil || !strings.Contains(err.Error(), "r.txt") {
		t.Fatalf("WriteFailures beneath a regular file: %v", err)
	}
	if _, err := WriteFailures(filepath.Join(dir, "new", "r.txt"), sample(), when); err != nil {
		t.Fatalf("WriteFailures into a missing directory: %v", err)
	}
}

func TestInterruptedItemSaysSo(t *testing.T) {
	r := &engine.Report{Items: []engine.ItemResult{{
		Source: ref.MustParse("quay.io/a/b:1"), Status: engine.StatusFailed,
		Dests: []engine.DestResult{{Ref: ref.MustParse("reg.local/a/b:1"), Status: engine.StatusFailed}},
		Err:   fmt.Errorf("copying quay.io/a/b:1: %w", context.Canceled),
	}}}
	var b bytes.Buffer
	if err := Failures(&b, r, when); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "# error: interrupted before it finished; re-run to continue") {
		t.Errorf("failure report for an interrupted image:\n%s", b.String())
	}
}

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 30: "5.0 GiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (go test -update creates it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
