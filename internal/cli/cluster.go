package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/airlock-mirror/airlock/internal/atomicfile"
	"github.com/airlock-mirror/airlock/internal/clusterres"
)

func newClusterCommand(streams IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Hand-off files for clusters (trust, pull secret, install-config, runtime mirrors) and checks of a mirror against a cluster",
		Long: `Everything a cluster needs to use the mirror, written as files instead of by
hand: the trusted-CA ConfigMap and image.config patch, the merged pull secret,
install-config.yaml fragments, the OperatorHub patch, and the node mirror
configuration of containerd, CRI-O/podman and k3s/RKE2 for clusters other than
OpenShift. Objects go to stdout as YAML (or JSON with --format json), or to
files in a directory with -o DIR.`,
		Example: `  airlock cluster trust --ca mirror/certs/ca.crt --registry mirror.example.com:5000 -o handoff/
  airlock cluster pull-secret --pull-secret pull-secret.json --authfile auth.json --registry mirror.example.com:5000 -o handoff/
  airlock cluster install-config --from release-manifests/ --ca mirror/certs/ca.crt
  airlock cluster runtime-config --from release-manifests/ --runtime containerd -o nodes/`,
	}
	cmd.AddCommand(newClusterTrustCommand(streams))
	cmd.AddCommand(newClusterPullSecretCommand(streams))
	cmd.AddCommand(newClusterInstallConfigCommand(streams))
	cmd.AddCommand(newClusterDisableDefaultSourcesCommand(streams))
	cmd.AddCommand(newClusterRuntimeConfigCommand(streams))
	cmd.AddCommand(newClusterInventoryCommand(streams))
	cmd.AddCommand(newClusterCheckCommand(streams))
	return cmd
}

// OutputFlags are the output options of the cluster hand-off commands.
type OutputFlags struct {
	Format string // yaml or json
	Dir    string // -o DIR; empty writes to stdout
}

// AddFlags registers --format and -o.
func (f *OutputFlags) AddFlags(cmd *cobra.Command, defFormat string) {
	f.Format = defFormat
	cmd.Flags().StringVar(&f.Format, "format", defFormat, "object format: yaml or json")
	cmd.Flags().StringVarP(&f.Dir, "output-dir", "o", "", "write one file per object into this directory (created) instead of stdout")
}

// Validate checks the format.
func (f *OutputFlags) Validate() error {
	if f.Format != "yaml" && f.Format != "json" {
		return fmt.Errorf("--format %q: want yaml or json", f.Format)
	}
	return nil
}

// handoffFile is one output: an object marshalled in the chosen format,
// or raw bytes written as they are.
type handoffFile struct {
	Name   string // file name without extension for objects, with it for raw
	Object any
	Raw    []byte
	Secret bool // written 0600
}

func (f handoffFile) bytes(format string) ([]byte, string, error) {
	if f.Object == nil {
		return f.Raw, f.Name, nil
	}
	if format == "json" {
		b, err := json.MarshalIndent(f.Object, "", "  ")
		if err != nil {
			return nil, "", fmt.Errorf("encoding %s: %w", f.Name, err)
		}
		return append(b, '\n'), f.Name + ".json", nil
	}
	b, err := clusterres.YAML(f.Object)
	if err != nil {
		return nil, "", err
	}
	return b, f.Name + ".yaml", nil
}

// write puts every file into f.Dir (atomically, so a rerun never leaves a
// half-written file under its final name), or everything on out: YAML
// documents one after the other, or JSON objects (a v1 List when there are
// several Kubernetes objects). It returns the paths written.
func (f OutputFlags) write(out io.Writer, files []handoffFile) ([]string, error) {
	if f.Dir == "" {
		return nil, writeStdout(out, f.Format, files)
	}
	if err := os.MkdirAll(f.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating output directory: %w", err)
	}
	var paths []string
	for _, file := range files {
		b, name, err := file.bytes(f.Format)
		if err != nil {
			return nil, err
		}
		perm := os.FileMode(0o644)
		if file.Secret {
			perm = 0o600
		}
		p := filepath.Join(f.Dir, name)
		if err := atomicfile.Write(p, b, perm); err != nil {
			return nil, fmt.Errorf("writing %s: %w", p, err)
		}
		paths = append(paths, p)
	}
	return paths, nil
}

func writeStdout(out io.Writer, format string, files []handoffFile) error {
	var buf bytes.Buffer
	if format == "json" && len(files) > 1 {
		list := struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Items      []any  `json:"items"`
		}{"v1", "List", nil}
		for _, f := range files {
			if f.Object == nil {
				return fmt.Errorf("%s is not an object: write it with -o DIR", f.Name)
			}
			list.Items = append(list.Items, f.Object)
		}
		b, err := json.MarshalIndent(list, "", "  ")
		if err != nil {
			return err
		}
		buf.Write(b)
		buf.WriteByte('\n')
	} else {
		for _, f := range files {
			b, name, err := f.bytes(format)
			if err != nil {
				return err
			}
			if f.Object == nil && len(files) > 1 {
				fmt.Fprintf(&buf, "# ---- %s\n", name)
			}
			buf.Write(b)
		}
	}
	_, err := out.Write(buf.Bytes())
	return err
}

// readCA reads a PEM CA bundle file.
func readCA(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading CA: %w", err)
	}
	if !strings.Contains(string(b), "-----BEGIN CERTIFICATE-----") {
		return "", fmt.Errorf("%s: not a PEM certificate (want the CA that signed the mirror's certificate, e.g. <registry root>/certs/ca.crt)", path)
	}
	return string(b), nil
}

// ClusterTrustOptions are the options of `airlock cluster trust`.
type ClusterTrustOptions struct {
	OutputFlags
	CAFile     string
	Registries []string
	Name       string
	streams    IOStreams
}

func newClusterTrustCommand(streams IOStreams) *cobra.Command {
	o := &ClusterTrustOptions{streams: streams}
	cmd := &cobra.Command{
		Use:   "trust --ca FILE --registry HOST:PORT [--registry ...]",
		Short: "The trusted-CA ConfigMap (keys HOST..PORT) and the image.config.openshift.io/cluster patch",
		Long: `Write what makes an OpenShift cluster trust the mirror registries' CA: one
ConfigMap in openshift-config with a key per registry (HOST..PORT, as a key
cannot hold ':'), and the merge patch of image.config.openshift.io/cluster that
sets spec.additionalTrustedCA to it. A cluster has one additionalTrustedCA, so
list every mirror registry in one run.`,
		Example: `  airlock cluster trust --ca /srv/mirror/certs/ca.crt --registry mirror.example.com:5000 -o handoff/
  oc apply -f handoff/trusted-ca.yaml
  oc patch image.config.openshift.io/cluster --type merge --patch-file handoff/image-config-patch.yaml

  # two registries, to stdout
  airlock cluster trust --ca ca.crt --registry mirror.example.com:5000 --registry quay.local:8443`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run()
		},
	}
	o.OutputFlags.AddFlags(cmd, "yaml")
	cmd.Flags().StringVar(&o.CAFile, "ca", "", "PEM CA bundle the mirror registries' certificates chain to (required)")
	cmd.Flags().StringArrayVar(&o.Registries, "registry", nil, "mirror registry HOST[:PORT]; repeatable (required)")
	cmd.Flags().StringVar(&o.Name, "name", clusterres.DefaultTrustedCAName, "ConfigMap name")
	return cmd
}

// Validate checks the flags.
func (o *ClusterTrustOptions) Validate() error {
	if o.CAFile == "" {
		return fmt.Errorf("--ca is required")
	}
	if len(o.Registries) == 0 {
		return fmt.Errorf("--registry is required (the mirror's HOST:PORT)")
	}
	return o.OutputFlags.Validate()
}

// Run writes the objects.
func (o *ClusterTrustOptions) Run() error {
	ca, err := readCA(o.CAFile)
	if err != nil {
		return err
	}
	cm, patch, err := clusterres.TrustObjects(o.Name, ca, o.Registries)
	if err != nil {
		return err
	}
	paths, err := o.write(o.streams.Out, []handoffFile{{Name: "trusted-ca", Object: cm}, {Name: "image-config-patch", Object: patch}})
	if err != nil {
		return err
	}
	if len(paths) == 2 {
		fmt.Fprintf(o.streams.ErrOut, "wrote %s\napply with:\n  oc apply -f %s\n  oc patch image.config.openshift.io/cluster --type merge --patch-file %s\n",
			strings.Join(paths, ", "), paths[0], paths[1])
	}
	return nil
}

// ClusterPullSecretOptions are the options of `airlock cluster pull-secret`.
type ClusterPullSecretOptions struct {
	OutputFlags
	PullSecret string
	AuthFile   string
	Registries []string
	streams    IOStreams
}

func newClusterPullSecretCommand(streams IOStreams) *cobra.Command {
	o := &ClusterPullSecretOptions{streams: streams}
	cmd := &cobra.Command{
		Use:   "pull-secret --pull-secret FILE --authfile FILE [--registry HOST]",
		Short: "Merge the mirror's credentials into the cluster pull secret (JSON, Secret, oc command)",
		Long: `Merge the mirror registry credentials of an auth.json (as written by
'airlock login' or 'podman login') into the cluster's pull secret: every
existing entry is kept, the mirror's are added or replace the same keys.
--registry selects which authfile entries to take (the host and anything
below it); by default all of them.

With -o DIR it writes pull-secret.json and the Secret (both mode 0600) and
prints the 'oc set data secret/pull-secret -n openshift-config' command that
installs the file. Without -o the merged JSON (or, with --format yaml, the
Secret) goes to stdout. Credentials never appear in logs or errors: only the
registry names that were added or replaced are printed (to stderr).`,
		Example: `  # get the cluster's current pull secret, merge, put it back
  oc extract secret/pull-secret -n openshift-config --keys=.dockerconfigjson --to=- > pull-secret.json
  airlock cluster pull-secret --pull-secret pull-secret.json --authfile ${XDG_RUNTIME_DIR}/containers/auth.json \
      --registry mirror.example.com:5000 -o handoff/
  oc set data secret/pull-secret -n openshift-config --from-file=.dockerconfigjson=handoff/pull-secret.json

  # a new cluster: the mirror's credentials only, for install-config.yaml
  airlock cluster pull-secret --authfile auth.json --registry mirror.example.com:5000 > pull-secret.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run()
		},
	}
	o.OutputFlags.AddFlags(cmd, "json")
	cmd.Flags().StringVar(&o.PullSecret, "pull-secret", "", "the cluster's existing pull secret (JSON); empty starts from none")
	cmd.Flags().StringVar(&o.AuthFile, "authfile", "", "auth.json holding the mirror registry credentials (required)")
	cmd.Flags().StringArrayVar(&o.Registries, "registry", nil, "take only this registry's entries from --authfile; repeatable")
	return cmd
}

// Validate checks the flags.
func (o *ClusterPullSecretOptions) Validate() error {
	if o.AuthFile == "" {
		return fmt.Errorf("--authfile is required (the auth.json airlock login or podman login wrote)")
	}
	return o.OutputFlags.Validate()
}

// mergedPullSecret reads the two files and merges them, logging only
// registry names.
func mergedPullSecret(existingPath, authPath string, registries []string, log io.Writer) ([]byte, error) {
	existing := []byte(`{"auths":{}}`)
	name := "(empty pull secret)"
	if existingPath != "" {
		b, err := os.ReadFile(existingPath)
		if err != nil {
			return nil, fmt.Errorf("reading pull secret: %w", err)
		}
		existing, name = b, existingPath
	}
	auth, err := os.ReadFile(authPath)
	if err != nil {
		return nil, fmt.Errorf("reading authfile: %w", err)
	}
	res, err := clusterres.MergePullSecret(existing, name, auth, authPath, registries)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "pull secret: %d entries kept, added %s, replaced %s\n", res.Kept, listOrNone(res.Added), listOrNone(res.Replaced))
	return res.JSON, nil
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// Run merges and writes.
func (o *ClusterPullSecretOptions) Run() error {
	ps, err := mergedPullSecret(o.PullSecret, o.AuthFile, o.Registries, o.streams.ErrOut)
	if err != nil {
		return err
	}
	secret := handoffFile{Name: "pull-secret-secret", Object: clusterres.PullSecretObject(ps), Secret: true}
	raw := handoffFile{Name: "pull-secret.json", Raw: ps, Secret: true}
	if o.Dir == "" {
		if o.Format == "yaml" {
			return writeStdout(o.streams.Out, "yaml", []handoffFile{secret})
		}
		_, err := o.streams.Out.Write(ps)
		return err
	}
	paths, err := o.write(o.streams.Out, []handoffFile{raw, secret})
	if err != nil {
		return err
	}
	fmt.Fprintf(o.streams.ErrOut, "wrote %s (mode 0600)\napply with:\n  %s\n", strings.Join(paths, ", "), clusterres.SetPullSecretCommand(paths[0]))
	return nil
}

// ClusterInstallConfigOptions are the options of `airlock cluster install-config`.
type ClusterInstallConfigOptions struct {
	OutputFlags
	From       []string
	CAFile     string
	PullSecret string
	AuthFile   string
	Registries []string
	Legacy     bool
	streams    IOStreams
}

func newClusterInstallConfigCommand(streams IOStreams) *cobra.Command {
	o := &ClusterInstallConfigOptions{streams: streams}
	cmd := &cobra.Command{
		Use:   "install-config --from DIR [--ca FILE] [--authfile FILE]",
		Short: "install-config.yaml fragments: imageDigestSources (or imageContentSources), additionalTrustBundle, pullSecret",
		Long: `Write the install-config.yaml fields of a disconnected installation from
the mirror sets a mirror run wrote (--from: a cluster-resources or manifests
directory of airlock, oc-mirror, oc adm release/catalog mirror; every IDMS and
ICSP in it). imageDigestSources is for installers of OpenShift 4.14 and later;
--legacy writes imageContentSources for older ones (the installer refuses
both at once). --ca adds additionalTrustBundle (policy Always), --authfile
(merged into --pull-secret when given) adds pullSecret. Image tag mirror sets
have no install-config field: apply them after the installation.`,
		Example: `  airlock cluster install-config --from release-manifests/ --from catalog-manifests/ \
      --ca /srv/mirror/certs/ca.crt --authfile auth.json --registry mirror.example.com:5000 >> install-config.yaml

  # an installer before 4.14
  airlock cluster install-config --from oc-mirror-workspace/working-dir/cluster-resources --legacy`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run()
		},
	}
	o.OutputFlags.AddFlags(cmd, "yaml")
	cmd.Flags().StringArrayVar(&o.From, "from", nil, "directory of mirror sets (IDMS/ICSP YAML or JSON); repeatable (required)")
	cmd.Flags().StringVar(&o.CAFile, "ca", "", "PEM CA of the mirror registry, for additionalTrustBundle")
	cmd.Flags().StringVar(&o.AuthFile, "authfile", "", "auth.json with the mirror's credentials, for pullSecret")
	cmd.Flags().StringVar(&o.PullSecret, "pull-secret", "", "pull secret to merge the --authfile credentials into")
	cmd.Flags().StringArrayVar(&o.Registries, "registry", nil, "take only this registry's entries from --authfile; repeatable")
	cmd.Flags().BoolVar(&o.Legacy, "legacy", false, "write imageContentSources (installers before 4.14) instead of imageDigestSources")
	return cmd
}

// Validate checks the flags.
func (o *ClusterInstallConfigOptions) Validate() error {
	if len(o.From) == 0 {
		return fmt.Errorf("--from DIR is required (the manifests or cluster-resources directory of a mirror run)")
	}
	if o.PullSecret != "" && o.AuthFile == "" {
		return fmt.Errorf("--pull-secret needs --authfile (the credentials to merge into it)")
	}
	return o.OutputFlags.Validate()
}

// Run reads the mirror sets and writes the fragment.
func (o *ClusterInstallConfigOptions) Run() error {
	var ms clusterres.MirrorSets
	for _, d := range o.From {
		one, err := clusterres.ReadMirrorSetDir(d)
		if err != nil {
			return err
		}
		ms.Rules = append(ms.Rules, one.Rules...)
	}
	var ca string
	if o.CAFile != "" {
		var err error
		if ca, err = readCA(o.CAFile); err != nil {
			return err
		}
	}
	var ps []byte
	if o.AuthFile != "" {
		var err error
		if ps, err = mergedPullSecret(o.PullSecret, o.AuthFile, o.Registries, o.streams.ErrOut); err != nil {
			return err
		}
	}
	cur, legacy, err := clusterres.InstallConfigFragments(ms.DigestMirrors(), ca, ps)
	if err != nil {
		return fmt.Errorf("%w in %s", err, strings.Join(o.From, ", "))
	}
	frag, name := cur, "install-config-fragment"
	if o.Legacy {
		frag, name = legacy, "install-config-fragment-legacy"
	}
	// A fragment is pasted into install-config.yaml: no "---" document marker.
	var b []byte
	if o.Format == "json" {
		b, err = json.MarshalIndent(frag, "", "  ")
		b = append(b, '\n')
	} else {
		b, err = yaml.Marshal(frag)
	}
	if err != nil {
		return fmt.Errorf("encoding install-config fragment: %w", err)
	}
	paths, err := o.write(o.streams.Out, []handoffFile{{Name: name + "." + o.Format, Raw: b, Secret: len(ps) > 0}})
	if err != nil {
		return err
	}
	for _, p := range paths {
		fmt.Fprintf(o.streams.ErrOut, "wrote %s: merge it into install-config.yaml\n", p)
	}
	return nil
}

func newClusterDisableDefaultSourcesCommand(streams IOStreams) *cobra.Command {
	var out OutputFlags
	cmd := &cobra.Command{
		Use:   "disable-default-sources",
		Short: "The OperatorHub patch that turns off the default (internet) catalog sources",
		Long: `Write the OperatorHub object (config.openshift.io/v1, "cluster") with
spec.disableAllDefaultSources: true. A disconnected cluster otherwise keeps
pulling the default catalogs from registry.redhat.io and reports them as
failing; the mirrored catalogs come from their own CatalogSources.`,
		Example: `  airlock cluster disable-default-sources | oc apply -f -
  # the same as a merge patch
  oc patch operatorhub cluster --type merge --patch-file <(airlock cluster disable-default-sources --format json)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.Validate(); err != nil {
				return err
			}
			_, err := out.write(streams.Out, []handoffFile{{Name: "operatorhub", Object: clusterres.OperatorHubDisableDefaults()}})
			return err
		},
	}
	out.AddFlags(cmd, "yaml")
	return cmd
}
