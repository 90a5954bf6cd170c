package cli

import (
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"github.com/airlock-mirror/airlock/internal/clusterres"
)

// signatureKeyUsage is the --signature-key help, shared by mirror and
// release mirror.
const signatureKeyUsage = "cosign public key (PEM) the cluster must verify mirrored images with: writes a ClusterImagePolicy for the mirrored source repositories, a registries.d file (use-sigstore-attachments) and a policy.json fragment; repeatable (every key must have signed every image)"

// addSignatureKeyFlag registers --signature-key.
func addSignatureKeyFlag(fs *pflag.FlagSet, files *[]string) {
	fs.StringArrayVar(files, "signature-key", nil, signatureKeyUsage)
}

// loadSignatureKeys reads and checks every --signature-key file before
// anything is copied, so a wrong file (a private key, a certificate) fails
// the run at once, named.
func loadSignatureKeys(files []string) ([]clusterres.SigstoreKey, error) {
	var keys []clusterres.SigstoreKey
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("--signature-key: %w", err)
		}
		k, err := clusterres.ParsePublicKey(f, data)
		if err != nil {
			return nil, fmt.Errorf("--signature-key: %w", err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}
