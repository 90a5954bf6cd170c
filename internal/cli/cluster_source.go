package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/pflag"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/airlock-mirror/airlock/internal/clusterstate"
)

// ClusterSourceFlags say where `cluster inventory` and `cluster check` read
// the cluster: an export (--from) or the live cluster of a kubeconfig
// (--kubeconfig, $KUBECONFIG, ~/.kube/config, or the pod's service account
// when airlock runs in the cluster), read-only.
type ClusterSourceFlags struct {
	From       string
	Kubeconfig string
	Context    string
	// ChunkSize is the list limit of live reads (--chunk-size, as kubectl
	// names it; clusterstate.LiveOptions.PageSize).
	ChunkSize int64
}

// AddFlags registers --from, --kubeconfig and --context.
func (f *ClusterSourceFlags) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.From, "from", "", "cluster export (oc get ... -o json) or must-gather directory, instead of a live cluster")
	fs.StringVar(&f.Kubeconfig, "kubeconfig", "", "kubeconfig of the live cluster to read (default $KUBECONFIG, then ~/.kube/config, then the pod's service account)")
	fs.StringVar(&f.Context, "context", "", "kubeconfig context to use (default the current context)")
	fs.Int64Var(&f.ChunkSize, "chunk-size", clusterstate.DefaultPageSize, "objects per list request to the live cluster (its pods come in pages this large)")
}

// Validate rejects an export and a live cluster at once.
func (f *ClusterSourceFlags) Validate() error {
	if f.From != "" && (f.Kubeconfig != "" || f.Context != "") {
		return errors.New("--from reads an export, --kubeconfig/--context a live cluster: give one or the other, not both")
	}
	if f.ChunkSize <= 0 {
		return fmt.Errorf("--chunk-size %d: want a positive number of objects", f.ChunkSize)
	}
	return nil
}

// Load reads the cluster; warnings (kinds the cluster does not serve) go
// to errOut.
func (f *ClusterSourceFlags) Load(ctx context.Context, errOut io.Writer) (*clusterstate.State, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if f.From != "" {
		return clusterstate.Load(f.From)
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = f.Kubeconfig
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: f.Context})
	cfg, err := loader.ClientConfig()
	if clientcmd.IsEmptyConfig(err) {
		return nil, fmt.Errorf("no cluster to read: give an export with --from FILE (made with: %s > cluster.json), "+
			"or a live cluster with --kubeconfig FILE or $KUBECONFIG", clusterstate.ExportCommand)
	}
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	cfg.UserAgent = "airlock"
	st, warnings, err := clusterstate.LoadLive(ctx, cfg, clusterstate.LiveOptions{PageSize: f.ChunkSize})
	for _, w := range warnings {
		fmt.Fprintln(errOut, "warning:", w)
	}
	return st, err
}
