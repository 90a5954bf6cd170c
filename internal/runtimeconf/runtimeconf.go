// Package runtimeconf writes the node-level mirror configuration of
// container runtimes outside OpenShift, from the same mirror rules airlock
// writes as IDMS/ITMS: containerd's certs.d/HOST/hosts.toml, the
// registries.conf drop-in of CRI-O, podman and skopeo
// (containers-registries.conf(5) v2 format with [[registry.mirror]]), and
// the registries.yaml of k3s and RKE2.
//
// The functions are pure and their output is sorted, so they are golden
// tested; the tests also read every file back with the library the runtime
// itself uses (containerd's remotes/docker/config, containers/image's
// sysregistriesv2) and pull through it from a real registry.
package runtimeconf

import (
	"fmt"
	"sort"
	"strings"

	"github.com/airlock-mirror/airlock/internal/clusterres"
)

// File is one generated file, Path relative to the output directory.
type File struct {
	Path string
	Data []byte
}

// Options are shared by the generators.
type Options struct {
	// Rules are the mirror rules (from mirror sets, or built from a mapping).
	Rules []clusterres.Rule
	// CAFile is the path, on the node, of the PEM CA bundle that signed the
	// mirror registries' certificates; empty uses the system trust.
	CAFile string
}

// registryPrefix is one source registry host mirrored whole to one prefix
// (host[/path]) per mirror: the only mapping containerd and k3s express.
type registryPrefix struct {
	host     string
	prefixes []string
	digest   bool
	tag      bool
}

// byRegistry turns rules into per-registry prefixes. A rule narrower than a
// registry (source host/path) is accepted when each mirror keeps that path
// ("<prefix>/<path>", oc-mirror's naming), since the registry-wide prefix
// then finds the same images; otherwise the rule cannot be expressed and
// the error names it.
func byRegistry(rules []clusterres.Rule, runtime string) ([]registryPrefix, error) {
	by := map[string]*registryPrefix{}
	for _, r := range rules {
		host, path, _ := strings.Cut(r.Source, "/")
		if strings.HasPrefix(host, "*.") {
			return nil, fmt.Errorf("%s: %s %s source %s: wildcard sources cannot be expressed; list the registries", runtime, r.Kind, r.Object, r.Source)
		}
		rp := by[host]
		if rp == nil {
			rp = &registryPrefix{host: host}
			by[host] = rp
		}
		if r.Digest() {
			rp.digest = true
		} else {
			rp.tag = true
		}
		for _, m := range r.Mirrors {
			prefix := m
			if path != "" {
				if !strings.HasSuffix(m, "/"+path) || len(m) == len(path)+1 {
					return nil, fmt.Errorf("%s mirrors whole registries: %s %s maps %s to %s, which does not keep the path %q; mirror with the source path kept (airlock mirror, oc-mirror naming) or use registries.conf", runtime, r.Kind, r.Object, r.Source, m, path)
				}
				prefix = strings.TrimSuffix(m, "/"+path)
			}
			if !containsString(rp.prefixes, prefix) {
				rp.prefixes = append(rp.prefixes, prefix)
			}
		}
	}
	out := make([]registryPrefix, 0, len(by))
	for _, rp := range by {
		if len(rp.prefixes) == 0 {
			return nil, fmt.Errorf("%s: registry %s has no mirrors", runtime, rp.host)
		}
		out = append(out, *rp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].host < out[j].host })
	return out, nil
}

func containsString(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}

// Containerd writes certs.d/<upstream host>/hosts.toml for each source
// registry: the mirror endpoints in order (pull and resolve only, so pushes
// never go to a mirror), with override_path because the mirror prefix
// carries its own path, and the CA when given. containerd reads them when
// its CRI config sets config_path = "/etc/containerd/certs.d".
func Containerd(o Options) ([]File, error) {
	regs, err := byRegistry(o.Rules, "containerd")
	if err != nil {
		return nil, err
	}
	var files []File
	for _, rp := range regs {
		var b strings.Builder
		fmt.Fprintf(&b, "# Written by airlock: pulls of %s go to its mirror.\n", rp.host)
		fmt.Fprintf(&b, "server = %s\n", tomlString("https://"+upstreamServer(rp.host)))
		for _, p := range rp.prefixes {
			host, path, _ := strings.Cut(p, "/")
			url := "https://" + host + "/v2"
			if path != "" {
				url += "/" + path
			}
			fmt.Fprintf(&b, "\n[host.%s]\n", tomlString(url))
			b.WriteString("  capabilities = [\"pull\", \"resolve\"]\n")
			if o.CAFile != "" {
				fmt.Fprintf(&b, "  ca = %s\n", tomlString(o.CAFile))
			}
			b.WriteString("  override_path = true\n")
		}
		files = append(files, File{Path: "certs.d/" + rp.host + "/hosts.toml", Data: []byte(b.String())})
	}
	return files, nil
}

// upstreamServer is the host containerd contacts when no mirror answers;
// Docker Hub's API lives on registry-1.docker.io.
func upstreamServer(host string) string {
	if host == "docker.io" {
		return "registry-1.docker.io"
	}
	return host
}

// RegistriesConf writes one registries.conf drop-in (for
// /etc/containers/registries.conf.d/) with a [[registry]] per rule source
// and its [[registry.mirror]] entries, as the machine-config operator
// renders IDMS and ITMS: digest-only rules get pull-from-mirror =
// "digest-only", tag-only rules "tag-only", and NeverContactSource
// blocks the source.
func RegistriesConf(o Options) ([]File, error) {
	type entry struct {
		mirrors []string
		digest  bool
		tag     bool
		block   bool
	}
	by := map[string]*entry{}
	for _, r := range o.Rules {
		if len(r.Mirrors) == 0 {
			return nil, fmt.Errorf("registries.conf: %s %s source %s has no mirrors", r.Kind, r.Object, r.Source)
		}
		e := by[r.Source]
		if e == nil {
			e = &entry{}
			by[r.Source] = e
		}
		for _, m := range r.Mirrors {
			if !containsString(e.mirrors, m) {
				e.mirrors = append(e.mirrors, m)
			}
		}
		if r.Digest() {
			e.digest = true
		} else {
			e.tag = true
		}
		if r.Policy == "NeverContactSource" {
			e.block = true
		}
	}
	srcs := make([]string, 0, len(by))
	for s := range by {
		srcs = append(srcs, s)
	}
	sort.Strings(srcs)
	var b strings.Builder
	b.WriteString("# Written by airlock: mirrors for CRI-O, podman, skopeo and buildah.\n")
	b.WriteString("# Install as /etc/containers/registries.conf.d/99-airlock-mirror.conf\n")
	for _, s := range srcs {
		e := by[s]
		fmt.Fprintf(&b, "\n[[registry]]\n  prefix = %s\n  location = %s\n", tomlString(s), tomlString(s))
		if e.block {
			b.WriteString("  blocked = true\n")
		}
		pull := ""
		switch {
		case e.digest && !e.tag:
			pull = "digest-only"
		case e.tag && !e.digest:
			pull = "tag-only"
		}
		for _, m := range e.mirrors {
			fmt.Fprintf(&b, "\n  [[registry.mirror]]\n    location = %s\n", tomlString(m))
			if pull != "" {
				fmt.Fprintf(&b, "    pull-from-mirror = %s\n", tomlString(pull))
			}
		}
	}
	return []File{{Path: "registries.conf.d/99-airlock-mirror.conf", Data: []byte(b.String())}}, nil
}

// K3s writes registries.yaml for k3s and RKE2 (/etc/rancher/k3s/ or
// /etc/rancher/rke2/): one mirrors entry per source registry whose
// endpoints are the mirror hosts and whose rewrite puts the mirror's path
// in front of the repository, and a configs entry per mirror host with the
// CA. k3s rewrites per registry, not per endpoint, so a registry mirrored
// under two different paths is refused.
func K3s(o Options) ([]File, error) {
	regs, err := byRegistry(o.Rules, "k3s registries.yaml")
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString("# Written by airlock: install as /etc/rancher/k3s/registries.yaml (RKE2: /etc/rancher/rke2/registries.yaml)\n")
	b.WriteString("mirrors:\n")
	mirrorHosts := map[string]bool{}
	for _, rp := range regs {
		path := ""
		for i, p := range rp.prefixes {
			_, pp, _ := strings.Cut(p, "/")
			if i > 0 && pp != path {
				return nil, fmt.Errorf("k3s registries.yaml: registry %s is mirrored under two paths (%s); k3s rewrites per registry", rp.host, strings.Join(rp.prefixes, ", "))
			}
			path = pp
		}
		fmt.Fprintf(&b, "  %s:\n    endpoint:\n", yamlString(rp.host))
		for _, p := range rp.prefixes {
			host, _, _ := strings.Cut(p, "/")
			mirrorHosts[host] = true
			fmt.Fprintf(&b, "      - %s\n", yamlString("https://"+host))
		}
		if path != "" {
			fmt.Fprintf(&b, "    rewrite:\n      %s: %s\n", yamlString("^(.*)$"), yamlString(path+"/$1"))
		}
	}
	if o.CAFile != "" {
		hosts := make([]string, 0, len(mirrorHosts))
		for h := range mirrorHosts {
			hosts = append(hosts, h)
		}
		sort.Strings(hosts)
		b.WriteString("configs:\n")
		for _, h := range hosts {
			fmt.Fprintf(&b, "  %s:\n    tls:\n      ca_file: %s\n", yamlString(h), yamlString(o.CAFile))
		}
	}
	return []File{{Path: "registries.yaml", Data: []byte(b.String())}}, nil
}

// yamlString double-quotes s (a JSON string is a valid YAML scalar).
func yamlString(s string) string {
	return tomlString(s)
}

// RulesFromPairs turns the source → mirror repository pairs of a mapping
// or plan into rules at repository scope: a digest rule for pairs pulled
// by digest, a tag rule for pairs pulled by tag.
func RulesFromPairs(pairs []clusterres.Pair) []clusterres.Rule {
	var out []clusterres.Rule
	for _, digest := range []bool{true, false} {
		var sel []clusterres.Pair
		for _, p := range pairs {
			if (digest && p.Digest) || (!digest && p.Tag) {
				sel = append(sel, p)
			}
		}
		kind, obj := "ImageDigestMirrorSet", "mapping-digest"
		if !digest {
			kind, obj = "ImageTagMirrorSet", "mapping-tag"
		}
		for _, m := range clusterres.Entries(sel, clusterres.ScopeRepository) {
			out = append(out, clusterres.Rule{Kind: kind, Object: obj, Source: m.Source, Mirrors: m.Mirrors})
		}
	}
	return out
}
