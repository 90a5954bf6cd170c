package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/airlock-mirror/airlock/internal/deletion"
	"github.com/airlock-mirror/airlock/internal/imageset"
	"github.com/airlock-mirror/airlock/internal/orchestrate"
	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/registry"
	"github.com/airlock-mirror/airlock/internal/report"
)

// DeleteOptions holds `airlock delete` flags.
type DeleteOptions struct {
	ConfigFile     string
	Generate       bool
	Workspace      string
	DeleteID       string
	DeleteYAMLFile string
	RegistryRoot   string
	StorageConfig  string
	Force          bool
	Output         string
	RegistryFlags

	dest    ref.Ref
	storage registry.StorageFile
	streams IOStreams
}

func newDeleteCommand(streams IOStreams) *cobra.Command {
	o := &DeleteOptions{streams: streams}
	cmd := &cobra.Command{
		Use:   "delete docker://REGISTRY[/PREFIX]",
		Short: "Delete what a DeleteImageSetConfiguration selects from a mirror registry (oc-mirror delete)",
		Long: `Delete mirrored images in two steps, as oc-mirror v2 does.

1. --generate reads a DeleteImageSetConfiguration (-c) and writes the list of
   images a mirror run with that selection pushed to REGISTRY, collected and
   named as 'airlock mirror -c' does (sources must be reachable), to
   WORKSPACE/working-dir/delete/delete-images[-ID].yaml (kind DeleteImageList).
   Nothing is deleted: review the list.
2. --delete-yaml-file FILE deletes those manifests from REGISTRY by digest,
   which removes their tags too. A tag the list does not name that points to
   the same manifest keeps it: only the listed tags go. A multi-arch index
   goes with its platform manifests unless a remaining tag needs them.

oc-mirror stops there and the blobs stay until a registry garbage collection
that seldom runs. With --registry-root DIR (or --storage-config) naming the
embedded registry's storage ('airlock registry serve --root DIR'), airlock
deletes through an in-process registry on that storage and then runs garbage
collection, so blobs only the deleted images used are removed and the space
comes back; shared blobs stay. Stop 'airlock registry serve' on DIR first
(delete refuses while it runs, see --force).`,
		Example: `  # Step 1: the delete list for a selection
  airlock delete -c delete-imageset.yaml --generate --workspace file://./work docker://mirror.example.com:5000

  # Step 2, any registry: delete the manifests (blobs stay for the registry's gc)
  airlock delete --delete-yaml-file ./work/working-dir/delete/delete-images.yaml docker://mirror.example.com:5000

  # Step 2, the embedded registry (stopped): delete and collect the space
  airlock delete --delete-yaml-file ./work/working-dir/delete/delete-images.yaml \
      --registry-root /srv/mirror docker://mirror.example.com:5000`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.ConfigFile, "config", "c", "", "DeleteImageSetConfiguration file (with --generate)")
	f.BoolVar(&o.Generate, "generate", false, "write the delete list; delete nothing")
	f.StringVar(&o.Workspace, "workspace", "", "file://DIR: the workspace the delete list is written under (with --generate)")
	f.StringVar(&o.DeleteID, "delete-id", "", "suffix of the delete list's file name (delete-images-ID.yaml)")
	f.StringVar(&o.DeleteYAMLFile, "delete-yaml-file", "", "delete list to carry out (written by --generate)")
	f.StringVar(&o.RegistryRoot, "registry-root", "", "the embedded registry's storage directory: delete there and run garbage collection")
	f.StringVar(&o.StorageConfig, "storage-config", "", "YAML storage section of the embedded registry (as for serve) instead of --registry-root")
	f.BoolVar(&o.Force, "force", false, "run even though a serve process seems to be using --registry-root")
	f.StringVarP(&o.Output, "output", "o", "", "output format: json (default: text)")
	o.RegistryFlags.AddFlags(f)
	return cmd
}

// Complete parses the destination and reads the storage configuration.
func (o *DeleteOptions) Complete(args []string) error {
	// The destination is a registry and an optional path prefix; a bare
	// host must not be read as a docker.io repository.
	rest, ok := strings.CutPrefix(args[0], "docker://")
	host, prefix, _ := strings.Cut(rest, "/")
	if !ok || host == "" {
		return fmt.Errorf("destination %s: want docker://REGISTRY[/PREFIX]", args[0])
	}
	probe, err := ref.Parse("docker://" + host + "/" + strings.Trim(prefix+"/x", "/"))
	if err != nil || probe.Registry != host {
		return fmt.Errorf("destination %s: want docker://REGISTRY[/PREFIX] (%v)", args[0], err)
	}
	if probe.HasTagOrDigest() {
		return fmt.Errorf("destination %s: a registry and optional path, without tag or digest", args[0])
	}
	d := ref.Ref{Transport: ref.Docker, Registry: host, Path: strings.Trim(prefix, "/")}
	o.dest = d
	sf, err := storageFlag(o.StorageConfig)
	o.storage = sf
	return err
}

// Validate checks the flags of the chosen step.
func (o *DeleteOptions) Validate() error {
	if o.Output != "" && o.Output != "json" {
		return fmt.Errorf("--output %q: only json is supported", o.Output)
	}
	if o.Generate {
		if o.ConfigFile == "" || o.Workspace == "" {
			return errors.New("--generate needs -c DELETE-IMAGESET.yaml and --workspace file://DIR")
		}
		if !strings.HasPrefix(o.Workspace, "file://") || strings.TrimPrefix(o.Workspace, "file://") == "" {
			return fmt.Errorf("--workspace %q: want file://DIR", o.Workspace)
		}
		if o.DeleteYAMLFile != "" || o.RegistryRoot != "" || o.StorageConfig != "" {
			return errors.New("--generate only writes the list: --delete-yaml-file, --registry-root and --storage-config belong to the second step")
		}
		return nil
	}
	if o.DeleteYAMLFile == "" {
		return errors.New("give --generate -c FILE --workspace file://DIR to write a delete list, or --delete-yaml-file FILE to carry one out")
	}
	if o.ConfigFile != "" || o.Workspace != "" {
		return errors.New("-c and --workspace belong to --generate; the delete list says what to delete")
	}
	if o.RegistryRoot != "" && o.StorageConfig != "" {
		return errors.New("--registry-root and --storage-config both name the storage: give one")
	}
	if o.RegistryRoot != "" {
		if _, err := os.Stat(filepath.Join(o.RegistryRoot, "docker", "registry", "v2")); err != nil {
			return fmt.Errorf("--registry-root %s is not a registry storage directory (no docker/registry/v2): %w", o.RegistryRoot, err)
		}
		if !o.Force {
			return notServed(o.RegistryRoot)
		}
	}
	return nil
}

// Run carries out the chosen step.
func (o *DeleteOptions) Run(ctx context.Context) error {
	if o.Generate {
		return o.generate(ctx)
	}
	return o.delete(ctx)
}

// generate writes the delete list of the configuration's selection.
func (o *DeleteOptions) generate(ctx context.Context) error {
	data, err := os.ReadFile(o.ConfigFile)
	if err != nil {
		return fmt.Errorf("reading delete configuration: %w", err)
	}
	cfg, err := imageset.ParseDelete(data, o.ConfigFile)
	if err != nil {
		return err
	}
	work := filepath.Join(strings.TrimPrefix(o.Workspace, "file://"), "working-dir")
	p, err := o.deletePlan(ctx, cfg, work)
	if err != nil {
		return err
	}
	l := deletion.FromPlan(p)
	name := "delete-images.yaml"
	if o.DeleteID != "" {
		name = "delete-images-" + o.DeleteID + ".yaml"
	}
	out := filepath.Join(work, "delete", name)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if err := deletion.Write(out, l); err != nil {
		return err
	}
	fmt.Fprintf(o.streams.Out, "wrote %s: %d images to delete from %s; review it, then run: airlock delete --delete-yaml-file %s docker://%s\n",
		out, len(l.Items), o.dest.Registry, out, o.dest.String())
	return nil
}

// deletePlan is the plan a mirror run of the same selection to the
// destination has: the same collectors and naming as `airlock mirror -c`
// (orchestrate), catalogs included under their destination tags.
func (o *DeleteOptions) deletePlan(ctx context.Context, cfg *imageset.DeleteImageSetConfiguration, work string) (plan.Plan, error) {
	d := cfg.Delete
	isc := &imageset.ImageSetConfiguration{APIVersion: cfg.APIVersion, Kind: imageset.Kind,
		Mirror: imageset.Mirror{Platform: d.Platform, Operators: d.Operators, AdditionalImages: d.AdditionalImages, Helm: d.Helm}}
	eng, err := o.NewEngine("")
	if err != nil {
		return plan.Plan{}, err
	}
	col, err := orchestrate.CollectAll(ctx, &orchestrate.Input{Config: isc, ConfigFile: o.ConfigFile, Images: eng, Root: o.dest,
		WorkDir: work, Warn: func(s string) { slog.Warn(s) }})
	if err != nil {
		return plan.Plan{}, err
	}
	p := col.Plan
	for _, cj := range col.Catalogs {
		p.Add(cj.Item)
	}
	return p, nil
}

// deleteOutput is the JSON form of a delete run.
type deleteOutput struct {
	deletion.Result
	GC *registry.GCResult `json:"gc,omitempty"`
}

// delete carries out a delete list.
func (o *DeleteOptions) delete(ctx context.Context) error {
	l, err := deletion.Load(o.DeleteYAMLFile)
	if err != nil {
		return err
	}
	for i, it := range l.Items {
		r, _ := it.Target()
		if r.Registry != o.dest.Registry || (o.dest.Path != "" && r.Path != o.dest.Path && !strings.HasPrefix(r.Path, o.dest.Path+"/")) {
			return fmt.Errorf("%s: items[%d] %s is not under docker://%s: was the list generated for another registry?", o.DeleteYAMLFile, i, it.ImageReference, o.dest.String())
		}
	}
	var out deleteOutput
	if o.RegistryRoot != "" || o.StorageConfig != "" {
		res, gc, err := deletion.ApplyEmbedded(ctx, l, o.RegistryRoot, o.storage.Storage, slog.Default())
		out.Result, out.GC = res, gc
		if err != nil {
			o.print(out)
			return err
		}
	} else {
		opts, err := o.RemoteOptions(ctx)
		if err != nil {
			return err
		}
		res, err := deletion.Apply(ctx, l, deletion.Access{Insecure: o.Insecure, Remote: opts})
		out.Result = res
		if err != nil {
			o.print(out)
			return err
		}
	}
	return o.print(out)
}

func (o *DeleteOptions) print(out deleteOutput) error {
	if o.Output == "json" {
		enc := json.NewEncoder(o.streams.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	w := o.streams.Out
	for _, d := range out.Deleted {
		fmt.Fprintf(w, "deleted %s\n", d)
	}
	for _, d := range out.Untagged {
		fmt.Fprintf(w, "untagged %s (another tag still points to its manifest)\n", d)
	}
	for _, d := range out.Missing {
		fmt.Fprintf(w, "already gone %s\n", d)
	}
	fmt.Fprintf(w, "%d manifests deleted, %d tags removed, %d already gone, %d failed\n", len(out.Deleted), len(out.Untagged), len(out.Missing), len(out.Failures))
	if out.GC != nil {
		fmt.Fprintf(w, "garbage collection freed %s (%d blobs)\n", report.Bytes(out.GC.BlobBytes), out.GC.Blobs)
	} else if o.RegistryRoot == "" && o.StorageConfig == "" {
		fmt.Fprintln(w, "blobs stay until the registry's garbage collection runs (with the embedded registry, give --registry-root to collect them now)")
	}
	return nil
}
