package cli

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"

	"github.com/airlock-mirror/airlock/internal/audit"
	"github.com/airlock-mirror/airlock/internal/report"
)

// HistoryOptions holds `airlock history` flags.
type HistoryOptions struct {
	RegistryFlags
	Output string
	Limit  int
	Repo   string

	where   string
	streams IOStreams
}

func newHistoryCommand(streams IOStreams) *cobra.Command {
	o := &HistoryOptions{streams: streams}
	cmd := &cobra.Command{
		Use:   "history docker://REGISTRY | file://WORKSPACE",
		Short: "List the audit trail: every mirror, sync, delete and prune run",
		Long: `List the runs recorded in a registry's audit trail (the repository
airlock/history, one OCI artifact per run, pushed by the run itself) or in a
workspace's audit.jsonl: when, who, on which host, the command line with
secrets masked, the config and plan digests, what was written, deleted and
what failed. Newest last. The web view of 'airlock registry serve' shows the
same records under /ui/history.`,
		Example: `  # Runs recorded in a mirror registry
  airlock history docker://mirror.example.com:5000

  # Runs of a workspace (mirror -c ... --workspace file://DIR)
  airlock history file:///srv/airlock-work -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.where = args[0]
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd)
		},
	}
	o.RegistryFlags.AddFlags(cmd.Flags())
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "output format: json (default: a table)")
	cmd.Flags().IntVar(&o.Limit, "limit", 50, "show the newest N runs (0: all)")
	cmd.Flags().StringVar(&o.Repo, "repository", audit.DefaultRepo, "repository of the registry's run records")
	return cmd
}

// Validate checks the location and output format.
func (o *HistoryOptions) Validate() error {
	if !strings.HasPrefix(o.where, "docker://") && !strings.HasPrefix(o.where, "file://") {
		return fmt.Errorf("%q: give docker://REGISTRY or file://WORKSPACE", o.where)
	}
	if o.Output != "" && o.Output != "json" {
		return fmt.Errorf("--output %q: only json is supported", o.Output)
	}
	return nil
}

// Run reads and prints the records.
func (o *HistoryOptions) Run(cmd *cobra.Command) error {
	var recs []audit.Record
	var err error
	if dir, ok := strings.CutPrefix(o.where, "file://"); ok {
		path := dir
		if filepath.Ext(path) != ".jsonl" {
			path = filepath.Join(dir, "working-dir", audit.FileName)
		}
		recs, err = audit.ReadFile(path)
	} else {
		host := strings.TrimSuffix(strings.TrimPrefix(o.where, "docker://"), "/")
		var repo name.Repository
		repo, err = name.NewRepository(host+"/"+o.Repo, o.NameOptions()...)
		if err != nil {
			return fmt.Errorf("%s: %w", o.where, err)
		}
		opts, rerr := o.RemoteOptions(cmd.Context())
		if rerr != nil {
			return rerr
		}
		recs, err = audit.List(cmd.Context(), repo, opts...)
	}
	if err != nil && len(recs) == 0 {
		return err
	}
	if err != nil {
		fmt.Fprintf(o.streams.ErrOut, "warning: %v\n", err)
	}
	if o.Limit > 0 && len(recs) > o.Limit {
		recs = recs[len(recs)-o.Limit:]
	}
	if o.Output == "json" {
		enc := json.NewEncoder(o.streams.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(recs)
	}
	w := tabwriter.NewWriter(o.streams.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TIME\tCOMMAND\tWHO\tIMAGES\tSENT\tWRITTEN\tDELETED\tFAILED\tRESULT")
	for _, r := range recs {
		fmt.Fprintf(w, "%s\t%s\t%s@%s\t%d\t%s\t%d\t%d\t%d\t%s\n", r.Time.Format("2006-01-02 15:04:05Z"), r.Command, r.User, r.Host,
			r.Images, report.Bytes(r.Bytes), len(r.Written), len(r.Deleted), len(r.Failures), r.Result)
	}
	return w.Flush()
}
