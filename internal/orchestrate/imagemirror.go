package orchestrate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/airlock-mirror/airlock/internal/engine"
	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/report"
)

// ImageMirrorOptions are one `image mirror` run (oc image mirror
// semantics): a plan read from mappings, copied as it is.
type ImageMirrorOptions struct {
	Plan plan.Plan
	// Engine copies; it is built for the run (DryRun as DryRun).
	Engine Engine
	DryRun bool
	// FailureReport is the file the failed images are written to, as a
	// mapping the same command retries ("" writes none).
	FailureReport string
	// JSON writes the report as JSON to Out; the text summary then goes
	// to ErrOut, so Out stays parseable.
	JSON        bool
	Out, ErrOut io.Writer
	Now         func() time.Time
}

// ImageMirror copies o.Plan, prints the summary (or the dry-run listing)
// and writes the failure report. It returns an error (exit 1) when any
// image failed, after the summary, naming the report to retry with.
func ImageMirror(ctx context.Context, o ImageMirrorOptions) (*engine.Report, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	rep, runErr := o.Engine.Run(ctx, o.Plan)
	var runFailed *engine.RunError
	if runErr != nil && !errors.As(runErr, &runFailed) {
		// Not a per-image failure: the run itself could not proceed
		// (cancelled, bad store directory, ...). Report what is known.
		if rep != nil {
			o.writeFailureReport(rep)
		}
		return rep, fmt.Errorf("mirroring: %w", runErr)
	}
	if rep == nil {
		return nil, fmt.Errorf("mirroring: the engine returned no report")
	}
	reportPath := o.writeFailureReport(rep)
	text := o.Out
	if o.JSON {
		text = o.ErrOut
		if err := report.WriteJSON(o.Out, report.NewJSON(rep, o.DryRun, reportPath)); err != nil {
			return rep, err
		}
	}
	if o.DryRun {
		report.DryRun(text, rep)
	} else {
		report.Summary(text, rep)
	}
	failed := len(rep.Failed())
	if failed == 0 {
		return rep, nil
	}
	if reportPath != "" {
		return rep, fmt.Errorf("%d of %d image(s) failed (listed above); retry them with: airlock image mirror -f %s", failed, len(rep.Items), reportPath)
	}
	return rep, fmt.Errorf("%d of %d image(s) failed (listed above)", failed, len(rep.Items))
}

// writeFailureReport writes the failure report when something failed and
// returns its path ("" when nothing was written). A failure to write it is
// a warning, not fatal: the summary already names every failed image.
func (o *ImageMirrorOptions) writeFailureReport(rep *engine.Report) string {
	if o.DryRun || o.FailureReport == "" {
		return ""
	}
	written, err := report.WriteFailures(o.FailureReport, rep, o.Now())
	if err != nil {
		fmt.Fprintf(o.ErrOut, "warning: %v\n", err)
		return ""
	}
	if !written {
		return ""
	}
	return o.FailureReport
}
