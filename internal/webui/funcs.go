package webui

import (
	"fmt"
	"html/template"
	"time"

	"github.com/airlock-mirror/airlock/internal/report"
)

var funcs = template.FuncMap{
	"bytes": report.Bytes,
	"short": shortDigest,
	"when":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"ms":    func(d time.Duration) string { return d.Round(time.Millisecond).String() },
	"pct": func(a, b int) string {
		if b == 0 {
			return "–"
		}
		return fmt.Sprintf("%d%%", a*100/b)
	},
	"sub": func(a, b int) int { return a - b },
	"ratio": func(a, b int64) string {
		if a == 0 {
			return "–"
		}
		return fmt.Sprintf("%.2f×", float64(a)/float64(max(b, 1)))
	},
	"plural": func(n int, one, many string) string {
		if n == 1 {
			return one
		}
		return many
	},
}

func shortDigest(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}
