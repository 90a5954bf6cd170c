package orchestrate

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/airlock-mirror/airlock/internal/atomicfile"
	"github.com/airlock-mirror/airlock/internal/clusterres"
	"github.com/airlock-mirror/airlock/internal/mapping"
	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/release"
	"github.com/airlock-mirror/airlock/internal/release/signature"
)

// ReleaseRequest is one `release mirror` (oc adm release mirror naming):
// plain data the front-end fills from its flags.
type ReleaseRequest struct {
	From             ref.Ref
	To               ref.Ref
	ToRelease        *ref.Ref
	FromStore        bool // From is file:// in the store the engine reads
	KeepManifestList bool
	SkipReleaseImage bool
}

// ReleasePlan is a planned release mirror.
type ReleasePlan struct {
	Spec    release.MirrorSpec
	Payload *release.Payload
	Digest  string
	Plan    plan.Plan
}

// PlanRelease reads the payload of r.From and plans its mirror.
func PlanRelease(ctx context.Context, imgs Images, r ReleaseRequest) (*ReleasePlan, error) {
	payload, desc, err := release.Open(ctx, imgs, r.From)
	if err != nil {
		return nil, err
	}
	if desc.MediaType.IsIndex() && !r.KeepManifestList {
		return nil, fmt.Errorf("release image %s is a multi-arch manifest list: pass --keep-manifest-list to mirror it whole (tags end in -multi), or give the digest of one architecture's release image", r.From)
	}
	digest := desc.Digest.String()
	spec := release.MirrorSpec{
		Release: r.From.WithDigest(digest), Payload: payload, To: r.To, ToRelease: r.ToRelease,
		KeepManifestList: r.KeepManifestList || desc.MediaType.IsIndex(),
	}
	if r.FromStore {
		store := r.From.Repo()
		spec.FromStore = &store
	}
	p, err := release.PlanMirror(spec)
	if err != nil {
		return nil, err
	}
	if r.SkipReleaseImage {
		p.Items = p.Items[1:] // PlanMirror puts the release image first
	}
	return &ReleasePlan{Spec: spec, Payload: payload, Digest: digest, Plan: p}, nil
}

// ReleaseManifests are the files a registry release mirror writes.
type ReleaseManifests struct {
	IDMS, ICSP, Mapping string
	// ContentSources and DigestSources are the install-config.yaml sections.
	ContentSources, DigestSources string
}

// WriteReleaseManifests writes the IDMS, the ICSP and the verify mapping of
// a release mirror into dir. releaseRepo is the original repository of the
// release image ("" when unknown).
func WriteReleaseManifests(dir string, rp *ReleasePlan, releaseRepo string) (*ReleaseManifests, error) {
	pairs := release.MirrorPairs(rp.Spec, releaseRepo)
	ics, ids, err := release.InstallConfigSnippets(pairs)
	if err != nil {
		return nil, err
	}
	name := release.ResourceName(rp.Payload.Version)
	idms, icsp, err := release.ClusterResources(pairs, name)
	if err != nil {
		return nil, err
	}
	m := &ReleaseManifests{
		IDMS: filepath.Join(dir, "idms-"+name+".yaml"), ICSP: filepath.Join(dir, "icsp-"+name+".yaml"),
		Mapping: filepath.Join(dir, "mapping-"+name+".txt"), ContentSources: ics, DigestSources: ids,
	}
	for path, b := range map[string][]byte{m.IDMS: idms, m.ICSP: icsp, m.Mapping: mapping.Format(rp.Plan)} {
		// The mapping lets `airlock verify` check the mirror at any time.
		if err := atomicfile.Write(path, b, 0o644); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// WriteReleasePolicy writes the signature policy files of a release mirror
// (SignaturePolicyFiles: ClusterImagePolicy, registries.d, policy.json)
// into dir and returns their paths. The scopes are the release's source
// repositories, at repository scope as its IDMS.
func WriteReleasePolicy(dir string, rp *ReleasePlan, releaseRepo string, keys []clusterres.SigstoreKey, lookaside string) ([]string, error) {
	// The release image alone, as OpenShift's own "openshift" policy
	// scopes it: components are pinned by digest in the signed payload
	// and are not signed one by one, so scoping them would block them.
	var pairs []clusterres.Pair
	for _, pr := range release.MirrorPairs(rp.Spec, releaseRepo) {
		if releaseRepo == "" || pr.Source == releaseRepo {
			pairs = append(pairs, pr)
		}
	}
	files, err := SignaturePolicyFiles(pairs, clusterres.ScopeRepository, release.ResourceName(rp.Payload.Version),
		SignaturePolicy{Keys: keys, Lookaside: lookaside})
	if err != nil {
		return nil, fmt.Errorf("release %s signature policy: %w", rp.Payload.Version, err)
	}
	var paths []string
	for _, n := range []string{ClusterImagePolicyFile, RegistriesDFile, NodePolicyFile} {
		p := filepath.Join(dir, n)
		if err := atomicfile.Write(p, files[n], 0o644); err != nil {
			return nil, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// WriteSignatureConfigMap writes the ConfigMap the cluster-version operator
// reads release signatures from into dir and returns its path.
func WriteSignatureConfigMap(dir, digest string, sigs [][]byte) (string, error) {
	cm, err := signature.ConfigMap(digest, sigs)
	if err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(cm, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, signature.FileName(digest))
	return path, atomicfile.Write(path, append(b, '\n'), 0o644)
}

// StoredSignature is the signature ConfigMap a --to-dir run wrote into the
// store's config/ directory, if storeDir holds one for digest; "" otherwise.
func StoredSignature(storeDir, digest string) string {
	if storeDir == "" {
		return ""
	}
	p := filepath.Join(storeDir, "config", signature.FileName(digest))
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}
