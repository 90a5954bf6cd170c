// Package report renders the result of a run for people and programs: the
// end-of-run summary, the failure report file (mirror-errors.txt), the JSON
// report, and the dry-run plan listing.
//
// Everything here is a pure function of an engine.Report (or of a verify
// result), so it is golden-file tested without running anything.
//
// The failure report is itself a mapping file in the `oc image mirror`
// format: each failed image is one "SRC DST [DST...]" line preceded by
// comment lines saying where it came from and why it failed. So the answer
// to "what now?" is always the same command:
//
//	airlock image mirror -f mirror-errors.txt
//
// which retries exactly the images that failed.
package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/airlock-mirror/airlock/internal/atomicfile"
	"github.com/airlock-mirror/airlock/internal/engine"
)

// Bytes formats n bytes with a binary unit ("1.5 GiB"), as sizes on disk
// are usually read.
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// errText is the reason an item failed, from Err or its JSON copy.
func errText(it engine.ItemResult) string {
	if it.Err != nil {
		if errors.Is(it.Err, context.Canceled) {
			// Ctrl-C or SIGTERM: say so, not just "context canceled".
			return "interrupted before it finished; re-run to continue (" + it.Err.Error() + ")"
		}
		return it.Err.Error()
	}
	if it.Error != "" {
		return it.Error
	}
	for _, d := range it.Dests {
		if d.Error != "" {
			return d.Error
		}
	}
	return "unknown error"
}

// oneLine folds a multi-line error so it fits one comment or summary line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// Summary writes the end-of-run summary: counts, bytes, time, rate, and
// every failed or missing image with its reason.
func Summary(w io.Writer, r *engine.Report) {
	s := r.Stats
	fmt.Fprintf(w, "images: %d total, %d copied, %d already complete, %d failed", s.Images, s.ImagesCopied, s.ImagesSkipped, s.ImagesFailed)
	if s.ImagesMissing > 0 {
		fmt.Fprintf(w, ", %d missing at the source (skipped)", s.ImagesMissing)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "manifests written: %d; blobs: %d copied, %d mounted, %d already present\n", s.Manifests, s.BlobsCopied, s.BlobsMounted, s.BlobsSkipped)
	// MB (10^6) next to the rate, which is in MB/s as the benchmarks count.
	fmt.Fprintf(w, "transferred %.1f MB (%s) in %s (%.1f MB/s)\n", float64(s.Bytes)/1e6, Bytes(s.Bytes), s.Duration.Round(10*time.Millisecond), s.MBPerSecond())
	Signatures(w, r)
	for _, it := range r.Items {
		switch it.Status {
		case engine.StatusMissing:
			fmt.Fprintf(w, "missing: %s%s: %s\n", it.Source, at(it), oneLine(errText(it)))
		case engine.StatusFailed:
			fmt.Fprintf(w, "FAILED:  %s%s: %s\n", it.Source, at(it), oneLine(errText(it)))
		}
	}
}

// maxUnsignedListed bounds the unsigned images named in a summary; the
// JSON report has them all.
const maxUnsignedListed = 10

// Signatures writes the signature line of a run: how many of the images
// whose signatures were looked for are signed, how many signatures,
// attestations, SBOMs and other referrers were copied, and the unsigned
// images (the first few). Nothing when none was looked for (--signatures
// remove, or a re-run that found every image complete).
func Signatures(w io.Writer, r *engine.Report) {
	checked, signed, atts, failed, verified := 0, 0, 0, 0, 0
	var unsigned []string
	for _, it := range r.Items {
		if it.PolicyVerified {
			verified++
		}
		if !it.SignaturesChecked {
			continue
		}
		checked++
		if it.Signed {
			signed++
		} else {
			unsigned = append(unsigned, it.Source.String())
		}
		for _, a := range it.Attachments {
			if a.Status == engine.StatusFailed {
				failed++
			} else {
				atts++
			}
		}
	}
	if verified > 0 {
		fmt.Fprintf(w, "policy: %d of %d images satisfied the signature policy (refused ones are listed with the failures)\n", verified, len(r.Items))
	}
	if checked == 0 {
		return
	}
	fmt.Fprintf(w, "signatures: %d of %d images signed; %d signatures, attestations, SBOMs and referrers carried", signed, checked, atts)
	if failed > 0 {
		fmt.Fprintf(w, ", %d FAILED", failed)
	}
	fmt.Fprintln(w)
	if len(unsigned) > 0 && signed > 0 && signed < len(unsigned) {
		fmt.Fprintf(w, "unsigned: %d images ('airlock signatures report' lists them per catalog, package and release)\n", len(unsigned))
	} else if len(unsigned) > 0 && signed > 0 {
		// Only worth listing in a mirror where signing is the norm.
		more := ""
		if len(unsigned) > maxUnsignedListed {
			more = fmt.Sprintf(" (and %d more; -o json lists all)", len(unsigned)-maxUnsignedListed)
			unsigned = unsigned[:maxUnsignedListed]
		}
		fmt.Fprintf(w, "unsigned: %s%s\n", strings.Join(unsigned, ", "), more)
	}
	for _, it := range r.Items {
		for _, a := range it.Attachments {
			if a.Status == engine.StatusFailed {
				fmt.Fprintf(w, "FAILED:  %s of %s (%s): %s\n", a.Kind, it.Source, a.Subject, oneLine(a.Error))
			}
		}
	}
}

// at is " (mapping.txt:12)" when the item's origin names a place.
func at(it engine.ItemResult) string {
	if it.Origin.File != "" {
		return " (" + it.Origin.File + ")"
	}
	return ""
}

// Failures writes the failure report: a mapping file of the failed images
// (see the package comment). It writes nothing for a report without
// failures.
func Failures(w io.Writer, r *engine.Report, now time.Time) error {
	failed := r.Failed()
	if len(failed) == 0 {
		return nil
	}
	b := &strings.Builder{}
	fmt.Fprintf(b, "# airlock: %d image(s) failed at %s.\n", len(failed), now.UTC().Format(time.RFC3339))
	b.WriteString("# Fix the cause, then retry only these with:\n")
	b.WriteString("#   airlock image mirror -f <this file> (plus the flags of the original run)\n")
	for _, it := range failed {
		b.WriteString("\n")
		if it.Origin.File != "" {
			fmt.Fprintf(b, "# from %s\n", it.Origin.File)
		}
		if o := origin(it); o != "" {
			fmt.Fprintf(b, "# %s\n", o)
		}
		fmt.Fprintf(b, "# error: %s\n", oneLine(errText(it)))
		b.WriteString(it.Source.String())
		dests := failedDests(it)
		for _, d := range dests {
			b.WriteString(" ")
			b.WriteString(d)
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// origin describes catalog/release provenance, which is what a user needs to
// decide whether a failed image matters.
func origin(it engine.ItemResult) string {
	var parts []string
	o := it.Origin
	if o.Catalog != "" {
		parts = append(parts, "catalog "+o.Catalog)
	}
	if len(o.Packages) > 0 {
		parts = append(parts, "packages "+strings.Join(o.Packages, ","))
	}
	if len(o.Bundles) > 0 {
		parts = append(parts, "bundles "+strings.Join(o.Bundles, ","))
	}
	if o.Release != "" {
		parts = append(parts, "release "+o.Release)
	}
	if o.Component != "" {
		parts = append(parts, "component "+o.Component)
	}
	if it.Kind != "" && len(parts) > 0 {
		parts = append([]string{string(it.Kind)}, parts...)
	}
	return strings.Join(parts, "; ")
}

// failedDests are the destinations still to write: those marked failed, or
// all of them when the item failed before any destination was tried (e.g.
// the source could not be read).
func failedDests(it engine.ItemResult) []string {
	var out, all []string
	for _, d := range it.Dests {
		all = append(all, d.Ref.String())
		if d.Status == engine.StatusFailed {
			out = append(out, d.Ref.String())
		}
	}
	if len(out) == 0 {
		return all
	}
	return out
}

// WriteFailures writes the failure report to path atomically (temp file,
// fsync, rename), so an earlier report is never left half-overwritten. With
// no failures it writes nothing and leaves an existing file alone.
func WriteFailures(path string, r *engine.Report, now time.Time) (written bool, err error) {
	if len(r.Failed()) == 0 {
		return false, nil
	}
	var b strings.Builder
	if err := Failures(&b, r, now); err != nil {
		return false, err
	}
	if err := atomicfile.Write(path, []byte(b.String()), 0o644); err != nil {
		return false, fmt.Errorf("writing failure report: %w", err)
	}
	return true, nil
}

// JSON is the machine-readable report of a run (-o json).
type JSON struct {
	// OK is true when no image failed.
	OK     bool                `json:"ok"`
	DryRun bool                `json:"dryRun,omitempty"`
	Stats  engine.Stats        `json:"stats"`
	Items  []engine.ItemResult `json:"items"`
	// FailureReport is the path of the failure report, when one was written.
	FailureReport string `json:"failureReport,omitempty"`
}

// NewJSON builds the JSON report, copying each item's Err into its Error
// text so the reason survives encoding.
func NewJSON(r *engine.Report, dryRun bool, failureReport string) JSON {
	j := JSON{OK: len(r.Failed()) == 0, DryRun: dryRun, Stats: r.Stats, FailureReport: failureReport}
	j.Items = make([]engine.ItemResult, len(r.Items))
	for i, it := range r.Items {
		if it.Err != nil && it.Error == "" {
			it.Error = it.Err.Error()
		}
		j.Items[i] = it
	}
	return j
}

// WriteJSON writes a JSON report (JSON or VerifyJSON), indented, with a
// final newline.
func WriteJSON(w io.Writer, j any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(j); err != nil {
		return fmt.Errorf("encoding JSON report: %w", err)
	}
	return nil
}

// DryRun lists what a dry run resolved: each source with its digest and size
// and where it would go, then the total. Sizes are per image; the total
// counts shared blobs once per image, so it is an upper bound of what will
// cross the wire.
func DryRun(w io.Writer, r *engine.Report) {
	var total int64
	n := 0
	for _, it := range r.Items {
		switch it.Status {
		case engine.StatusFailed, engine.StatusMissing:
			fmt.Fprintf(w, "%s: %s: %s\n", strings.ToUpper(string(it.Status)), it.Source, oneLine(errText(it)))
			continue
		}
		n++
		total += it.Size
		d := it.Digest
		if d == "" {
			d = "?"
		}
		fmt.Fprintf(w, "%s  %s  %s\n", it.Source, d, Bytes(it.Size))
		for _, dr := range it.Dests {
			note := ""
			if dr.Status == engine.StatusSkipped {
				note = "  (already there)"
			}
			if dr.Digest != "" && dr.Digest != it.Digest {
				note += "  (written as " + dr.Digest + ")"
			}
			fmt.Fprintf(w, "  -> %s%s\n", dr.Ref, note)
		}
	}
	fmt.Fprintf(w, "dry run: %d image(s), %s; nothing was copied\n", n, Bytes(total))
}

// CheckStatus is the outcome of verifying one destination.
type CheckStatus string

const (
	CheckOK       CheckStatus = "ok"       // resolves with the expected digest
	CheckMissing  CheckStatus = "missing"  // the destination does not exist
	CheckMismatch CheckStatus = "mismatch" // it exists with another digest
	// CheckIncomplete: a manifest list with the right digest whose child
	// manifests are not all there (pulls fail for some platforms).
	CheckIncomplete CheckStatus = "incomplete"
	CheckError      CheckStatus = "error" // it could not be checked (see Error)
)

// Check is the verification of one destination of a mapping.
type Check struct {
	Source   string      `json:"source"`
	Dest     string      `json:"destination"`
	Pos      string      `json:"origin,omitempty"`   // mapping file:line
	Expected string      `json:"expected,omitempty"` // digest the destination must have
	Actual   string      `json:"actual,omitempty"`   // digest it has
	Status   CheckStatus `json:"status"`
	Error    string      `json:"error,omitempty"`
}

// VerifyJSON is the machine-readable result of `airlock verify`.
type VerifyJSON struct {
	OK     bool    `json:"ok"`
	Total  int     `json:"total"`
	Failed int     `json:"failed"`
	Checks []Check `json:"checks"`
}

// NewVerifyJSON summarises checks for JSON output.
func NewVerifyJSON(checks []Check) VerifyJSON {
	j := VerifyJSON{Total: len(checks), Checks: checks}
	for _, c := range checks {
		if c.Status != CheckOK {
			j.Failed++
		}
	}
	j.OK = j.Failed == 0
	if j.Checks == nil {
		j.Checks = []Check{}
	}
	return j
}

// Verification writes every failed check, one line each with its place in
// the mapping, then a one-line total. With verbose, passing checks are
// listed too.
func Verification(w io.Writer, checks []Check, verbose bool) {
	failed := 0
	for _, c := range checks {
		where := ""
		if c.Pos != "" {
			where = " (" + c.Pos + ")"
		}
		switch c.Status {
		case CheckOK:
			if verbose {
				fmt.Fprintf(w, "ok        %s %s%s\n", c.Dest, c.Actual, where)
			}
			continue
		case CheckMissing:
			fmt.Fprintf(w, "MISSING   %s%s: expected %s from %s\n", c.Dest, where, orUnknown(c.Expected), c.Source)
		case CheckMismatch:
			fmt.Fprintf(w, "MISMATCH  %s%s: has %s, expected %s from %s\n", c.Dest, where, c.Actual, c.Expected, c.Source)
		case CheckIncomplete:
			fmt.Fprintf(w, "INCOMPLETE %s%s: %s\n", c.Dest, where, oneLine(c.Error))
		default:
			fmt.Fprintf(w, "ERROR     %s%s: %s\n", c.Dest, where, oneLine(c.Error))
		}
		failed++
	}
	fmt.Fprintf(w, "verified %d destination(s): %d ok, %d failed\n", len(checks), len(checks)-failed, failed)
}

func orUnknown(d string) string {
	if d == "" {
		return "(digest unknown)"
	}
	return d
}
