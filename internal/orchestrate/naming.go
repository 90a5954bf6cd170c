package orchestrate

import (
	"path"
	"strings"

	"github.com/airlock-mirror/airlock/internal/ref"
)

// DigestTag is oc-mirror v2's tag for a digest-only image:
// "sha256-<hex>" (algorithm, dash, hex), so the manifest stays referenced.
func DigestTag(digest string) string {
	t := strings.Replace(digest, ":", "-", 1)
	if len(t) > 128 {
		t = t[:127]
	}
	return t
}

// DestFor is where src goes below root, as oc-mirror v2 names it: the
// source registry dropped and its path kept under root's path; the tag
// kept, a digest-only image tagged DigestTag, an image with neither (an
// oci:// layout) tagged latest. The result carries no digest: the engine
// checks the copy against the source digest and pushes by tag.
func DestFor(src, root ref.Ref) ref.Ref {
	out := ref.Ref{Transport: root.Transport, Registry: root.Registry}
	if out.Transport == "" {
		out.Transport = ref.Docker
	}
	p := src.Path
	if src.Transport == ref.OCI {
		// A layout directory is no repository name: its base name is.
		p = path.Base(strings.TrimRight(p, "/"))
	}
	out.Path = strings.Trim(path.Join(root.Path, p), "/")
	switch {
	case src.Tag != "":
		out.Tag = src.Tag
	case src.Digest != "":
		out.Tag = DigestTag(src.Digest)
	default:
		out.Tag = "latest"
	}
	return out
}

// FoldNested applies --max-nested-paths n to a registry destination: with
// more than n path components, the first n-1 stay and the rest are joined
// with "-" (oc-mirror's WithMaxNestedPaths). n <= 0 and non-registry
// destinations are returned unchanged.
func FoldNested(r ref.Ref, n int) ref.Ref {
	if n <= 0 || r.Transport != ref.Docker {
		return r
	}
	comps := strings.Split(r.Path, "/")
	if len(comps) <= n {
		return r
	}
	head := append([]string{}, comps[:n-1]...)
	r.Path = strings.Join(append(head, strings.Join(comps[n-1:], "-")), "/")
	return r
}

// Rebase moves a destination named below one root to the same place below
// another (store path -> registry prefix): the path is kept under the new
// root's path, tag and digest kept.
func Rebase(r, root ref.Ref) ref.Ref {
	out := r
	out.Transport, out.Registry = root.Transport, root.Registry
	if out.Transport == "" {
		out.Transport = ref.Docker
	}
	out.Path = strings.Trim(path.Join(root.Path, r.Path), "/")
	return out
}
