package mapping

import (
	"reflect"
	"strings"
	"testing"

	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
)

// TestFormatRoundTrip: what Format writes, Parse reads back as the same
// copies (sources and destinations), and the output is sorted text.
func TestFormatRoundTrip(t *testing.T) {
	const d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	var p plan.Plan
	p.Add(plan.Item{Source: ref.MustParse("quay.io/b/c@" + d), Dests: []ref.Ref{ref.MustParse("mirror:5000/b/c:sha256-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef").WithDigest(d)}})
	p.Add(plan.Item{Source: ref.MustParse("quay.io/a/x:v1"), Dests: []ref.Ref{ref.MustParse("mirror:5000/a/x:v1"), ref.MustParse("file://a/x:v1")}})
	got := string(Format(p))
	want := "quay.io/a/x:v1=file://a/x:v1\n" +
		"quay.io/a/x:v1=mirror:5000/a/x:v1\n" +
		"quay.io/b/c@" + d + "=mirror:5000/b/c:sha256-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"
	if got != want {
		t.Fatalf("Format:\n%s\nwant:\n%s", got, want)
	}
	ms, err := Parse(nil, Input{Name: "mapping.txt", R: strings.NewReader(got)})
	if err != nil {
		t.Fatal(err)
	}
	back := ToPlan(ms)
	pairs := func(p plan.Plan) map[string]bool {
		m := map[string]bool{}
		for _, it := range p.Items {
			for _, dst := range it.Dests {
				dst.Digest = ""
				m[it.Source.String()+"="+dst.String()] = true
			}
		}
		return m
	}
	if !reflect.DeepEqual(pairs(back), pairs(p)) {
		t.Fatalf("round trip: %v, want %v", pairs(back), pairs(p))
	}
}
