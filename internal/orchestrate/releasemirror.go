package orchestrate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/airlock-mirror/airlock/internal/atomicfile"
	"github.com/airlock-mirror/airlock/internal/clusterres"
	"github.com/airlock-mirror/airlock/internal/engine"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/release"
	"github.com/airlock-mirror/airlock/internal/release/signature"
	"github.com/airlock-mirror/airlock/internal/report"
)

// ReleaseMirrorOptions are one `release mirror` run (oc adm release mirror
// semantics): plain data the front-end fills from its flags, plus the
// engine and where messages go.
type ReleaseMirrorOptions struct {
	// ReleaseRequest names what is copied where; FromStore is set from
	// FromDir.
	ReleaseRequest
	// ToDir writes the release into this local store (Engine's store)
	// instead of a registry; FromDir reads it from one.
	ToDir, FromDir string
	// ToManifests receives the mirror sets, the verify mapping, the
	// signature ConfigMap and the signature policy (registry mirrors).
	ToManifests string
	// ReleaseSource is the original repository of the release image, for
	// the mirror sections when reading FromDir ("": From's repository).
	ReleaseSource string
	DryRun        bool
	// SignatureDir holds sha256=<hex>/signature-N files; VerifyKey, when
	// set, is the OpenPGP key they must verify against.
	SignatureDir, VerifyKey string
	// PrintMirror is which install-config sections to print: all, idms,
	// icsp or none.
	PrintMirror string
	// SignatureKeys (cosign public keys) add the ClusterImagePolicy,
	// registries.d and policy.json files; Lookaside goes into registries.d.
	SignatureKeys []clusterres.SigstoreKey
	Lookaside     string

	// Engine reads and copies; it is built for the run (store directory
	// ToDir or FromDir, DryRun as DryRun).
	Engine Engine
	// Out gets results and instructions, ErrOut progress and summaries,
	// Log warnings (slog.Default() when nil).
	Out, ErrOut io.Writer
	Log         *slog.Logger
}

// ReleaseMirrorResult is what a release mirror run did.
type ReleaseMirrorResult struct {
	Release *ReleasePlan
	Report  *engine.Report
	// Manifests are the files of a registry mirror (nil for ToDir and
	// DryRun).
	Manifests *ReleaseManifests
}

// ReleaseMirror reads the payload, checks its signatures, copies, then
// writes and prints what a cluster needs to use the mirror: with ToDir the
// signature ConfigMap and the upload command; for a registry the mirror
// sets, install-config sections, signature policy and ConfigMap.
func ReleaseMirror(ctx context.Context, o ReleaseMirrorOptions) (*ReleaseMirrorResult, error) {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	req := o.ReleaseRequest
	req.FromStore = o.FromDir != ""
	rp, err := PlanRelease(ctx, o.Engine, req)
	if err != nil {
		return nil, err
	}
	res := &ReleaseMirrorResult{Release: rp}
	payload, digest, spec := rp.Payload, rp.Digest, rp.Spec
	sigs, err := o.loadSignatures(digest)
	if err != nil {
		return res, err
	}
	fmt.Fprintf(o.ErrOut, "Mirroring release %s (%s, %d components) from %s to %s\n",
		payload.Version, payload.Architecture, len(payload.Components), o.From, o.destName())
	rep, runErr := o.Engine.Run(ctx, rp.Plan)
	var failed *engine.RunError
	if runErr != nil && !errors.As(runErr, &failed) {
		return res, fmt.Errorf("mirroring release %s: %w", payload.Version, runErr)
	}
	if rep == nil {
		return res, fmt.Errorf("mirroring release %s: the engine returned no report", payload.Version)
	}
	res.Report = rep
	if o.DryRun {
		report.DryRun(o.Out, rep)
	} else {
		report.Summary(o.ErrOut, rep)
	}
	if failed != nil {
		return res, fmt.Errorf("mirroring release %s: %w; re-run the same command: images already copied are skipped", payload.Version, runErr)
	}
	if o.DryRun {
		return res, nil
	}

	tagPrefix := spec.TagPrefix()
	out := o.Out
	if o.ToDir != "" {
		fmt.Fprintf(out, "\nSuccess\nRelease %s written to %s as file://%s:%s\n", payload.Version, o.ToDir, release.StoreRepo, tagPrefix)
		if sigs != nil {
			// The uploading run copies it from DIR/config (StoredSignature).
			if err := writeSignatureConfigMap(filepath.Join(o.ToDir, "config"), digest, sigs, out); err != nil {
				return res, err
			}
		}
		fmt.Fprintf(out, "\nTo upload the release to a registry, run:\n\n  airlock release mirror --from-dir=%s --from=file://%s:%s --release-source=%s --to=REGISTRY/REPOSITORY\n",
			o.ToDir, release.StoreRepo, tagPrefix, o.From.Repository())
		return res, nil
	}

	releaseRepo := o.ReleaseSource
	if releaseRepo == "" && o.From.Transport == ref.Docker {
		releaseRepo = o.From.Repository()
	}
	if releaseRepo == "" {
		o.Log.Warn("the original repository of the release image is unknown (reading a local store): the mirror sections only cover the components; pass --release-source, e.g. --release-source quay.io/openshift-release-dev/ocp-release")
	}
	fmt.Fprintf(out, "\nSuccess\n")
	if !o.SkipReleaseImage {
		fmt.Fprintf(out, "Update image:  %s\n", spec.ReleaseDestination())
	}
	fmt.Fprintf(out, "Mirror prefix: %s\n", o.To.Repository())
	m, err := WriteReleaseManifests(o.ToManifests, rp, releaseRepo)
	if err != nil {
		return res, err
	}
	res.Manifests = m
	switch o.PrintMirror {
	case "all":
		fmt.Fprintf(out, "\nTo use the new mirrored repository to install, add the following section to the install-config.yaml (OpenShift 4.14 and later):\n\n%s", m.DigestSources)
		fmt.Fprintf(out, "\nFor installers before 4.14, use instead:\n\n%s", m.ContentSources)
	case "idms":
		fmt.Fprintf(out, "\nTo use the new mirrored repository to install, add the following section to the install-config.yaml:\n\n%s", m.DigestSources)
	case "icsp":
		fmt.Fprintf(out, "\nTo use the new mirrored repository to install, add the following section to the install-config.yaml:\n\n%s", m.ContentSources)
	}
	fmt.Fprintf(out, "\nTo use the new mirrored repository for upgrades, apply the ImageDigestMirrorSet:\n\n  oc apply -f %s\n\n(clusters before 4.13: oc apply -f %s)\n", m.IDMS, m.ICSP)
	verifyDir := ""
	if o.FromDir != "" {
		verifyDir = " --dir " + o.FromDir
	}
	if len(o.SignatureKeys) > 0 {
		paths, err := WriteReleasePolicy(o.ToManifests, rp, releaseRepo, o.SignatureKeys, o.Lookaside)
		if err != nil {
			return res, err
		}
		fmt.Fprintf(out, "\nOpenShift 4.21 and later verify sigstore signatures: apply the ClusterImagePolicy so the cluster trusts the key the release was signed with:\n\n  oc apply -f %s\n\n(plain CRI-O/podman nodes: %s into /etc/containers/registries.d/, and merge %s into /etc/containers/policy.json)\n", paths[0], paths[1], paths[2])
	}
	fmt.Fprintf(out, "\nTo check the mirror at any time (every image, by digest):\n\n  airlock verify -f %s%s\n", m.Mapping, verifyDir)
	if sigs != nil {
		if err := writeSignatureConfigMap(o.ToManifests, digest, sigs, out); err != nil {
			return res, err
		}
	} else if stored := StoredSignature(o.FromDir, digest); stored != "" {
		data, err := os.ReadFile(stored)
		if err != nil {
			return res, fmt.Errorf("reading the stored release signature: %w", err)
		}
		path := filepath.Join(o.ToManifests, signature.FileName(digest))
		if err := atomicfile.Write(path, data, 0o644); err != nil {
			return res, err
		}
		fmt.Fprintf(out, "\nRelease signature ConfigMap (imported by the --to-dir run) copied; apply it so the cluster-version operator can verify the release offline:\n\n  oc apply -f %s\n", path)
	}
	return res, nil
}

func (o *ReleaseMirrorOptions) destName() string {
	if o.ToDir != "" {
		return o.ToDir + " (file://" + release.StoreRepo + ")"
	}
	return o.To.String()
}

// loadSignatures imports and verifies the release signatures. A missing
// signature is a warning with what to do, never silent and never fatal: a
// cluster that does not verify signatures works without one.
func (o *ReleaseMirrorOptions) loadSignatures(digest string) ([][]byte, error) {
	if o.SignatureDir == "" {
		if StoredSignature(o.FromDir, digest) != "" {
			return nil, nil // carried over from the --to-dir run; copied after the mirror
		}
		o.Log.Warn("no release signature imported (--signature-dir not given): " + signature.MissingHelp(digest, ""))
		return nil, nil
	}
	sigs, err := signature.Load(o.SignatureDir, digest)
	if errors.Is(err, signature.ErrMissing) {
		o.Log.Warn(err.Error())
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if o.VerifyKey != "" {
		kr, err := signature.ReadKeyring(o.VerifyKey)
		if err != nil {
			return nil, err
		}
		if err := signature.VerifyAll(sigs, kr, digest); err != nil {
			return nil, fmt.Errorf("%w: refusing to mirror a release whose signature does not verify; check --verify-key and the files in %s", err, o.SignatureDir)
		}
		fmt.Fprintf(o.ErrOut, "Verified %d release signature(s) for %s\n", len(sigs), digest)
	}
	return sigs, nil
}

// writeSignatureConfigMap writes the ConfigMap and says how to apply it.
func writeSignatureConfigMap(dir, digest string, sigs [][]byte, out io.Writer) error {
	path, err := WriteSignatureConfigMap(dir, digest, sigs)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nRelease signature ConfigMap written; apply it so the cluster-version operator can verify the release offline:\n\n  oc apply -f %s\n", path)
	return nil
}
