package mapping

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

const (
	dgA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	dgB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// pairsOf renders mappings as "SRC -> DST" lines for compact expectations.
func pairsOf(ms []Mapping) []string {
	var out []string
	for _, m := range ms {
		for _, d := range m.Dests {
			out = append(out, m.Source.String()+" -> "+d.String())
		}
	}
	return out
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    []string
		wantErr string
	}{
		{
			name: "src and several dests, tag inherited",
			args: []string{"quay.io/a/b:1", "reg.local/x/b", "reg.local/y/b:two"},
			want: []string{"quay.io/a/b:1 -> reg.local/x/b:1", "quay.io/a/b:1 -> reg.local/y/b:two"},
		},
		{
			name: "pairs",
			args: []string{"quay.io/a/b:1=reg.local/x/b", "quay.io/a/c:2=reg.local/x/c:3"},
			want: []string{"quay.io/a/b:1 -> reg.local/x/b:1", "quay.io/a/c:2 -> reg.local/x/c:3"},
		},
		{
			name: "digest-only source gets the digest tag",
			args: []string{"quay.io/a/b@" + dgA, "reg.local/x/b"},
			want: []string{"quay.io/a/b@" + dgA + " -> reg.local/x/b:sha256-" + strings.Repeat("a", 64)},
		},
		{
			name: "tag and digest source: the tag is inherited, the digest pins the source",
			args: []string{"quay.io/a/b:v1@" + dgA, "reg.local/x/b"},
			want: []string{"quay.io/a/b:v1@" + dgA + " -> reg.local/x/b:v1"},
		},
		{
			name: "docker hub short name is normalised",
			args: []string{"busybox:1.36", "docker://reg.local/lib/busybox"},
			want: []string{"docker.io/library/busybox:1.36 -> reg.local/lib/busybox:1.36"},
		},
		{
			name: "file:// on either side",
			args: []string{"file://ns/app:1=reg.local/ns/app", "quay.io/ns/app:2=file://ns/app"},
			want: []string{"file://ns/app:1 -> reg.local/ns/app:1", "quay.io/ns/app:2 -> file://ns/app:2"},
		},
		{
			name: "same image in another transport is not the same image",
			args: []string{"file://reg.local/a:1", "reg.local/a:1"},
			want: []string{"file://reg.local/a:1 -> reg.local/a:1"},
		},
		{name: "source without tag", args: []string{"quay.io/a/b", "reg.local/b"}, wantErr: "argument 1: source: \"quay.io/a/b\" has neither tag nor digest"},
		{name: "destination with digest", args: []string{"quay.io/a/b:1", "reg.local/b@" + dgB}, wantErr: "names a digest"},
		{name: "no destination", args: []string{"quay.io/a/b:1"}, wantErr: "has no destination"},
		{name: "mixed forms", args: []string{"quay.io/a/b:1=reg.local/b", "reg.local/c"}, wantErr: "mixes SRC=DST pairs"},
		{name: "same as source", args: []string{"quay.io/a/b:1", "quay.io/a/b"}, wantErr: "source and destination are the same image"},
		{name: "destination twice from two sources", args: []string{"quay.io/a/b:1=reg.local/b:x", "quay.io/a/c:1=reg.local/b:x"}, wantErr: "argument 2: destination reg.local/b:x is already the target of quay.io/a/b:1 at argument 1"},
		{name: "wildcard", args: []string{"quay.io/a/b:*", "reg.local/b"}, wantErr: "tag wildcards are not supported"},
		{name: "empty destination in pair", args: []string{"quay.io/a/b:1="}, wantErr: "destination: empty reference"},
		{name: "bad transport", args: []string{"http://quay.io/a/b:1", "reg.local/b"}, wantErr: "unknown transport"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := Parse(tc.args)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("Parse(%q) = %v, want error containing %q", tc.args, pairsOf(ms), tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Parse(%q) error = %q, want it to contain %q", tc.args, err, tc.wantErr)
				}
				var es Errors
				if !errors.As(err, &es) {
					t.Fatalf("error is %T, want mapping.Errors", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.args, err)
			}
			got := pairsOf(ms)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("Parse(%q):\n got %q\nwant %q", tc.args, got, tc.want)
			}
		})
	}
}

func TestParseNothing(t *testing.T) {
	_, err := Parse(nil, Input{Name: "empty.txt", R: strings.NewReader("# only a comment\n\n")})
	if err == nil || !strings.Contains(err.Error(), "no mappings given") {
		t.Fatalf("want 'no mappings given', got %v", err)
	}
}

func TestDigestTag(t *testing.T) {
	if got, want := DigestTag(dgA), "sha256-"+strings.Repeat("a", 64); got != want {
		t.Fatalf("DigestTag = %q, want %q", got, want)
	}
	long := "sha512:" + strings.Repeat("c", 128)
	if got := DigestTag(long); len(got) != 128 || !strings.HasPrefix(got, "sha512-ccc") {
		t.Fatalf("DigestTag(sha512) = %q (len %d), want 128 chars starting sha512-", got, len(got))
	}
}

// TestBadFileReportsEveryLine checks that a broken mapping yields one error
// per broken line, each with file:line, and no mappings at all — even the
// good last line is not returned, so nothing is copied.
func TestBadFileReportsEveryLine(t *testing.T) {
	f, err := os.Open("testdata/bad.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ms, err := Parse(nil, Input{Name: "bad.txt", R: f})
	if ms != nil {
		t.Fatalf("got %d mappings from a broken file, want none", len(ms))
	}
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("error %v is %T, want mapping.Errors", err, err)
	}
	// Lines 2..12 are each broken once; line 13 is fine.
	var lines []string
	for _, e := range es {
		lines = append(lines, e.Pos)
	}
	want := "bad.txt:2 bad.txt:3 bad.txt:4 bad.txt:5 bad.txt:6 bad.txt:7 bad.txt:8 bad.txt:10 bad.txt:11 bad.txt:12"
	if strings.Join(lines, " ") != want {
		t.Errorf("error positions:\n got %s\nwant %s", strings.Join(lines, " "), want)
	}
	golden(t, "testdata/bad.golden", []byte(err.Error()+"\n"))
}

// TestGoodFileGolden parses a mapping with every accepted form and compares
// the resulting plan, as JSON, with the golden file.
func TestGoodFileGolden(t *testing.T) {
	f, err := os.Open("testdata/good.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ms, err := Parse([]string{"quay.io/extra/cli:9", "reg.local/extra/cli"}, Input{Name: "good.txt", R: f})
	if err != nil {
		t.Fatal(err)
	}
	p := ToPlan(ms)
	if err := p.Validate(); err != nil {
		t.Fatalf("plan from good.txt does not validate: %v", err)
	}
	out, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "testdata/good.plan.golden.json", append(out, '\n'))
	// quay.io/app/web:1.2 appears on three lines; it is one plan item
	// with three destinations (the repeated pair counted once).
	if n := len(p.Items[1].Dests); p.Items[1].Source.String() != "quay.io/app/web:1.2" || n != 3 {
		t.Errorf("item 2 = %s with %d destinations, want quay.io/app/web:1.2 with 3", p.Items[1].Source, n)
	}
}

func TestPairsSortedByDestination(t *testing.T) {
	ms, err := Parse([]string{"quay.io/a/b:1", "reg.local/z/b", "reg.local/a/b"})
	if err != nil {
		t.Fatal(err)
	}
	ps := Pairs(ms)
	if len(ps) != 2 || ps[0].Dest.String() != "reg.local/a/b:1" || ps[1].Dest.String() != "reg.local/z/b:1" {
		t.Fatalf("Pairs = %+v", ps)
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run go test -update to create it): %v", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from output (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", filepath.Base(path), got, want)
	}
}

// TestParsesCatalogMirrorMapping reads the mapping.txt the catalog mirror
// writes (golden file of internal/catalogmirror, from the real
// community-operators catalog): verify and re-runs depend on it parsing.
func TestParsesCatalogMirrorMapping(t *testing.T) {
	f, err := os.Open("../catalogmirror/testdata/community-mapping.txt")
	if err != nil {
		t.Fatalf("catalog mirror golden mapping: %v", err)
	}
	defer f.Close()
	ms, err := Parse(nil, Input{Name: "community-mapping.txt", R: f})
	if err != nil {
		t.Fatal(err)
	}
	// One pair per line of the file (17, none repeated).
	if n := len(Pairs(ms)); n != 17 {
		t.Fatalf("parsed %d pairs from the catalog mirror mapping, want 17", n)
	}
}
