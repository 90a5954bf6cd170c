package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/airlock-mirror/airlock/internal/audit"
	"github.com/airlock-mirror/airlock/internal/engine"
	"github.com/airlock-mirror/airlock/internal/orchestrate"
)

// commandLine rebuilds the command line a command ran with (its path, the
// flags set and the arguments) for the audit trail; audit.New masks the
// secrets in it.
func commandLine(cmd *cobra.Command, args []string) []string {
	out := []string{cmd.CommandPath()}
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			for _, v := range sv.GetSlice() {
				out = append(out, "--"+f.Name+"="+v)
			}
			return
		}
		out = append(out, "--"+f.Name+"="+f.Value.String())
	})
	return append(out, args...)
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// destRef names a destination by digest when the run knows it.
func destRef(d engine.DestResult) string {
	if d.Digest == "" {
		return d.Ref.String()
	}
	return d.Ref.Repo().String() + "@" + d.Digest
}

// mirrorRecord is the audit record of one mirror (or sync) run. previous
// is the workspace's last record for the same destination, to tell what
// the config no longer selects.
func mirrorRecord(command string, argv []string, o *MirrorOptions, res *orchestrate.Result, runErr error, previous *audit.Record) audit.Record {
	rec := audit.New(command, argv)
	rec.ConfigDigest = digestOf(o.cfgData)
	if o.mode == orchestrate.MirrorToDisk {
		rec.Destination = "file://" + o.dir
	} else {
		rec.Destination = o.dest.String()
	}
	if res != nil {
		if b, err := json.Marshal(res.Plan); err == nil {
			rec.PlanDigest = digestOf(b)
		}
		if res.Report != nil {
			rec.Images, rec.Bytes = res.Report.Stats.Images, res.Report.Stats.Bytes
			for _, it := range res.Report.Items {
				for _, d := range it.Dests {
					rec.Planned = append(rec.Planned, destRef(d))
					if d.Status == engine.StatusCopied {
						rec.Written = append(rec.Written, destRef(d))
					}
				}
				if it.Status == engine.StatusFailed {
					rec.Failures = append(rec.Failures, audit.Failure{Image: it.Source.String(), Error: it.Error})
				}
			}
		}
		for _, c := range res.CatalogErrors {
			rec.Failures = append(rec.Failures, audit.Failure{Error: c.Error()})
		}
	}
	slices.Sort(rec.Planned)
	rec.Planned = slices.Compact(rec.Planned)
	slices.Sort(rec.Written)
	rec.Added = slices.Compact(rec.Written)
	if previous != nil && res != nil && res.Report != nil {
		for _, p := range previous.Planned {
			if _, found := slices.BinarySearch(rec.Planned, p); !found {
				rec.Removed = append(rec.Removed, p)
			}
		}
	}
	if runErr != nil && res == nil {
		rec.Failures = append(rec.Failures, audit.Failure{Error: runErr.Error()})
	}
	rec.Finish(runErr)
	return rec
}

// recordMirror appends the run to the workspace's audit log and, for a
// registry destination, to the registry's history. A failure to record is
// a warning: the run's own outcome stands.
func (o *MirrorOptions) recordMirror(ctx context.Context, command string, argv []string, res *orchestrate.Result, runErr error) *audit.Record {
	if o.DryRun {
		return nil
	}
	logPath := filepath.Join(orchestrate.WorkingDir(o.dir), audit.FileName)
	var previous *audit.Record
	dest := o.dest.String()
	if o.mode == orchestrate.MirrorToDisk {
		dest = "file://" + o.dir
	}
	if recs, err := audit.ReadFile(logPath); err == nil {
		for i := len(recs) - 1; i >= 0; i-- {
			if recs[i].Destination == dest && recs[i].Result != "failed" {
				previous = &recs[i]
				break
			}
		}
	}
	rec := mirrorRecord(command, argv, o, res, runErr, previous)
	if err := audit.AppendFile(logPath, rec); err != nil {
		fmt.Fprintf(o.streams.ErrOut, "warning: recording the run: %v\n", err)
	}
	if o.mode != orchestrate.MirrorToDisk {
		opts, err := o.RemoteOptions(ctx)
		if err == nil {
			var repo name.Repository
			if repo, err = name.NewRepository(o.dest.Registry+"/"+audit.DefaultRepo, o.NameOptions()...); err == nil {
				err = audit.Push(ctx, repo, rec, opts...)
			}
		}
		if err != nil {
			fmt.Fprintf(o.streams.ErrOut, "warning: recording the run in %s's history: %v\n", o.dest.Registry, err)
		}
	}
	return &rec
}
