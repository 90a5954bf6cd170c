package mapping

import (
	"bytes"
	"sort"

	"github.com/airlock-mirror/airlock/internal/plan"
)

// Format renders a plan as oc's mapping.txt: one "source=destination" line
// per copy, sorted by source; a destination with a tag is written without
// its digest (so `oc image mirror -f` and `airlock image mirror -f` push
// the tag), and docker references without transport prefix, as oc writes
// them. Parse reads the result back into the same copies, and `airlock
// verify -f` checks a mirror against it.
func Format(p plan.Plan) []byte {
	var lines []string
	for _, it := range p.Items {
		for _, d := range it.Dests {
			if d.Tag != "" {
				d.Digest = ""
			}
			lines = append(lines, it.Source.String()+"="+d.String())
		}
	}
	sort.Strings(lines)
	var b bytes.Buffer
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.Bytes()
}
