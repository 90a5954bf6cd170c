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

// signatureLookasideUsage is the --signature-lookaside help, shared by
// mirror and release mirror.
const signatureLookasideUsage = "with --signature-key: URL the OpenPGP signatures are served from, written as lookaside on every entry of the registries.d file"

// mirrorLookasideUsage is the --signature-lookaside help of mirror and
// sync, where it also works alone.
const mirrorLookasideUsage = "URL the OpenPGP signatures are served from (URL/REPOSITORY@sha256=HEX/signature-N): written as lookaside into the registries.d file for the mirrors of the releases whose signatures were imported (--signature-dir) and, with --signature-key, of every cosign-signed image"

// imagePolicyNamespaceUsage is the --image-policy-namespace help.
const imagePolicyNamespaceUsage = "with --signature-key: write namespaced ImagePolicy objects (ip-airlock.yaml) for this namespace instead of the cluster-wide ClusterImagePolicy, so only its pods must carry the signatures; repeatable"

// validateSignaturePolicyFlags refuses the policy flags that only shape
// the files --signature-key writes when no key is given (lookaside only
// when lookasideAlone is false: mirror and sync write the registries.d
// file for OpenPGP-signed releases without a key).
func validateSignaturePolicyFlags(keys int, lookaside string, namespaces []string, lookasideAlone bool) error {
	for _, ns := range namespaces {
		if err := clusterres.ValidateNamespace(ns); err != nil {
			return fmt.Errorf("--image-policy-namespace: %w", err)
		}
	}
	switch {
	case keys > 0:
		return nil
	case lookaside != "" && !lookasideAlone:
		return fmt.Errorf("--signature-lookaside goes into the registries.d file written with --signature-key; give --signature-key FILE too")
	case len(namespaces) > 0:
		return fmt.Errorf("--image-policy-namespace %s: the ImagePolicy requires the keys of --signature-key; give --signature-key FILE too", namespaces[0])
	}
	return nil
}

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
