// Package mirror_test runs `airlock mirror -c` end to end between embedded
// registries: a release channel resolved on the REAL stable-4.13 update
// graph (served locally, two nodes pointed at synthetic payloads), a catalog
// of REAL community-operators packages filtered by version ranges, a Helm
// chart from an HTTP chart repository (withChart), additional images and a
// blocked image; mirror-to-disk, disk-to-mirror into a fresh registry,
// `airlock verify`, `helm pull oci://` of the mirrored chart, an incremental
// mirror-to-disk, and the compatibility commands producing the same digests
// (for everything but the chart, which oc does not mirror).
package mirror_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/airlock-mirror/airlock/internal/testutil/pgptest"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/operator-framework/operator-registry/alpha/declcfg"
	"sigs.k8s.io/yaml"

	"github.com/airlock-mirror/airlock/internal/catalog"
	"github.com/airlock-mirror/airlock/internal/catalogimage"
	"github.com/airlock-mirror/airlock/internal/deletion"
	"github.com/airlock-mirror/airlock/internal/engine"
	"github.com/airlock-mirror/airlock/internal/helm/helmtest"
	"github.com/airlock-mirror/airlock/internal/orchestrate"
	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/release/releasetest"
	"github.com/airlock-mirror/airlock/internal/testutil/clitest"
	"github.com/airlock-mirror/airlock/internal/testutil/gotool"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestMain(m *testing.M) { os.Exit(clitest.Main(m)) }

func shared(parts ...string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(append([]string{filepath.Dir(file), "..", "..", "..", "..", "shared", "testdata"}, parts...)...)
}

type fixture struct {
	src         *regtest.Registry
	graphURL    string
	rel1, rel2  *releasetest.Release
	catalogRef  string
	catalogDgst string
	web, db     string // additional images: by tag, by digest
	dbDigest    string
	blocked     string
	packageRefs map[string][]string // package -> image references in the pushed catalog

	// Set by withChart: the chart repository config adds to the imageset.
	helmRepo     string
	chartArchive []byte            // demo-1.2.0.tgz as the repository serves it
	chartImages  map[string]string // "repo:tag" -> digest of each image the chart names
}

// withChart serves the internal/helm demo chart as an HTTP chart repository
// (index.yaml with the archive's sha256, as `helm repo index` writes it),
// its values pointing at the 8 images it names (7 through oc-mirror's
// default paths, one through imagePaths), which are pushed to the source
// registry; config then adds it to the imageset under
// mirror.helm.repositories.
func (f *fixture) withChart(t *testing.T) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "demo")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("..", "..", "..", "internal", "helm", "testdata", "demo"))); err != nil {
		t.Fatal(err)
	}
	host := f.src.Host
	f.chartImages = map[string]string{}
	for i, repoTag := range []string{"demo/app:2.5.1", "library/busybox:1.36", "db/postgres:15", "agent/nginx:1.25",
		"tools/backup:v3", "tools/migrate:v3", "plugins/custom:4.0", "sidecar/proxy:0.9"} {
		img, err := synth.Image(int64(9100+i), synth.WithLayers(2), synth.WithLayerSize(1024))
		if err != nil {
			t.Fatal(err)
		}
		d, err := synth.Push(img, host+"/"+repoTag, remote.WithTransport(f.src.Transport))
		if err != nil {
			t.Fatal(err)
		}
		f.chartImages[repoTag] = d
	}
	values := fmt.Sprintf("image:\n  registry: %[1]s\n  repository: demo/app\n  tag: \"\"\ninit:\n  image: %[1]s/library/busybox:1.36\n"+
		"db:\n  image: %[1]s/db/postgres@%[2]s\nagent:\n  image: %[1]s/agent/nginx:1.25\nbackup:\n  image: %[1]s/tools/backup:v3\n"+
		"migrate:\n  image: %[1]s/tools/migrate:v3\ndebug:\n  enabled: false\n  image: %[1]s/tools/debug:never\n"+
		"plugin:\n  image: %[1]s/plugins/custom:4.0\nsidecar:\n  image: %[1]s/sidecar/proxy:0.9\n", host, f.chartImages["db/postgres:15"])
	if err := os.WriteFile(filepath.Join(dir, "values.yaml"), []byte(values), 0o644); err != nil {
		t.Fatal(err)
	}
	f.chartArchive = helmtest.Pack(t, dir, "demo")
	f.helmRepo = helmtest.ServeRepo(t, helmtest.Chart{Name: "demo", Version: "1.2.0", Archive: f.chartArchive})
}

// serveGraph serves the REAL stable-4.13 graph with the payloads of two
// 4.12 nodes replaced by the synthetic releases.
func serveGraph(t *testing.T, payloads map[string]string) string {
	data, err := os.ReadFile(shared("release", "cincinnati", "graph-amd64-stable-4.13.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g map[string]any
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, n := range g["nodes"].([]any) {
		node := n.(map[string]any)
		if p, ok := payloads[node["version"].(string)]; ok {
			node["payload"] = p
			found++
		}
	}
	if found != len(payloads) {
		t.Fatalf("graph: %d of %d versions found", found, len(payloads))
	}
	body, _ := json.Marshal(g)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("channel") != "stable-4.13" || r.URL.Query().Get("arch") != "amd64" {
			http.Error(w, `{"kind":"invalid_params"}`, http.StatusBadRequest)
			return
		}
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{src: regtest.Start(t), packageRefs: map[string][]string{}}
	host := f.src.Host
	var err error
	// Two releases sharing their first 4 components (blob dedup across releases).
	if f.rel1, err = releasetest.Build(host, releasetest.Options{Components: 4, Tag: "4.12.1-x86_64"}); err != nil {
		t.Fatal(err)
	}
	if f.rel2, err = releasetest.Build(host, releasetest.Options{Components: 6, Tag: "4.12.2-x86_64"}); err != nil {
		t.Fatal(err)
	}
	relRepo := host + "/openshift-release-dev/ocp-release@"
	f.graphURL = serveGraph(t, map[string]string{"4.12.1": relRepo + f.rel1.Digest, "4.12.2": relRepo + f.rel2.Digest})

	// A catalog of three REAL packages; their images synthetic.
	cfg := &declcfg.DeclarativeConfig{}
	for _, p := range []string{"ecr-secret-operator", "kairos-operator", "shipwright-operator"} {
		c, err := catalog.LoadFile(ctx, shared("catalogs", "community-operators-prod-v4.18", p, "catalog.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Merge(c.Config)
	}
	if _, _, err := synth.PushCatalogImages(host, cfg, 256, f.src.Transport, nil); err != nil {
		t.Fatal(err)
	}
	for _, b := range cfg.Bundles {
		f.packageRefs[b.Package] = append(f.packageRefs[b.Package], b.Image)
	}
	eng, err := engine.New(engine.Options{Transport: f.src.Transport})
	if err != nil {
		t.Fatal(err)
	}
	base, err := synth.Index(424242, []string{"linux/amd64", "linux/arm64"}, synth.WithLayerSize(256))
	if err != nil {
		t.Fatal(err)
	}
	baseRef := ref.MustParse(host + "/operator-framework/opm:v1.50.0")
	if err := eng.WriteIndex(ctx, baseRef, base); err != nil {
		t.Fatal(err)
	}
	f.catalogRef = host + "/redhat/community-operator-index:v4.18"
	built, err := catalogimage.Build(ctx, eng, baseRef, &catalog.Catalog{Config: cfg, Format: catalog.FormatFBC}, ref.MustParse(f.catalogRef))
	if err != nil {
		t.Fatal(err)
	}
	f.catalogDgst = built.Digest

	push := func(seed int64, reference string) string {
		img, err := synth.Image(seed, synth.WithLayerSize(512))
		if err != nil {
			t.Fatal(err)
		}
		d, err := synth.Push(img, reference, remote.WithTransport(f.src.Transport))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	f.web = host + "/apps/web:1.0"
	push(7001, f.web)
	f.dbDigest = push(7002, host+"/apps/db:untagged-later")
	f.db = host + "/apps/db@" + f.dbDigest
	f.blocked = host + "/unwanted/tool:2"
	push(7003, f.blocked)
	return f
}

// config writes an ImageSetConfiguration selecting the packages (and the
// chart of withChart, once called).
func (f *fixture) config(t *testing.T, dir string, packages ...string) string {
	t.Helper()
	ranges := map[string]string{
		"ecr-secret-operator": "      minVersion: 0.4.0\n      maxVersion: 0.4.1\n",
		"kairos-operator":     "      minVersion: 2.0.1\n      maxVersion: 2.1.0\n",
		"shipwright-operator": "",
	}
	var pk strings.Builder
	for _, p := range packages {
		fmt.Fprintf(&pk, "    - name: %s\n%s", p, ranges[p])
	}
	var chart string
	if f.helmRepo != "" {
		chart = fmt.Sprintf(`  helm:
    repositories:
    - name: demo-repo
      url: %s
      charts:
      - name: demo
        version: 1.2.0
        imagePaths: ["{.spec.custom[*].image}"]
`, f.helmRepo)
	}
	text := fmt.Sprintf(`apiVersion: mirror.openshift.io/v2alpha1
kind: ImageSetConfiguration
mirror:
  platform:
    channels:
    - name: stable-4.13
      minVersion: 4.12.1
      maxVersion: 4.12.2
  operators:
  - catalog: %s
    packages:
%s  additionalImages:
  - name: %s
  - name: %s
    targetRepo: custom/database
    targetTag: v2
  - name: %s
%s  blockedImages:
  - name: "^[^/]+/unwanted/"
`, f.catalogRef, pk.String(), f.web, f.db, f.blocked, chart)
	path := filepath.Join(dir, "imageset.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// replacer hides what changes between runs: the registry address and the
// digests of images built with a timestamp (release and catalog images).
func (f *fixture) replacer(more ...string) *strings.Replacer {
	return strings.NewReplacer(append([]string{f.src.Host, "SOURCE", f.rel1.Digest, "sha256:RELEASE-4.12.1",
		f.rel2.Digest, "sha256:RELEASE-4.12.2", f.catalogDgst, "sha256:CATALOG"}, more...)...)
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := clitest.Run(t, args...)
	if err != nil {
		t.Fatalf("airlock %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

var chartDigestRE = regexp.MustCompile(`(/helm/oci/[^@\s]+@)sha256:[0-9a-f]{64}`)

var blobsRE = regexp.MustCompile(`blobs: (\d+) copied, (\d+) mounted, (\d+) already present`)

func blobStats(t *testing.T, out string) (copied, present int) {
	t.Helper()
	m := blobsRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no blob summary in:\n%s", out)
	}
	c, _ := strconv.Atoi(m[1])
	p, _ := strconv.Atoi(m[3])
	return c, p
}

func storeBlobs(t *testing.T, dir string) map[string]bool {
	t.Helper()
	es, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]bool{}
	for _, e := range es {
		m[e.Name()] = true
	}
	return m
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update once)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from golden file; got:\n%s", path, got)
	}
}

func TestMirrorToDiskThenDiskToMirror(t *testing.T) {
	f := newFixture(t)
	f.withChart(t)
	work := t.TempDir()
	dir := filepath.Join(work, "store")
	cfg := f.config(t, work, "ecr-secret-operator", "kairos-operator")

	// Dry run first: mapping and missing list, nothing copied.
	run(t, "mirror", "-c", cfg, "file://"+dir, "--graph-url", f.graphURL, "--dry-run")
	mapping, err := os.ReadFile(filepath.Join(dir, "working-dir", "dry-run", "mapping.txt"))
	if err != nil {
		t.Fatal(err)
	}
	missing, err := os.ReadFile(filepath.Join(dir, "working-dir", "dry-run", "missing.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(storeBlobs(t, dir)) != 0 {
		t.Fatal("--dry-run copied blobs into the store")
	}
	// The chart's source is its OCI layout in the working-dir; its digest
	// changes with the source registry's port its values name.
	r := f.replacer(dir, "STORE")
	golden(t, "m2d-dry-run-mapping.txt", sortLines(chartDigestRE.ReplaceAllString(r.Replace(string(mapping)), "${1}sha256:CHART")))
	// Nothing is in the store yet, so every copy is missing (the rebuilt
	// catalog is built, not copied: it is in the mapping only).
	if got, want := strings.Count(string(missing), "\n"), strings.Count(string(mapping), "\n")-1; got != want {
		t.Errorf("missing.txt has %d lines, want %d (every copy but the rebuilt catalog)", got, want)
	}

	// The release signatures, as downloaded from mirror.openshift.com: one
	// OpenPGP-signed claim per release digest, checked with --verify-key.
	sigDir, keyFile, sigs := releaseSignatures(t, f.rel1.Digest, f.rel2.Digest)
	out := run(t, "mirror", "-c", cfg, "file://"+dir, "--graph-url", f.graphURL, "--signature-dir", sigDir, "--verify-key", keyFile)
	if !strings.Contains(out, "blocked: "+f.blocked) {
		t.Errorf("the blocked image is not reported:\n%s", out)
	}
	if strings.Contains(string(mapping), "unwanted") {
		t.Errorf("the blocked image is in the plan:\n%s", mapping)
	}
	rec, err := orchestrate.ReadRecord(dir)
	if err != nil {
		t.Fatal(err)
	}

	// Disk to mirror into a fresh registry, reading only the store: the
	// source registry is stopped first, so nothing can come from it.
	dst := regtest.Start(t)
	if err := f.src.Server.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	run(t, "mirror", "-c", cfg, "--from", "file://"+dir, "docker://"+dst.Host+"/mirror")

	// Every planned digest is at the destination.
	vmap := filepath.Join(dir, "working-dir", "mapping.txt")
	vout := run(t, "verify", "-f", vmap)
	lines := strings.Count(mustRead(t, vmap), "\n")
	if lines == 0 || !strings.Contains(vout, strconv.Itoa(lines)) {
		t.Errorf("verify of %d mappings:\n%s", lines, vout)
	}
	var catalogs, kinds = 0, map[string]int{}
	for _, it := range rec.Plan.Items {
		kinds[string(it.Kind)]++
		if it.Digest == "" {
			t.Errorf("recorded item %s has no digest", it.Source)
		}
		if it.Kind == "catalog" {
			catalogs++
			d := orchestrate.Rebase(it.Dests[0], ref.MustParse("docker://"+dst.Host+"/mirror"))
			if got := dst.DigestOf(t, d.String()); got != it.Digest {
				t.Errorf("catalog %s: digest %s, want the rebuilt %s", d, got, it.Digest)
			}
			run(t, "verify", "--dir", dir, it.Dests[0].String(), d.String())
		}
	}
	if catalogs != 1 || kinds["release"] != 2 || kinds["release-component"] == 0 || kinds["operator-bundle"] == 0 ||
		kinds["image"] != 2+len(f.chartImages) || kinds["helm-chart"] != 1 {
		t.Errorf("recorded plan kinds: %v", kinds)
	}
	// The chart: stored and pushed as an OCI helm chart with the digest the
	// plan recorded, every image it names at the mirror with its source
	// digest, and the real helm CLI pulls from the mirror the very archive
	// the chart repository served.
	got := destDigests(t, dst, vmap)
	for repoTag, d := range f.chartImages {
		if !got[d] {
			t.Errorf("chart image %s (%s) is not at the mirror", repoTag, d)
		}
	}
	var chart *plan.Item
	for i, it := range rec.Plan.Items {
		if it.Kind == plan.KindHelmChart {
			chart = &rec.Plan.Items[i]
		}
	}
	if chart == nil {
		t.Fatal("no chart in the recorded plan")
	}
	chartAt := dst.Host + "/mirror/helm-charts/demo:1.2.0"
	if got := dst.DigestOf(t, chartAt); got == "" || got != chart.Digest {
		t.Errorf("chart at %s: digest %q, want the planned %s", chartAt, got, chart.Digest)
	}
	if !strings.Contains(mustRead(t, vmap), "="+chartAt) {
		t.Errorf("the chart is not in the verify mapping %s", vmap)
	}
	helmPull(t, dst.Host+"/mirror", f.chartArchive, chart.Digest)
	// Naming as oc-mirror v2: the digest-only image keeps its target, the
	// release under openshift/release-images.
	if got := dst.DigestOf(t, dst.Host+"/mirror/custom/database:v2"); got != f.dbDigest {
		t.Errorf("targetRepo/targetTag image: %q, want %s", got, f.dbDigest)
	}
	if got := dst.DigestOf(t, dst.Host+"/mirror/openshift/release-images:4.12.2-x86_64"); got != f.rel2.Digest {
		t.Errorf("release 4.12.2: %q, want %s", got, f.rel2.Digest)
	}
	// Cluster resources, golden.
	rr := strings.NewReplacer(f.src.Host, "SOURCE", dst.Host, "MIRROR")
	crDir := filepath.Join(dir, "working-dir", "cluster-resources")
	es, err := os.ReadDir(crDir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
		if strings.HasPrefix(e.Name(), "signature-configmap.") {
			// Timestamped signatures of timestamped digests: its shape is
			// golden in internal/orchestrate, its content checked here.
			continue
		}
		golden(t, "cluster-resources/"+e.Name(), rr.Replace(mustRead(t, filepath.Join(crDir, e.Name()))))
	}
	sort.Strings(names)
	if strings.Join(names, " ") != "cc-community-operator-index-v4-18.yaml cs-community-operator-index-v4-18.yaml idms-oc-mirror.yaml itms-oc-mirror.yaml signature-configmap.json signature-configmap.yaml" {
		t.Errorf("cluster-resources: %v", names)
	}
	// The signatures imported on the connected side, carried by the store
	// (disk-to-mirror was not given --signature-dir), in the ConfigMap the
	// cluster-version operator reads.
	for _, name := range []string{"signature-configmap.yaml", "signature-configmap.json"} {
		var cm struct {
			Metadata struct {
				Name, Namespace string
				Labels          map[string]string
			}
			BinaryData map[string][]byte `json:"binaryData"`
		}
		if err := yaml.Unmarshal([]byte(mustRead(t, filepath.Join(crDir, name))), &cm); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, ok := cm.Metadata.Labels["release.openshift.io/verification-signatures"]; !ok || cm.Metadata.Namespace != "openshift-config-managed" || cm.Metadata.Name != "mirrored-release-signatures" {
			t.Errorf("%s: metadata %+v", name, cm.Metadata)
		}
		if len(cm.BinaryData) != len(sigs) {
			t.Errorf("%s: %d signatures, want %d", name, len(cm.BinaryData), len(sigs))
		}
		for k, want := range sigs {
			if !bytes.Equal(cm.BinaryData[k], want) {
				t.Errorf("%s: %s is not the imported signature", name, k)
			}
		}
	}
}

// helmModule is the helm CLI (as test/integration pins it) that pulls the
// mirrored chart.
const helmModule = "helm.sh/helm/v4/cmd/helm@v4.3.2"

// helmPull pulls REG/helm-charts/demo:1.2.0 with the real helm CLI and
// checks it gets the archive the chart repository served, under the
// manifest digest the plan recorded.
func helmPull(t *testing.T, reg string, archive []byte, manifestDigest string) {
	t.Helper()
	bin := gotool.Path(t, helmModule)
	home, out := t.TempDir(), t.TempDir()
	cmd := exec.Command(bin, "pull", "oci://"+reg+"/helm-charts/demo", "--version", "1.2.0", "--plain-http", "-d", out)
	cmd.Env = append(os.Environ(), "HOME="+home, "HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"), "HELM_DATA_HOME="+filepath.Join(home, "data"),
		"DOCKER_CONFIG="+filepath.Join(home, "docker"), "REGISTRY_AUTH_FILE="+filepath.Join(home, "auth.json"))
	msg, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helm pull from %s: %v\n%s", reg, err, msg)
	}
	pulled, err := os.ReadFile(filepath.Join(out, "demo-1.2.0.tgz"))
	if err != nil {
		t.Fatalf("helm pull wrote no demo-1.2.0.tgz: %v\n%s", err, msg)
	}
	if !bytes.Equal(pulled, archive) {
		t.Errorf("helm pull from %s: %d bytes, not the %d-byte archive the repository served", reg, len(pulled), len(archive))
	}
	if !strings.Contains(string(msg), "Digest: "+manifestDigest) {
		t.Errorf("helm pull from %s reports another manifest digest than the plan's %s:\n%s", reg, manifestDigest, msg)
	}
}

// releaseSignatures signs each digest with a new OpenPGP key into a
// signature directory laid out as Red Hat publishes it
// (sha256=<hex>/signature-1) and returns it, the armored public key file,
// and the ConfigMap keys (sha256-<hex>-1) with the signature each must hold.
func releaseSignatures(t *testing.T, digests ...string) (string, string, map[string][]byte) {
	t.Helper()
	key := pgptest.NewKey(t, "release")
	dir := t.TempDir()
	want := map[string][]byte{}
	for _, d := range digests {
		sig := pgptest.SignAtomic(t, key, "quay.io/openshift-release-dev/ocp-release", d)
		p := filepath.Join(dir, strings.Replace(d, ":", "=", 1))
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "signature-1"), sig, 0o644); err != nil {
			t.Fatal(err)
		}
		want[strings.Replace(d, ":", "-", 1)+"-1"] = sig
	}
	return dir, pgptest.PublicKeyFile(t, key), want
}

// sortLines sorts after replacing digests, so golden files do not depend
// on where a timestamped digest sorts.
func sortLines(s string) string {
	ls := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	sort.Strings(ls)
	return strings.Join(ls, "\n") + "\n"
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSecondMirrorToDiskCopiesOnlyNewBlobs(t *testing.T) {
	f := newFixture(t)
	f.withChart(t)
	work := t.TempDir()
	dir := filepath.Join(work, "store")
	cfg := f.config(t, work, "ecr-secret-operator", "kairos-operator")
	run(t, "mirror", "-c", cfg, "file://"+dir, "--graph-url", f.graphURL)
	before := storeBlobs(t, dir)
	first, err := orchestrate.ReadRecord(dir)
	if err != nil {
		t.Fatal(err)
	}

	cfg = f.config(t, work, "ecr-secret-operator", "kairos-operator", "shipwright-operator")
	out := run(t, "mirror", "-c", cfg, "file://"+dir, "--graph-url", f.graphURL)
	copied, present := blobStats(t, out)
	after := storeBlobs(t, dir)
	var added int
	for b := range after {
		if !before[b] {
			added++
		}
	}
	// The copies wrote exactly the blobs the store lacked; the rebuilt
	// catalog adds its own (new configs layer, configs and manifests).
	if copied == 0 || present == 0 {
		t.Fatalf("second run: %d blobs copied, %d already present; want both > 0\n%s", copied, present, out)
	}
	if copied > added {
		t.Errorf("second run copied %d blobs but only %d are new in the store: blobs were transferred again", copied, added)
	}
	// Every new blob comes from the added package or the rebuilt catalog:
	// the first run's content is all already present.
	rec, err := orchestrate.ReadRecord(dir)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, it := range rec.Plan.Items {
		for _, p := range it.Origin.Packages {
			if p == "shipwright-operator" {
				found = true
			}
		}
	}
	if !found {
		t.Error("the added package is not in the recorded plan")
	}
	// The chart is in both runs, the same artifact: nothing of it is new.
	chartOf := func(p plan.Plan) string {
		for _, it := range p.Items {
			if it.Kind == plan.KindHelmChart {
				return it.Digest
			}
		}
		return ""
	}
	if c1, c2 := chartOf(first.Plan), chartOf(rec.Plan); c1 == "" || c1 != c2 {
		t.Errorf("chart in the first run %q, in the second %q: want the same artifact", c1, c2)
	}
	t.Logf("second m2d: %d blobs copied, %d already present, %d new blobs in the store (of %d)", copied, present, added, len(after))
}

// destDigests resolves the destination of every line of mapping files at
// reg and returns the set of digests found (each must resolve).
func destDigests(t *testing.T, reg *regtest.Registry, files ...string) map[string]bool {
	t.Helper()
	set := map[string]bool{}
	for _, f := range files {
		for _, l := range strings.Split(strings.TrimSpace(mustRead(t, f)), "\n") {
			if strings.HasPrefix(l, "#") {
				continue
			}
			i := strings.LastIndex(l, "=")
			if i < 0 {
				t.Fatalf("%s: bad line %q", f, l)
			}
			d := strings.TrimPrefix(l[i+1:], "docker://")
			got := reg.DigestOf(t, d)
			if got == "" {
				t.Errorf("%s: %s is not at the mirror", f, d)
				continue
			}
			set[got] = true
		}
	}
	return set
}

// The same config mirrored by `mirror --workspace` (mirror-to-mirror) and by
// the compatibility commands (release mirror per release, catalog mirror
// --config, image mirror) puts the same digests into the registry; only the
// names differ (oc-mirror's vs oc's). The config's Helm chart has no oc
// equivalent (oc mirrors no charts): its part (the chart artifact and the
// images it names) must be at the mirror through `mirror`, and is left out
// of the comparison.
func TestMirrorAndCompatibilityCommandsAgree(t *testing.T) {
	f := newFixture(t)
	f.withChart(t)
	work := t.TempDir()
	cfg := f.config(t, work, "ecr-secret-operator", "kairos-operator")
	ws := filepath.Join(work, "ws")
	viaMirror, viaCompat := regtest.Start(t), regtest.Start(t)
	run(t, "mirror", "-c", cfg, "--workspace", "file://"+ws, "docker://"+viaMirror.Host+"/m", "--graph-url", f.graphURL)
	a := destDigests(t, viaMirror, filepath.Join(ws, "working-dir", "mapping.txt"))
	rec := filepath.Join(ws, "working-dir", "cluster-resources", "cs-community-operator-index-v4-18.yaml")
	mirrorCatalog := viaMirror.DigestOf(t, viaMirror.Host+"/m/redhat/community-operator-index:v4.18")
	if _, err := os.Stat(rec); err != nil || mirrorCatalog == "" {
		t.Fatalf("mirror-to-mirror: no catalog (%v, digest %q)", err, mirrorCatalog)
	}

	helmPart := map[string]bool{}
	for repoTag, d := range f.chartImages {
		helmPart[d] = true
		if !a[d] {
			t.Errorf("chart image %s (%s) is not at the mirror through mirror", repoTag, d)
		}
	}
	chartDigest := viaMirror.DigestOf(t, viaMirror.Host+"/m/helm-charts/demo:1.2.0")
	if chartDigest == "" || !a[chartDigest] {
		t.Errorf("the chart is not at the mirror through mirror (%q) or not in its mapping", chartDigest)
	}
	helmPart[chartDigest] = true
	for d := range helmPart {
		delete(a, d)
	}

	manifests := filepath.Join(work, "compat")
	var files []string
	for i, rel := range []*releasetest.Release{f.rel1, f.rel2} {
		// Both synthetic payloads say 4.12.0 in their metadata (oc names by
		// it), so each release image gets its own tag here.
		dir := filepath.Join(manifests, strconv.Itoa(i))
		run(t, "release", "mirror", "--from", rel.Ref, "--to", viaCompat.Host+"/ocp/release", "--to-manifests", dir,
			"--to-release-image", viaCompat.Host+"/ocp/release:"+rel.Ref[strings.LastIndex(rel.Ref, ":")+1:])
		files = append(files, filepath.Join(dir, "mapping-release-4.12.0.txt"))
	}
	catDir := filepath.Join(work, "catalog-manifests")
	run(t, "catalog", "mirror", f.catalogRef, viaCompat.Host+"/olm", "--config", cfg, "--to-manifests", catDir)
	files = append(files, filepath.Join(catDir, "mapping.txt"))
	run(t, "image", "mirror", f.web+"="+viaCompat.Host+"/apps/web:1.0", f.db+"="+viaCompat.Host+"/custom/database:v2")
	b := destDigests(t, viaCompat, files...)
	b[viaCompat.DigestOf(t, viaCompat.Host+"/apps/web:1.0")] = true
	b[viaCompat.DigestOf(t, viaCompat.Host+"/custom/database:v2")] = true
	compatCatalog := viaCompat.DigestOf(t, viaCompat.Host+"/olm/redhat-community-operator-index:v4.18")
	if compatCatalog != mirrorCatalog {
		t.Errorf("rebuilt catalog: %s through mirror, %s through catalog mirror", mirrorCatalog, compatCatalog)
	}
	delete(b, compatCatalog) // catalog mirror's mapping lists the catalog; mirror's verify mapping does not
	var onlyA, onlyB []string
	for d := range a {
		if !b[d] {
			onlyA = append(onlyA, d)
		}
	}
	for d := range b {
		if !a[d] {
			onlyB = append(onlyB, d)
		}
	}
	if len(onlyA)+len(onlyB) > 0 || len(a) == 0 {
		t.Errorf("destination digests differ: %d only through mirror %v, %d only through the compatibility commands %v (%d in common)", len(onlyA), onlyA, len(onlyB), onlyB, len(a)-len(onlyA))
	}
}

func TestMirrorCommandLineErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "isc.yaml")
	os.WriteFile(cfg, []byte("apiVersion: mirror.openshift.io/v2alpha1\nkind: ImageSetConfiguration\nmirror: {}\n"), 0o644)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("apiVersion: mirror.openshift.io/v2alpha1\nkind: ImageSetConfiguration\nmirror:\n  blockedImages:\n  - name: \"([\"\n"), 0o644)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"mirror", "-c", cfg, "docker://127.0.0.1:1/x"}, "give --from file://DIR (disk-to-mirror) or --workspace file://DIR"},
		{[]string{"mirror", "-c", cfg, "file://" + dir + "/s", "--from", "file://x"}, "--from and --workspace do not apply"},
		{[]string{"mirror", "-c", cfg, "--from", "file://a", "--workspace", "file://b", "docker://127.0.0.1:1"}, "are exclusive"},
		{[]string{"mirror", "-c", cfg, "registry.local"}, "want file://DIR (mirror-to-disk) or docker://REG[/prefix]"},
		{[]string{"mirror", "file://" + dir + "/s"}, "-c/--config is required"},
		{[]string{"mirror", "-c", cfg, "file://" + dir + "/s", "--since", "yesterday"}, `--since "yesterday"`},
		{[]string{"mirror", "-c", cfg, "file://" + dir + "/s", "--parallel-images", "11"}, "--parallel-images 11: want 1 to 10"},
		{[]string{"mirror", "-c", cfg, "file://" + dir + "/s", "--max-nested-paths", "2"}, "--max-nested-paths applies to a registry destination"},
		{[]string{"mirror", "-c", cfg, "--from", "file://" + dir + "/empty", "docker://127.0.0.1:1/x"}, "holds no mirror-to-disk record"},
		{[]string{"mirror", "-c", bad, "file://" + dir + "/s2"}, "blockedImages[0]"},
	}
	for _, c := range cases {
		_, _, err := clitest.Run(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("airlock %s: error %v, want it to say %q", strings.Join(c.args, " "), err, c.want)
		}
	}
}

// TestMirrorFailedImageListedAndRerun: an image that cannot be copied does
// not stop `mirror -c`: everything else is mirrored (catalog and cluster
// resources included), the run exits non-zero naming the failure list in
// working-dir/logs, which names the image and the cause; once the cause is
// fixed, the same command brings only what was missing.
func TestMirrorFailedImageListedAndRerun(t *testing.T) {
	f := newFixture(t)
	work := t.TempDir()
	cfg := f.config(t, work, "ecr-secret-operator")
	ghost := f.src.Host + "/apps/ghost:3"
	text := strings.Replace(mustRead(t, cfg), "  blockedImages:\n", "  - name: "+ghost+"\n  blockedImages:\n", 1)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	ws := filepath.Join(work, "ws")
	dst := regtest.Start(t)
	args := []string{"mirror", "-c", cfg, "--workspace", "file://" + ws, "docker://" + dst.Host + "/m", "--graph-url", f.graphURL, "--retry-times", "0"}
	out, errOut, err := clitest.Run(t, args...)
	if err == nil || !strings.Contains(err.Error(), "1 image(s) failed") || !strings.Contains(err.Error(), "re-run the same command") {
		t.Fatalf("a missing image: error %v, want 1 failure and how to retry\n%s%s", err, out, errOut)
	}
	if !strings.Contains(errOut, ghost) {
		t.Errorf("the failure is not listed at the end of the output:\n%s", errOut)
	}
	logs, _ := filepath.Glob(filepath.Join(ws, "working-dir", "logs", "mirroring_errors_*.txt"))
	if len(logs) != 1 || !strings.Contains(err.Error(), logs[0]) {
		t.Fatalf("failure lists %v; the error must name the one written: %v", logs, err)
	}
	list := mustRead(t, logs[0])
	if !strings.Contains(list, "# error: ") || !strings.Contains(list, "mirror.additionalImages[3]") || !strings.Contains(list, "\n"+ghost+" ") {
		t.Errorf("failure list lacks the image, its origin or its cause:\n%s", list)
	}
	// The rest is there.
	if got := dst.DigestOf(t, dst.Host+"/m/custom/database:v2"); got != f.dbDigest {
		t.Errorf("an image after the failed one: %q, want %s", got, f.dbDigest)
	}
	if dst.DigestOf(t, dst.Host+"/m/redhat/community-operator-index:v4.18") == "" || dst.DigestOf(t, dst.Host+"/m/openshift/release-images:4.12.2-x86_64") == "" {
		t.Error("the catalog or a release is missing after one image failed")
	}
	if _, err := os.Stat(filepath.Join(ws, "working-dir", "cluster-resources", "idms-oc-mirror.yaml")); err != nil {
		t.Errorf("no cluster resources after one image failed: %v", err)
	}

	// The cause fixed: the same command copies the image's blobs only.
	img, err := synth.Image(7004, synth.WithLayerSize(512))
	if err != nil {
		t.Fatal(err)
	}
	want, err := synth.Push(img, ghost, remote.WithTransport(f.src.Transport))
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	out = run(t, args...)
	if copied, _ := blobStats(t, out); copied != len(layers)+1 {
		t.Errorf("re-run copied %d blobs, want the %d of the image that failed (layers and config)", copied, len(layers)+1)
	}
	if got := dst.DigestOf(t, dst.Host+"/m/apps/ghost:3"); got != want {
		t.Errorf("after the re-run: %q, want %s", got, want)
	}
}

// TestCatalogSourceTemplateAtMirror: disk-to-mirror writes the catalog's
// CatalogSource from its targetCatalogSourceTemplate (the site's priority
// and poll interval kept, name, namespace and image airlock's), finding
// the operator entry through the mirror-to-disk record; a template that
// is no CatalogSource stops disk-to-mirror before anything is copied.
func TestCatalogSourceTemplateAtMirror(t *testing.T) {
	f := newFixture(t)
	work := t.TempDir()
	tmpl := filepath.Join(work, "cs-template.yaml")
	if err := os.WriteFile(tmpl, []byte("apiVersion: operators.coreos.com/v1alpha1\nkind: CatalogSource\nmetadata:\n  name: x\nspec:\n  priority: -100\n  updateStrategy:\n    registryPoll:\n      interval: 45m\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := f.config(t, work, "ecr-secret-operator")
	text := strings.Replace(mustRead(t, cfg), "    packages:\n", "    targetCatalogSourceTemplate: "+tmpl+"\n    packages:\n", 1)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(work, "store")
	run(t, "mirror", "-c", cfg, "file://"+dir, "--graph-url", f.graphURL)

	// A broken template: refused before the copy, with the config's line.
	bad := filepath.Join(work, "bad.yaml")
	if err := os.WriteFile(bad, []byte(strings.Replace(text, tmpl, filepath.Join(work, "cm.yaml"), 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(work, "cm.yaml"), []byte("apiVersion: v1\nkind: ConfigMap\n"), 0o644)
	dst := regtest.Start(t)
	_, _, err := clitest.Run(t, "mirror", "-c", bad, "--from", "file://"+dir, "docker://"+dst.Host+"/mirror")
	if err == nil || !strings.Contains(err.Error(), "mirror.operators[0].targetCatalogSourceTemplate") || !strings.Contains(err.Error(), "want an operators.coreos.com/v1alpha1 CatalogSource") {
		t.Fatalf("bad template: %v", err)
	}
	if d := dst.DigestOf(t, dst.Host+"/mirror/apps/web:1.0"); d != "" {
		t.Fatalf("images were copied although the template was refused")
	}

	run(t, "mirror", "-c", cfg, "--from", "file://"+dir, "docker://"+dst.Host+"/mirror")
	cs := mustRead(t, filepath.Join(dir, "working-dir", "cluster-resources", "cs-community-operator-index-v4-18.yaml"))
	for _, want := range []string{"name: cs-community-operator-index-v4-18\n", "namespace: openshift-marketplace\n", "priority: -100\n",
		"interval: 45m\n", "sourceType: grpc\n", "image: " + dst.Host + "/mirror/redhat/community-operator-index:v4.18\n"} {
		if !strings.Contains(cs, want) {
			t.Errorf("CatalogSource lacks %q:\n%s", want, cs)
		}
	}
}

// TestMaxNestedPaths: with --max-nested-paths 2, disk-to-mirror and
// mirror-to-mirror put every image (releases, operators, additional
// images, the rebuilt catalog) at most two path components deep, the rest
// folded with '-', and the mirror sets, the CatalogSource and the verify
// mapping name the folded repositories, repository-scoped.
func TestMaxNestedPaths(t *testing.T) {
	f := newFixture(t)
	work := t.TempDir()
	cfg := f.config(t, work, "ecr-secret-operator")
	store := filepath.Join(work, "store")
	run(t, "mirror", "-c", cfg, "file://"+store, "--graph-url", f.graphURL)
	d2m, m2m := regtest.Start(t), regtest.Start(t)
	ws := filepath.Join(work, "ws")
	run(t, "mirror", "-c", cfg, "--from", "file://"+store, "docker://"+d2m.Host+"/mirror", "--max-nested-paths", "2")
	run(t, "mirror", "-c", cfg, "--workspace", "file://"+ws, "docker://"+m2m.Host+"/mirror", "--max-nested-paths", "2", "--graph-url", f.graphURL)
	for _, c := range []struct {
		name string
		reg  *regtest.Registry
		dir  string
	}{{"disk-to-mirror", d2m, store}, {"mirror-to-mirror", m2m, ws}} {
		mapping := filepath.Join(c.dir, "working-dir", "mapping.txt")
		lines := strings.Split(strings.TrimSpace(mustRead(t, mapping)), "\n")
		for _, l := range lines {
			dest := strings.TrimPrefix(l[strings.LastIndex(l, "=")+1:], "docker://"+c.reg.Host+"/")
			repo, _, _ := strings.Cut(dest, ":")
			if n := strings.Count(repo, "/") + 1; n > 2 {
				t.Errorf("%s: %s is %d components deep", c.name, dest, n)
			}
		}
		if got := destDigests(t, c.reg, mapping); len(got) == 0 {
			t.Errorf("%s: nothing verified", c.name)
		}
		for ref, want := range map[string]string{
			"/mirror/openshift-release-images:4.12.2-x86_64": f.rel2.Digest,
			"/mirror/custom-database:v2":                     f.dbDigest,
		} {
			if got := c.reg.DigestOf(t, c.reg.Host+ref); got != want {
				t.Errorf("%s: %s is %q, want %s", c.name, ref, got, want)
			}
		}
		cr := filepath.Join(c.dir, "working-dir", "cluster-resources")
		cs := mustRead(t, filepath.Join(cr, "cs-redhat-community-operator-index-v4-18.yaml"))
		catalog := c.reg.Host + "/mirror/redhat-community-operator-index:v4.18"
		if !strings.Contains(cs, "image: "+catalog+"\n") || c.reg.DigestOf(t, catalog) == "" {
			t.Errorf("%s: catalog not at %s, or the CatalogSource names another image:\n%s", c.name, catalog, cs)
		}
		idms := mustRead(t, filepath.Join(cr, "idms-oc-mirror.yaml"))
		for _, want := range []string{
			"- " + c.reg.Host + "/mirror/openshift-release-images\n    source: " + f.src.Host + "/openshift-release-dev/ocp-release\n",
			"- " + c.reg.Host + "/mirror/openshift-community-operators-ecr-secret-operator\n    source: " + f.src.Host + "/openshift-community-operators/ecr-secret-operator\n",
		} {
			if !strings.Contains(idms, want) {
				t.Errorf("%s: idms-oc-mirror.yaml lacks the repository-scoped\n%s\n%s", c.name, want, idms)
			}
		}
	}
}

// TestOCILayoutCatalog: mirror.operators[].catalog as oci://DIR (a catalog
// copied to disk, as oc-mirror v2 accepts it) is filtered, rebuilt and
// pushed under the layout's base name, and its CatalogSource names it; the
// selected bundles' images come from their registries as usual.
func TestOCILayoutCatalog(t *testing.T) {
	f := newFixture(t)
	work := t.TempDir()
	layout := filepath.Join(work, "layouts", "my-catalog")
	eng, err := engine.New(engine.Options{Transport: f.src.Transport})
	if err != nil {
		t.Fatal(err)
	}
	var p plan.Plan
	p.Add(plan.Item{Source: ref.MustParse(f.catalogRef), Dests: []ref.Ref{ref.MustParse("oci://" + layout)}, Kind: plan.KindCatalog})
	if _, err := eng.Run(context.Background(), p); err != nil {
		t.Fatalf("copying the catalog to %s: %v", layout, err)
	}
	// As `skopeo copy docker://... oci:DIR` writes it: one image, no
	// ref.name annotation.
	var index map[string]any
	if err := json.Unmarshal([]byte(mustRead(t, filepath.Join(layout, "index.json"))), &index); err != nil {
		t.Fatal(err)
	}
	ms := index["manifests"].([]any)
	if len(ms) != 1 {
		t.Fatalf("layout holds %d manifests, want 1", len(ms))
	}
	delete(ms[0].(map[string]any), "annotations")
	b, _ := json.Marshal(index)
	if err := os.WriteFile(filepath.Join(layout, "index.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(work, "isc.yaml")
	if err := os.WriteFile(cfg, []byte(`apiVersion: mirror.openshift.io/v2alpha1
kind: ImageSetConfiguration
mirror:
  operators:
  - catalog: oci://`+layout+`
    targetTag: v1
    packages:
    - name: ecr-secret-operator
      minVersion: 0.4.1
`), 0o644); err != nil {
		t.Fatal(err)
	}
	dst := regtest.Start(t)
	ws := filepath.Join(work, "ws")
	run(t, "mirror", "-c", cfg, "--workspace", "file://"+ws, "docker://"+dst.Host+"/m")
	catalogRef := dst.Host + "/m/my-catalog:v1"
	if dst.DigestOf(t, catalogRef) == "" {
		t.Fatalf("no catalog at %s", catalogRef)
	}
	cs := mustRead(t, filepath.Join(ws, "working-dir", "cluster-resources", "cs-my-catalog-v1.yaml"))
	if !strings.Contains(cs, "image: "+catalogRef+"\n") {
		t.Errorf("CatalogSource:\n%s", cs)
	}
	// The rebuilt catalog holds the selection only, and its bundle images
	// are at the mirror.
	nr, err := name.ParseReference(catalogRef, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(nr, remote.WithTransport(dst.Transport))
	if err != nil {
		t.Fatal(err)
	}
	c, err := catalog.FromImage(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	if names := c.PackageNames(); strings.Join(names, " ") != "ecr-secret-operator" {
		t.Errorf("rebuilt catalog packages: %v", names)
	}
	destDigests(t, dst, filepath.Join(ws, "working-dir", "mapping.txt"))
}

// TestDeleteWhatASelectionMirrored: after `mirror -c` mirror-to-mirror into
// the embedded registry, `delete -c --generate` turns a
// DeleteImageSetConfiguration naming one of the two packages and one
// additional image into the list of exactly what they mirrored, and
// `delete --delete-yaml-file --registry-root` removes those and runs
// garbage collection: the listed images are gone, the other package and
// image still resolve and verify, and bytes were freed.
func TestDeleteWhatASelectionMirrored(t *testing.T) {
	f := newFixture(t)
	work := t.TempDir()
	cfg := f.config(t, work, "ecr-secret-operator", "kairos-operator")
	root := t.TempDir()
	dst := regtest.Start(t, regtest.WithRoot(root))
	ws := filepath.Join(work, "ws")
	run(t, "mirror", "-c", cfg, "--workspace", "file://"+ws, "docker://"+dst.Host+"/m", "--graph-url", f.graphURL)

	del := filepath.Join(work, "delete.yaml")
	if err := os.WriteFile(del, []byte(`apiVersion: mirror.openshift.io/v2alpha1
kind: DeleteImageSetConfiguration
delete:
  operators:
  - catalog: `+f.catalogRef+`
    packages:
    - name: kairos-operator
      minVersion: 2.0.1
      maxVersion: 2.1.0
  additionalImages:
  - name: `+f.web+`
`), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "delete", "-c", del, "--generate", "--workspace", "file://"+ws, "--delete-id", "one", "docker://"+dst.Host+"/m")
	listFile := filepath.Join(ws, "working-dir", "delete", "delete-images-one.yaml")
	l, err := deletion.Load(listFile)
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, it := range l.Items {
		if strings.Contains(it.ImageReference, "ecr-secret-operator") {
			t.Errorf("the list names an image of the package that stays: %s", it.ImageReference)
		}
		listed = append(listed, strings.TrimPrefix(it.ImageReference, "docker://"))
	}
	if len(listed) == 0 || !slices.Contains(listed, dst.Host+"/m/apps/web:1.0") {
		t.Fatalf("delete list %v lacks the additional image", listed)
	}
	for _, r := range listed {
		if dst.DigestOf(t, r) == "" {
			t.Fatalf("listed %s was never mirrored", r)
		}
	}
	// What stays: every mapping line not listed.
	var keep []string
	for _, line := range strings.Split(strings.TrimSpace(mustRead(t, filepath.Join(ws, "working-dir", "mapping.txt"))), "\n") {
		d := strings.TrimPrefix(line[strings.LastIndex(line, "=")+1:], "docker://")
		if !slices.Contains(listed, d) {
			keep = append(keep, d)
		}
	}

	// plan against the registry: after the run it holds every image.
	incomplete := func(host string) []string {
		var out []string
		for _, p := range planJSON(t, "-c", cfg, "docker://"+host+"/m", "--graph-url", f.graphURL, "--no-save").Images {
			if !p.Rebuilt && !p.Complete {
				out = append(out, p.Source.String())
			}
		}
		return out
	}
	if missing := incomplete(dst.Host); len(missing) != 0 {
		t.Errorf("plan against the mirror after the run: not held %v", missing)
	}

	dst.Server.Close() // garbage collection must not run beside a serving registry
	out := run(t, "delete", "--delete-yaml-file", listFile, "--registry-root", root, "-o", "json", "docker://"+dst.Host+"/m")
	var rep struct {
		GC struct{ BlobBytes int64 }
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.GC.BlobBytes <= 0 {
		t.Errorf("delete report (%v): %s", err, out)
	}
	after := regtest.Start(t, regtest.WithRoot(root))
	for _, r := range listed {
		r = strings.Replace(r, dst.Host, after.Host, 1)
		if d := after.DigestOf(t, r); d != "" {
			t.Errorf("%s still resolves after delete (%s)", r, d)
		}
	}
	if len(keep) == 0 {
		t.Fatal("nothing was meant to stay")
	}
	// plan sees what the delete removed: the deleted package and image
	// are to transfer again, the rest is held.
	missing := incomplete(after.Host)
	if len(missing) == 0 || len(missing) > len(listed) {
		t.Errorf("plan after delete: %d images not held, %d were deleted: %v", len(missing), len(listed), missing)
	}
	for _, m := range missing {
		if strings.Contains(m, "ecr-secret-operator") {
			t.Errorf("plan after delete: %s of the kept package is not held", m)
		}
	}
	for _, r := range keep {
		r = strings.Replace(r, dst.Host, after.Host, 1)
		if after.DigestOf(t, r) == "" {
			t.Errorf("%s was not listed but is gone", r)
		}
	}
}
