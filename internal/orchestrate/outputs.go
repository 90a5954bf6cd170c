package orchestrate

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/airlock-mirror/airlock/internal/atomicfile"
	"github.com/airlock-mirror/airlock/internal/clusterres"
	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
)

// category is oc-mirror's grouping of mirror sets: release, operator and
// generic images each get their own IDMS/ITMS object.
func category(k plan.Kind) string {
	switch k {
	case plan.KindRelease, plan.KindReleaseComponent:
		return "release"
	case plan.KindBundle, plan.KindRelated:
		return "operator"
	case plan.KindCatalog, plan.KindGraph:
		// Catalogs are reached through CatalogSources, the graph image
		// through the UpdateService: neither through mirror sets.
		return ""
	case plan.KindHelmChart:
		return "" // charts are pulled by helm from their mirror path, not redirected
	}
	return "generic"
}

// ClusterResources renders cluster-resources/ of a plan as the cluster
// sees it (original sources → final destinations) and the catalogs pushed:
// idms-oc-mirror.yaml (digest pulls), itms-oc-mirror.yaml (tag pulls), one
// cs-<name>.yaml CatalogSource and cc-<name>.yaml ClusterCatalog (OLM v1) per catalog. With maxNested > 0 the mirror
// entries are repository-scoped (folded paths no longer end with the
// source namespace), namespace-scoped where correct otherwise.
//
// With keys, it also writes the signature policy for the mirrored sources
// (SignaturePolicyFiles). Without keys nothing else changes.
func ClusterResources(cluster plan.Plan, catalogs []plan.Item, maxNested int, keys ...clusterres.SigstoreKey) (map[string][]byte, error) {
	scope := clusterres.ScopeNamespace
	if maxNested > 0 {
		scope = clusterres.ScopeRepository
	}
	files := map[string][]byte{}
	var idms, itms bytes.Buffer
	for _, cat := range []string{"release", "operator", "generic"} {
		pairs := clusterres.PairsFromPlan(cluster, func(it plan.Item) bool { return category(it.Kind) == cat })
		if len(pairs) == 0 {
			continue
		}
		if it := releaseTagPairs(cluster, cat); len(it) > 0 {
			// The release image is pulled by digest by the cluster-version
			// operator even when mirrored by tag (CLID-205).
			pairs = append(pairs, it...)
		}
		ds, err := clusterres.ImageDigestMirrorSets(pairs, clusterres.SetOptions{Name: "idms-" + cat, Scope: scope})
		if err != nil {
			return nil, err
		}
		if len(ds) > 0 {
			b, err := clusterres.YAML(ds...)
			if err != nil {
				return nil, err
			}
			idms.Write(b)
		}
		ts, err := clusterres.ImageTagMirrorSets(pairs, clusterres.SetOptions{Name: "itms-" + cat, Scope: scope})
		if err != nil {
			return nil, err
		}
		if len(ts) > 0 {
			b, err := clusterres.YAML(ts...)
			if err != nil {
				return nil, err
			}
			itms.Write(b)
		}
	}
	if idms.Len() > 0 {
		files["idms-oc-mirror.yaml"] = idms.Bytes()
	}
	if itms.Len() > 0 {
		files["itms-oc-mirror.yaml"] = itms.Bytes()
	}
	for _, it := range cluster.Items {
		if it.Kind != plan.KindGraph || len(it.Dests) == 0 || !isRegistryRef(it.Dests[0]) {
			continue
		}
		d := it.Dests[0]
		root := strings.TrimSuffix(strings.TrimSuffix(d.Path, GraphImageRepo), "/")
		releases := d.Repo()
		releases.Path = strings.TrimPrefix(root+"/openshift/release-images", "/")
		b, err := clusterres.YAML(clusterres.NewUpdateService(releases.Name(), d.Name()))
		if err != nil {
			return nil, err
		}
		files["updateService.yaml"] = b
	}
	for _, c := range catalogs {
		d := c.Dests[0]
		name := catalogSourceName(d)
		cs, err := clusterres.NewCatalogSource(clusterres.CatalogSourceOptions{Name: name, Image: d.Name()})
		if err != nil {
			return nil, fmt.Errorf("catalog %s: %w", c.Source, err)
		}
		b, err := clusterres.YAML(cs)
		if err != nil {
			return nil, err
		}
		files[name+".yaml"] = b
		// OLM v1 reaches the same image through a ClusterCatalog.
		ccName := "cc-" + strings.TrimPrefix(name, "cs-")
		cc, err := clusterres.NewClusterCatalog(ccName, d.Name())
		if err != nil {
			return nil, fmt.Errorf("catalog %s: %w", c.Source, err)
		}
		if b, err = clusterres.YAML(cc); err != nil {
			return nil, err
		}
		files[ccName+".yaml"] = b
	}
	if len(keys) > 0 {
		// The images the mirror sets redirect. Not catalogs: a filtered
		// catalog is rebuilt (a new digest nobody signed) and pulled by its
		// mirror name; not Helm charts, which no node pulls.
		pairs := clusterres.PairsFromPlan(cluster, func(it plan.Item) bool { return category(it.Kind) != "" })
		pol, err := SignaturePolicyFiles(pairs, scope, "airlock", SignaturePolicy{Keys: keys})
		if err != nil {
			return nil, err
		}
		maps.Copy(files, pol)
	}
	return files, nil
}

// catalogSourceName is oc-mirror v2's CatalogSource name for a catalog
// at d: cs-<last path component>-<first 12 characters of the tag, or 0>.
func catalogSourceName(d ref.Ref) string {
	suffix := d.Tag
	if len(suffix) > 12 {
		suffix = suffix[:12]
	}
	if suffix == "" {
		suffix = "0"
	}
	return clusterres.SanitizeName("cs-"+path.Base(d.Path)+"-"+suffix, 63)
}

// applyCatalogSourceTemplates replaces the generated cs-*.yaml of each
// catalog whose operator entry has a targetCatalogSourceTemplate.
func applyCatalogSourceTemplates(files map[string][]byte, catalogs []plan.Item, ts map[string]csTemplate) error {
	for _, c := range catalogs {
		t, ok := templateFor(ts, c.Origin.File)
		if !ok {
			continue
		}
		name := catalogSourceName(c.Dests[0])
		b, err := t.render(name, c.Dests[0].Name())
		if err != nil {
			return err
		}
		files[name+".yaml"] = b
	}
	return nil
}

// Signature policy file names under cluster-resources/.
const (
	ClusterImagePolicyFile = "cip-airlock.yaml"
	ImagePolicyFile        = "ip-airlock.yaml"
	RegistriesDFile        = "sigstore-registries-airlock.yaml"
	NodePolicyFile         = "containers-policy-airlock.json"
)

// SignaturePolicy is what the signature policy files are made of: the
// --signature-key, --image-policy-namespace and --signature-lookaside
// flags of mirror, sync and release mirror.
type SignaturePolicy struct {
	Keys []clusterres.SigstoreKey
	// Namespaces, when set, get namespaced ImagePolicy objects
	// (ImagePolicyFile) instead of the ClusterImagePolicy: the keys are then
	// required for the pods of those namespaces only, so one team can
	// enforce its signatures without refusing the same images elsewhere.
	Namespaces []string
	// Lookaside is the URL OpenPGP signatures are served from, added to
	// every registries.d entry.
	Lookaside string
	// OpenPGP are the pairs of the images that carry OpenPGP (atomic)
	// signatures, the releases whose signatures were imported: their
	// mirrors get a registries.d entry with Lookaside even when no cosign
	// signature covers them.
	OpenPGP []clusterres.Pair
}

// Kind is the policy object kind written: ImagePolicy with Namespaces,
// ClusterImagePolicy otherwise.
func (sp SignaturePolicy) Kind() string {
	if len(sp.Namespaces) > 0 {
		return "ImagePolicy"
	}
	return "ClusterImagePolicy"
}

// File is the cluster-resources file the policy objects go into.
func (sp SignaturePolicy) File() string {
	if len(sp.Namespaces) > 0 {
		return ImagePolicyFile
	}
	return ClusterImagePolicyFile
}

// SignaturePolicyFiles renders, for the source scopes of pairs (the images
// carrying cosign signatures), the policy objects (OpenShift 4.21+: the
// cluster then admits an image only with a sigstore signature by every
// key): ClusterImagePolicy objects named cip-<base>-N, or with
// sp.Namespaces ImagePolicy objects ip-<base>-N in each namespace; the
// registries.d file that makes a node read the cosign signatures airlock
// copied into the mirror (with sp.Lookaside, where OpenPGP signatures are
// served from, on every entry, and an entry with it for each mirror of
// sp.OpenPGP), and the policy.json fragment for nodes without the
// machine-config operator (node-wide: a plain node has no namespaces).
// Without keys, or without cosign-signed pairs, only the registries.d file
// is written (for sp.OpenPGP).
func SignaturePolicyFiles(pairs []clusterres.Pair, scope clusterres.Scope, base string, sp SignaturePolicy) (map[string][]byte, error) {
	rd, err := clusterres.RegistriesDConfig(pairs, sp.OpenPGP, scope, sp.Lookaside)
	if err != nil {
		return nil, err
	}
	rdb, err := rd.YAML()
	if err != nil {
		return nil, err
	}
	if len(sp.Keys) == 0 || len(pairs) == 0 {
		return map[string][]byte{RegistriesDFile: rdb}, nil
	}
	scopes := clusterres.PolicyScopes(pairs, scope)
	var objs []any
	if len(sp.Namespaces) == 0 {
		cips, err := clusterres.ClusterImagePolicies(scopes, clusterres.PolicyOptions{Name: "cip-" + base, Keys: sp.Keys})
		if err != nil {
			return nil, err
		}
		for _, c := range cips {
			objs = append(objs, c)
		}
	}
	seen := map[string]bool{}
	for _, ns := range sp.Namespaces {
		if seen[ns] {
			return nil, fmt.Errorf("--image-policy-namespace %s given twice", ns)
		}
		seen[ns] = true
		ips, err := clusterres.ImagePolicies(scopes, clusterres.PolicyOptions{Name: "ip-" + base, Namespace: ns, Keys: sp.Keys})
		if err != nil {
			return nil, err
		}
		for _, ip := range ips {
			objs = append(objs, ip)
		}
	}
	pol, err := clusterres.YAML(objs...)
	if err != nil {
		return nil, err
	}
	np, err := clusterres.NodePolicy(scopes, clusterres.NodePolicyOptions{Keys: sp.Keys})
	if err != nil {
		return nil, err
	}
	npb, err := np.JSON()
	if err != nil {
		return nil, err
	}
	return map[string][]byte{sp.File(): pol, RegistriesDFile: rdb, NodePolicyFile: npb}, nil
}

// releaseTagPairs are the digest pairs of release images mirrored by tag.
func releaseTagPairs(p plan.Plan, cat string) []clusterres.Pair {
	if cat != "release" {
		return nil
	}
	var out []clusterres.Pair
	for _, pr := range clusterres.PairsFromPlan(p, func(it plan.Item) bool { return it.Kind == plan.KindRelease }) {
		if !pr.Digest {
			pr.Digest, pr.Tag = true, false
			out = append(out, pr)
		}
	}
	return out
}

// writeClusterResources replaces DIR/working-dir/cluster-resources/ with
// the resources of res (the directory is rebuilt on every run, as
// oc-mirror does, so it never mixes two runs).
func writeClusterResources(o Options, res *Result) error {
	files, err := ClusterResources(res.Cluster, res.Catalogs, o.MaxNestedPaths)
	if err == nil && (len(o.SignatureKeys) > 0 || o.Lookaside != "") {
		err = addSignaturePolicy(files, o, res)
	}
	if err == nil && len(res.templates) > 0 {
		err = applyCatalogSourceTemplates(files, res.Catalogs, res.templates)
	}
	if err == nil {
		var sigs map[string][]byte
		if sigs, err = ReleaseSignatureFiles(res.Signatures); err == nil {
			maps.Copy(files, sigs)
		}
	}
	if err != nil {
		return fmt.Errorf("generating cluster resources: %w", err)
	}
	dir := filepath.Join(WorkingDir(o.Dir), "cluster-resources")
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := filepath.Join(dir, n)
		if err := atomicfile.Write(p, files[n], 0o644); err != nil {
			return err
		}
		res.Files = append(res.Files, p)
	}
	return nil
}

func isRegistryRef(r ref.Ref) bool { return r.Transport == ref.Docker || r.Transport == "" }

// addSignaturePolicy adds, with --signature-key, the ClusterImagePolicy or
// ImagePolicy objects (and their node files) for the images of the run
// that carry a cosign signature, each repository its own scope: a scope
// over an unsigned image would make the cluster refuse it, so unsigned
// images (catalogs rebuilt here, partner images without signatures) stay
// out and are counted in a warning. The registries.d file also lists, with
// --signature-lookaside, the mirrors of the release images whose OpenPGP
// signatures were imported (--signature-dir, or carried in the
// mirror-to-disk record), cosign-signed or not; with --signature-lookaside
// alone it is the only file.
func addSignaturePolicy(files map[string][]byte, o Options, res *Result) error {
	sp := SignaturePolicy{Keys: o.SignatureKeys, Namespaces: o.ImagePolicyNamespaces, Lookaside: o.Lookaside}
	kind := sp.Kind()
	signed := map[string]bool{}
	if res.Report != nil {
		for _, it := range res.Report.Items {
			if it.Signed && len(it.Dests) > 0 {
				signed[it.Dests[0].Ref.String()] = true
			}
		}
	}
	openpgp := map[string]bool{}
	for _, s := range res.Signatures {
		if len(s.Signatures) > 0 {
			openpgp[s.Digest] = true
		}
	}
	var keep, pgp plan.Plan
	var others []plan.Item
	repos := map[string]bool{}
	releases := 0
	for _, it := range res.Cluster.Items {
		if category(it.Kind) == "" || len(it.Dests) == 0 {
			continue
		}
		if it.Kind == plan.KindRelease && openpgp[it.Digest] {
			pgp.Add(it)
		}
		if signed[it.Dests[0].String()] {
			keep.Add(it)
			repos[it.Source.Repository()] = true
			if category(it.Kind) == "release" {
				releases++
			}
		} else {
			others = append(others, it)
		}
	}
	warn := func(s string) {
		if o.Warn != nil {
			o.Warn(s)
		}
	}
	if len(pgp.Items) > 0 && sp.Lookaside == "" {
		warn(fmt.Sprintf("%d release images carry OpenPGP signatures only the signature ConfigMap holds: the registries.d file has no lookaside for their mirrors; give --signature-lookaside URL where they are served (URL/REPOSITORY@sha256=HEX/signature-N) for nodes that verify them", len(pgp.Items)))
		pgp = plan.Plan{}
	}
	if len(sp.Keys) == 0 {
		// --signature-lookaside alone: the registries.d file, no policy.
		keep = plan.Plan{}
		if len(pgp.Items) == 0 {
			warn("--signature-lookaside: no mirrored release carries imported OpenPGP signatures (--signature-dir), so no registries.d file was written")
			return nil
		}
	} else {
		unsigned := len(others)
		for _, it := range others {
			if repos[it.Source.Repository()] {
				warn(fmt.Sprintf("--signature-key: %s is unsigned but shares its repository with signed images: the %s scope %s will make the cluster refuse it", it.Source, kind, it.Source.Repository()))
			}
		}
		if len(keep.Items) == 0 {
			warn(fmt.Sprintf("--signature-key: no mirrored image carries a signature, so no %s was written (it would make the cluster refuse every image)", kind))
			if len(pgp.Items) == 0 {
				return nil
			}
		} else if unsigned > 0 {
			warn(fmt.Sprintf("--signature-key: the %s covers the repositories of the %d signed images; %d unsigned images stay outside it", kind, len(keep.Items), unsigned))
		}
		if releases > 0 && len(sp.Namespaces) > 0 {
			// Release images run in the openshift-* namespaces of the
			// cluster's own operators; a policy in the user's namespaces does
			// not reach them.
			warn(fmt.Sprintf("--image-policy-namespace: %d signed release images are covered only for pods of %s; the cluster's own operators pull them elsewhere (run without --image-policy-namespace for a ClusterImagePolicy)", releases, strings.Join(sp.Namespaces, ", ")))
		}
	}
	sp.OpenPGP = clusterres.PairsFromPlan(pgp, nil)
	pol, err := SignaturePolicyFiles(clusterres.PairsFromPlan(keep, nil), clusterres.ScopeRepository, "airlock", sp)
	if err != nil {
		return err
	}
	maps.Copy(files, pol)
	return nil
}
