package cli

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/airlock-mirror/airlock/internal/atomicfile"
	"github.com/airlock-mirror/airlock/internal/clusterres"
	"github.com/airlock-mirror/airlock/internal/mapping"
	"github.com/airlock-mirror/airlock/internal/runtimeconf"
)

// ClusterRuntimeConfigOptions are the options of `airlock cluster runtime-config`.
type ClusterRuntimeConfigOptions struct {
	From      []string
	Filenames []string
	Runtimes  []string
	CAFile    string
	Dir       string
	streams   IOStreams
}

func newClusterRuntimeConfigCommand(streams IOStreams) *cobra.Command {
	o := &ClusterRuntimeConfigOptions{streams: streams}
	cmd := &cobra.Command{
		Use:   "runtime-config (--from DIR | -f mapping.txt) [--runtime containerd|crio|k3s] [-o DIR]",
		Short: "Node mirror configuration for Kubernetes: containerd hosts.toml, CRI-O/podman registries.conf, k3s/RKE2 registries.yaml",
		Long: `Write the mirror configuration container runtimes read on each node, for
clusters that have no IDMS/ITMS (plain Kubernetes, k3s, RKE2, podman hosts):

  containerd   certs.d/<registry>/hosts.toml (containerd's config_path)
  crio         registries.conf.d/99-airlock-mirror.conf ([[registry.mirror]]),
               read by CRI-O, podman, skopeo and buildah
  k3s          registries.yaml for k3s and RKE2

The mirror rules come from the mirror sets of a mirror run (--from DIR) or
from a mapping file (-f). containerd and k3s mirror whole registries, so
their mirrors must keep the source path (airlock's and oc-mirror's naming);
registries.conf maps each repository. --ca is the CA's path on the nodes.`,
		Example: `  airlock cluster runtime-config --from release-manifests/ --ca /etc/pki/mirror/ca.crt -o nodes/
  sudo cp -r nodes/certs.d /etc/containerd/

  # podman/skopeo on a host, from a mapping
  airlock cluster runtime-config -f mapping.txt --runtime crio -o /etc/containers/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run()
		},
	}
	cmd.Flags().StringArrayVar(&o.From, "from", nil, "directory of mirror sets (IDMS/ITMS/ICSP); repeatable")
	cmd.Flags().StringArrayVarP(&o.Filenames, "filename", "f", nil, "mapping file (SRC=DST lines); repeatable")
	cmd.Flags().StringArrayVar(&o.Runtimes, "runtime", []string{"containerd", "crio", "k3s"}, "runtime to write for: containerd, crio or k3s; repeatable")
	cmd.Flags().StringVar(&o.CAFile, "ca", "", "path of the mirror CA on the nodes (containerd and k3s reference it)")
	cmd.Flags().StringVarP(&o.Dir, "output-dir", "o", "", "write the files below this directory; default prints them")
	return cmd
}

// Validate checks the flags.
func (o *ClusterRuntimeConfigOptions) Validate() error {
	if len(o.From) == 0 && len(o.Filenames) == 0 {
		return fmt.Errorf("give the mirror rules: --from DIR (mirror sets) or -f mapping.txt")
	}
	for _, r := range o.Runtimes {
		if _, ok := runtimeGenerators[r]; !ok {
			return fmt.Errorf("--runtime %q: want containerd, crio or k3s", r)
		}
	}
	return nil
}

var runtimeGenerators = map[string]func(runtimeconf.Options) ([]runtimeconf.File, error){
	"containerd": runtimeconf.Containerd,
	"crio":       runtimeconf.RegistriesConf,
	"k3s":        runtimeconf.K3s,
}

// Run builds the rules and writes the files.
func (o *ClusterRuntimeConfigOptions) Run() error {
	var rules []clusterres.Rule
	for _, d := range o.From {
		ms, err := clusterres.ReadMirrorSetDir(d)
		if err != nil {
			return err
		}
		rules = append(rules, ms.Rules...)
	}
	if len(o.Filenames) > 0 {
		var p mapping.Parser
		for _, name := range o.Filenames {
			if err := readMappingFile(&p, name, o.streams.In); err != nil {
				return err
			}
		}
		ms, err := p.Result()
		if err != nil {
			return err
		}
		rules = append(rules, runtimeconf.RulesFromPairs(clusterres.PairsFromPlan(mapping.ToPlan(ms), nil))...)
	}
	if len(rules) == 0 {
		return fmt.Errorf("no mirror rules found (no IDMS/ITMS/ICSP in --from, no registry mapping in -f)")
	}
	opts := runtimeconf.Options{Rules: rules, CAFile: o.CAFile}
	var files []runtimeconf.File
	for _, r := range o.Runtimes {
		fs, err := runtimeGenerators[r](opts)
		if err != nil {
			return err
		}
		files = append(files, fs...)
	}
	for _, f := range files {
		if o.Dir == "" {
			fmt.Fprintf(o.streams.Out, "# ---- %s\n%s", f.Path, f.Data)
			continue
		}
		p := filepath.Join(o.Dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := atomicfile.Write(p, f.Data, 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", p, err)
		}
		fmt.Fprintf(o.streams.ErrOut, "wrote %s\n", p)
	}
	return nil
}
