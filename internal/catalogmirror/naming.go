// Package catalogmirror turns an operator catalog into a plan.Plan the way
// `oc adm catalog mirror` does: the catalog image, every bundle image and
// every related image, each mapped to a destination named exactly as oc
// names it, so mapping.txt, ICSP/IDMS and CatalogSource files written by
// airlock can replace oc's in existing scripts and GitOps repositories.
//
// Everything here is pure: no network, no disk except the explicit
// WriteManifests. The engine copies the plan; every architecture of every
// referenced image is kept, because catalogs reference images by digest
// and a filtered manifest list would have another digest.
package catalogmirror

import (
	"fmt"
	"hash/fnv"
	"path"
	"strings"

	"github.com/airlock-mirror/airlock/internal/ref"
)

// DefaultMaxComponents is oc's default --max-components: registries such
// as quay.io accept only namespace/name, so deeper source paths are folded
// into the name with "-".
const DefaultMaxComponents = 2

// DigestTag is the tag oc gives a digest-only image at its destination:
// the FNV-32a hash of the full source reference, printed with %x (up to 8
// hex digits, not zero-padded). A tag is needed because a registry would
// garbage-collect (and Quay would hide) manifests nothing points at.
func DigestTag(src ref.Ref) string {
	h := fnv.New32a()
	h.Write([]byte(src.Name()))
	return fmt.Sprintf("%x", h.Sum32())
}

// Mount returns the destination of src under dest, as oc's catalog mirror
// names it:
//
//   - the source registry is dropped, its path kept below dest's path;
//   - with maxComponents > 0 and more path components than that, the first
//     maxComponents-1 stay and the rest are joined with "-"
//     (myregistry.com/olm + registry.redhat.io/openshift4/ose-oauth-proxy
//     => myregistry.com/olm/openshift4-ose-oauth-proxy); 0 means no limit;
//   - the tag is kept; a digest-only source gets DigestTag; a source with
//     neither gets "latest";
//   - the result never carries a digest (the copy is verified against the
//     source digest; the destination is pushed by tag).
//
// file:// destinations are never folded (a directory tree has no depth
// limit), as oc forces --max-components 0 for them.
func Mount(src, dest ref.Ref, maxComponents int) ref.Ref {
	out := ref.Ref{Transport: dest.Transport, Registry: dest.Registry}
	if out.Transport == "" {
		out.Transport = ref.Docker
	}
	var comps []string
	if dest.Path != "" {
		comps = append(comps, strings.Split(dest.Path, "/")...)
	}
	comps = append(comps, strings.Split(src.Path, "/")...)
	if dest.Transport == ref.File {
		maxComponents = 0
	}
	if maxComponents > 0 && len(comps) > maxComponents {
		head := comps[:maxComponents-1]
		tail := strings.Join(comps[maxComponents-1:], "-")
		comps = append(append([]string{}, head...), tail)
	}
	out.Path = path.Join(comps...)
	switch {
	case src.Tag != "":
		out.Tag = src.Tag
	case src.Digest != "":
		out.Tag = DigestTag(src)
	default:
		out.Tag = "latest"
	}
	return out
}

// IndexName is the name oc derives from a catalog image for the
// CatalogSource, ICSP/IDMS objects and the manifests directory: the path
// without its first component (the namespace), "/" replaced by "-"
// (registry.redhat.io/redhat/redhat-operator-index => redhat-operator-index).
func IndexName(index ref.Ref) string {
	p := index.Path
	if index.Transport == ref.OCI {
		p = path.Base(strings.TrimRight(p, "/"))
	} else if i := strings.Index(p, "/"); i >= 0 {
		p = p[i+1:]
	}
	return strings.ReplaceAll(p, "/", "-")
}

// fileRoot is the directory every related image of a file:// mirror is
// placed below: <dest>/<index path>, so that an upload from
// file://<dest>/<index path>:tag finds them by re-rooting the catalog's
// references under that same path.
func fileRoot(index *ref.Ref, dest ref.Ref) ref.Ref {
	if dest.Transport != ref.File || index == nil {
		return dest
	}
	r := dest
	r.Path = path.Join(dest.Path, index.Path)
	return r
}

// ParseDest parses the DEST argument of a catalog mirror: a registry
// host[:port] alone, a registry with a repository prefix
// (myregistry.com/olm), either optionally with docker://, or file://dir.
// ref.Parse alone would read a bare "quay.io" as the Docker Hub image
// docker.io/library/quay.io.
func ParseDest(s string) (ref.Ref, error) {
	bare := strings.TrimPrefix(s, "docker://")
	if !strings.Contains(bare, "://") && !strings.Contains(bare, "/") {
		if bare == "localhost" || strings.ContainsAny(bare, ".:") {
			// Let ref validate the host by parsing a dummy repository on it.
			r, err := ref.Parse(bare + "/x")
			if err != nil {
				return ref.Ref{}, fmt.Errorf("destination %q: %w", s, err)
			}
			return ref.Ref{Transport: ref.Docker, Registry: r.Registry}, nil
		}
		return ref.Ref{}, fmt.Errorf("destination %q: want a registry host (myregistry.com[:port]), a repository prefix (myregistry.com/olm) or file://dir", s)
	}
	r, err := ref.Parse(s)
	if err != nil {
		return ref.Ref{}, fmt.Errorf("destination %q: %w", s, err)
	}
	if r.Transport == ref.OCI {
		return ref.Ref{}, fmt.Errorf("destination %q: an OCI layout holds one repository; mirror to a registry or to file://dir", s)
	}
	if r.HasTagOrDigest() {
		return ref.Ref{}, fmt.Errorf("destination %q: give a registry or repository prefix without tag or digest; each image keeps its own tag", s)
	}
	return r, nil
}
