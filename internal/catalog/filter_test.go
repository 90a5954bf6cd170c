package catalog

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/operator-framework/operator-registry/alpha/declcfg"

	"github.com/airlock-mirror/airlock/internal/imageset"
)

func loadTestDir(t testing.TB, elem ...string) *Catalog {
	t.Helper()
	c, err := LoadDir(context.Background(), testdata(t, elem...))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// canonical renders a config in a stable form for comparison.
func canonical(t testing.TB, cfg *declcfg.DeclarativeConfig) string {
	t.Helper()
	cp := *cfg
	sortConfig(&cp)
	var buf bytes.Buffer
	if err := declcfg.WriteYAML(cp, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// TestFilterGolden checks Filter against the expected outputs of opm's own
// filtering (operator-registry alpha/action/testdata/index-declcfgs). Each
// case expresses the opm invocation that produced the golden file as an
// operators[] entry:
//   - exp-headsonly: `opm alpha diff latest` = heads of every channel plus
//     their dependencies (foo.v0.3.1 requires bar <0.2.0, which brings
//     bar.v0.1.0 and the alpha upgrade path v0.1.0 -> v0.2.0 -> v1.0.0);
//   - exp-latest: the diff old -> latest, i.e. only the new heads, which is
//     heads-only without dependency resolution (old already had them);
//   - exp-include-pkg / exp-include-channel: heads of everything plus all
//     of baz (its stable channel from 1.0.0), with dependencies.
func TestFilterGolden(t *testing.T) {
	latest := loadTestDir(t, "operator-registry-index-declcfgs", "latest")
	cases := []struct {
		golden string
		op     imageset.Operator
	}{
		{"exp-headsonly", imageset.Operator{}},
		{"exp-latest", imageset.Operator{SkipDependencies: true}},
		{"exp-include-pkg", imageset.Operator{Packages: []imageset.IncludePackage{
			{Name: "bar"}, {Name: "foo"}, {Name: "baz", MinVersion: "1.0.0"}}}},
		{"exp-include-channel", imageset.Operator{Packages: []imageset.IncludePackage{
			{Name: "bar"}, {Name: "foo"}, {Name: "baz", Channels: []imageset.IncludeChannel{{Name: "stable", MinVersion: "1.0.0"}}}}}},
	}
	for _, tc := range cases {
		t.Run(tc.golden, func(t *testing.T) {
			got, rep, err := Filter(context.Background(), latest, tc.op)
			if err != nil {
				t.Fatal(err)
			}
			want := loadTestDir(t, "operator-registry-index-declcfgs", tc.golden)
			if g, w := canonical(t, got.Config), canonical(t, want.Config); g != w {
				t.Errorf("filtered catalog differs from %s:\n%s", tc.golden, lineDiff(g, w))
			}
			t.Logf("report: %+v", rep)
		})
	}
}

// lineDiff shows the first differing lines, enough to debug a golden mismatch.
func lineDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return "line " + itoa(i+1) + ":\n got:  " + gl + "\n want: " + wl
		}
	}
	return "(equal)"
}

func itoa(i int) string {
	var b [20]byte
	n := len(b)
	for {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
		if i == 0 {
			break
		}
	}
	return string(b[n:])
}

func imagesetFull() imageset.Operator { return imageset.Operator{Full: true} }
