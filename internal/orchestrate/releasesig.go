package orchestrate

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/airlock-mirror/airlock/internal/clusterres"
	"github.com/airlock-mirror/airlock/internal/release/signature"
)

// Release signature ConfigMap files under cluster-resources/, as oc-mirror
// v2 names them; both hold the same object (oc apply takes either).
const (
	SignatureConfigMapFile     = "signature-configmap.yaml"
	SignatureConfigMapJSONFile = "signature-configmap.json"
	// SignatureConfigMapName is the one ConfigMap all releases of a run go
	// into (oc-mirror's name).
	SignatureConfigMapName = "mirrored-release-signatures"
)

// ReleaseSignature is the imported signatures of one release image, as the
// mirror-to-disk record carries them across the air gap.
type ReleaseSignature struct {
	Digest     string   `json:"digest"`
	Signatures [][]byte `json:"signatures"`
}

// SignatureSource is where a run imports release signatures from: a
// directory of sha256=<hex>/signature-N files (what Red Hat publishes),
// optionally verified against an OpenPGP keyring file.
type SignatureSource struct {
	Dir       string
	VerifyKey string
}

// loadReleaseSignatures imports the signatures of every release of a run,
// before anything is copied: a signature that does not verify stops the
// run (mirroring a release the cluster will refuse helps nobody); a missing
// one is a warning saying what to download, since a cluster that does not
// verify signatures works without it.
func loadReleaseSignatures(src SignatureSource, releases []ReleaseInfo, warn func(string)) ([]ReleaseSignature, error) {
	if len(releases) == 0 {
		return nil, nil
	}
	say := func(s string) {
		if warn != nil {
			warn(s)
		}
	}
	if src.Dir == "" {
		say(fmt.Sprintf("no release signatures imported (--signature-dir not given): cluster-resources/ will have no %s for the %d release(s); %s",
			SignatureConfigMapFile, len(releases), signature.MissingHelp(releases[0].Digest, "")))
		return nil, nil
	}
	var kr openpgp.EntityList
	if src.VerifyKey != "" {
		var err error
		if kr, err = signature.ReadKeyring(src.VerifyKey); err != nil {
			return nil, err
		}
	}
	var out []ReleaseSignature
	seen := map[string]bool{}
	for _, r := range releases {
		if seen[r.Digest] {
			continue // one payload listed by two channels
		}
		seen[r.Digest] = true
		sigs, err := signature.Load(src.Dir, r.Digest)
		if errors.Is(err, signature.ErrMissing) {
			say(fmt.Sprintf("release %s (%s): %v", r.Version, r.Architecture, err))
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("release %s: %w", r.Version, err)
		}
		if kr != nil {
			if err := signature.VerifyAll(sigs, kr, r.Digest); err != nil {
				return nil, fmt.Errorf("release %s (%s): %w: refusing to mirror a release whose signature does not verify; check --verify-key and the files in %s", r.Version, r.Digest, err, src.Dir)
			}
		}
		out = append(out, ReleaseSignature{Digest: r.Digest, Signatures: sigs})
	}
	return out, nil
}

// ReleaseSignatureFiles renders the ConfigMap the cluster-version operator
// reads release signatures from (openshift-config-managed, label
// release.openshift.io/verification-signatures), every release of the run
// in one object, as YAML and JSON. No signatures, no files.
func ReleaseSignatureFiles(sigs []ReleaseSignature) (map[string][]byte, error) {
	if len(sigs) == 0 {
		return nil, nil
	}
	rs := make([]clusterres.ReleaseSignatures, len(sigs))
	for i, s := range sigs {
		rs[i] = clusterres.ReleaseSignatures{Digest: s.Digest, Signatures: s.Signatures}
	}
	cm, err := clusterres.SignatureConfigMap(SignatureConfigMapName, rs...)
	if err != nil {
		return nil, err
	}
	y, err := clusterres.YAML(cm)
	if err != nil {
		return nil, err
	}
	j, err := json.MarshalIndent(cm, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("marshalling the signature ConfigMap: %w", err)
	}
	return map[string][]byte{SignatureConfigMapFile: y, SignatureConfigMapJSONFile: append(j, '\n')}, nil
}
