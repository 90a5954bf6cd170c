package orchestrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/airlock-mirror/airlock/internal/atomicfile"
	"github.com/airlock-mirror/airlock/internal/catalogimage"
	"github.com/airlock-mirror/airlock/internal/clusterres"
	"github.com/airlock-mirror/airlock/internal/engine"
	"github.com/airlock-mirror/airlock/internal/imageset"
	"github.com/airlock-mirror/airlock/internal/mapping"
	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/release/graph"
	"github.com/airlock-mirror/airlock/internal/report"
	"github.com/airlock-mirror/airlock/internal/store"
)

// Mode is one of oc-mirror v2's workflows.
type Mode string

const (
	// MirrorToDisk: `mirror -c ISC file://DIR` — sources into the local
	// store at DIR, plus the record disk-to-mirror needs.
	MirrorToDisk Mode = "mirror-to-disk"
	// DiskToMirror: `mirror -c ISC --from file://DIR docker://REG[/prefix]`
	// — the store's content, as recorded, to the registry; offline.
	DiskToMirror Mode = "disk-to-mirror"
	// MirrorToMirror: `mirror -c ISC --workspace file://DIR docker://REG`
	// — sources straight to the registry; DIR holds working-dir/.
	MirrorToMirror Mode = "mirror-to-mirror"
)

// Engine is what Mirror needs of the copy engine.
type Engine interface {
	Images
	Run(ctx context.Context, p plan.Plan) (*engine.Report, error)
}

// ArchiveRequest is what a mirror-to-disk run hands to Options.Archive.
type ArchiveRequest struct {
	// Dir is the local store (and DIR/working-dir).
	Dir    string
	Record *Record
	// Since, when set, limits an archive to blobs added after it (--since).
	Since time.Time
}

// Options configure one Mirror run. Engine must be built for the run: its
// store directory is Dir and its DryRun matches DryRun.
type Options struct {
	Mode       Mode
	Config     *imageset.ImageSetConfiguration
	ConfigFile string
	// ConfigData is the config file as read; mirror-to-disk records it.
	ConfigData []byte
	// Dir is the directory of file://DIR: the store for mirror-to-disk
	// and disk-to-mirror, the workspace for mirror-to-mirror.
	Dir string
	// Dest is docker://REG[/prefix] for disk-to-mirror and mirror-to-mirror.
	Dest           ref.Ref
	DryRun         bool
	Since          time.Time
	MaxNestedPaths int
	// SignatureKeys (--signature-key) add the ClusterImagePolicy,
	// registries.d and policy.json files to cluster-resources/;
	// ImagePolicyNamespaces (--image-policy-namespace) write namespaced
	// ImagePolicy objects instead of the ClusterImagePolicy, and Lookaside
	// (--signature-lookaside) goes into the registries.d file.
	SignatureKeys         []clusterres.SigstoreKey
	ImagePolicyNamespaces []string
	Lookaside             string
	// ReleaseSignatures is where the release signatures are imported from
	// (--signature-dir, --verify-key): cluster-resources/ then holds the
	// signature ConfigMap. Disk-to-mirror uses the ones the mirror-to-disk
	// run recorded unless a directory is given.
	ReleaseSignatures SignatureSource
	Engine            Engine
	Graph             graph.Fetcher
	// GraphData builds the graph-data image of mirror.platform.graph.
	GraphData GraphData
	Warn      func(string)
	Now       func() time.Time
	// Archive, when set, runs after a successful mirror-to-disk: the hook
	// where transfer archives (issue 10) are written from the store.
	Archive func(ctx context.Context, req ArchiveRequest) error
	// BeforeWrite, when set, runs in mirror-to-disk after the plan is
	// collected and before any image is copied, with every item a copy
	// would read (filtered catalogs as their source): the hook where the
	// free space for the store and the transfer set is checked, so a run
	// that cannot fit fails before it writes a blob.
	BeforeWrite func(ctx context.Context, items []plan.Item) error
	// Skip names store digests disk-to-mirror leaves out: images whose
	// blobs are in a damaged segment of a transfer set (--partial).
	Skip map[string]bool

	templates map[string]csTemplate
}

// WorkingDir is DIR/working-dir, as oc-mirror names it.
func WorkingDir(dir string) string { return filepath.Join(dir, "working-dir") }

// Result is what a run did.
type Result struct {
	Mode Mode
	// Plan is what was copied (or, with DryRun, would be): store → registry
	// for disk-to-mirror.
	Plan plan.Plan
	// Cluster is the plan as the cluster sees it: original sources → final
	// destinations (what mapping files and cluster resources describe).
	Cluster  plan.Plan
	Report   *engine.Report
	Blocked  []Blocked
	Releases []ReleaseInfo
	// Catalogs are the catalogs pushed: original source → destination, and
	// the digest at the destination (a rebuilt catalog's new digest).
	Catalogs []plan.Item
	// Files written (mapping.txt, missing.txt, cluster resources, failures).
	Files []string
	// CatalogErrors are catalogs that could not be rebuilt or pushed.
	CatalogErrors []error
	// Signatures are the imported release signatures, written as the
	// signature ConfigMap into cluster-resources/.
	Signatures []ReleaseSignature

	// templates are the config's targetCatalogSourceTemplates, read before
	// copying.
	templates map[string]csTemplate
}

// Failed counts the failed images and catalogs.
func (r *Result) Failed() int {
	n := len(r.CatalogErrors)
	if r.Report != nil {
		n += len(r.Report.Failed())
	}
	return n
}

// Mirror runs one workflow. A failed image never stops the run: the
// failures are in the report and the failure file, and the returned error
// says how many failed and that the same command retries them.
func Mirror(ctx context.Context, o Options) (*Result, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Mode == DiskToMirror || o.Mode == MirrorToMirror {
		// The runs that write cluster-resources/ read the
		// targetCatalogSourceTemplates first: a bad one is found before
		// hours of copying, not after.
		ts, ps := catalogSourceTemplates(o.Config)
		if len(ps) > 0 {
			return nil, ps
		}
		o.templates = ts
	}
	switch o.Mode {
	case MirrorToDisk:
		return mirrorToDisk(ctx, o)
	case DiskToMirror:
		return diskToMirror(ctx, o)
	case MirrorToMirror:
		return mirrorToMirror(ctx, o)
	}
	return nil, fmt.Errorf("unknown mirror mode %q", o.Mode)
}

func (o *Options) input(root ref.Ref) *Input {
	in := &Input{Config: o.Config, ConfigFile: o.ConfigFile, Images: o.Engine, Root: root, Graph: o.Graph, Warn: o.Warn, GraphData: o.GraphData}
	if o.Dir != "" {
		in.WorkDir = WorkingDir(o.Dir)
	}
	return in
}

func mirrorToDisk(ctx context.Context, o Options) (*Result, error) {
	// The store first: it refuses a non-empty directory that is no store,
	// and working-dir/ would make DIR non-empty.
	if _, err := store.Open(o.Dir); err != nil {
		return nil, err
	}
	col, err := CollectAll(ctx, o.input(ref.Ref{Transport: ref.File}))
	if err != nil {
		return nil, err
	}
	res := &Result{Mode: o.Mode, Plan: col.Plan, Blocked: col.Blocked, Releases: col.Releases}
	res.Cluster = col.Plan
	if res.Signatures, err = loadReleaseSignatures(o.ReleaseSignatures, col.Releases, o.Warn); err != nil {
		return res, err
	}
	if o.DryRun {
		return res, dryRun(ctx, o, res, col)
	}
	if o.BeforeWrite != nil {
		items := append([]plan.Item(nil), col.Plan.Items...)
		for _, cj := range col.Catalogs {
			if cj.Filtered != nil {
				items = append(items, cj.Item)
			}
		}
		if err := o.BeforeWrite(ctx, items); err != nil {
			return res, err
		}
	}
	if err := execute(ctx, o, res, col.Catalogs, func(cj CatalogJob) ref.Ref { return cj.Item.Dests[0] }); err != nil {
		return res, err
	}
	rec := &Record{Config: string(o.ConfigData), ConfigFile: o.ConfigFile, Created: o.Now().UTC(),
		Plan: recordedPlan(res), Releases: col.Releases, Blocked: col.Blocked, Signatures: res.Signatures}
	if err := WriteRecord(o.Dir, rec); err != nil {
		return res, err
	}
	if err := finish(o, res); err != nil {
		return res, err
	}
	if o.Archive != nil {
		if err := o.Archive(ctx, ArchiveRequest{Dir: o.Dir, Record: rec, Since: o.Since}); err != nil {
			return res, fmt.Errorf("writing transfer archives: %w", err)
		}
	}
	return res, nil
}

// recordedPlan is the store content of a mirror-to-disk run: original
// source → store reference, every item with its digest, catalogs as
// pushed (rebuilt ones with their new digest).
func recordedPlan(res *Result) plan.Plan {
	var p plan.Plan
	for i, it := range res.Plan.Items {
		if res.Report != nil && i < len(res.Report.Items) {
			ir := res.Report.Items[i]
			if ir.Status == engine.StatusFailed || ir.Status == engine.StatusMissing {
				continue // not in the store; the next run retries it
			}
			if it.Digest == "" {
				it.Digest = ir.Digest
			}
		}
		if it.Kind == plan.KindCatalog {
			continue // in res.Catalogs
		}
		p.Add(it)
	}
	p.Items = append(p.Items, res.Catalogs...)
	return p
}

func diskToMirror(ctx context.Context, o Options) (*Result, error) {
	rec, err := ReadRecord(o.Dir)
	if err != nil {
		return nil, err
	}
	if rec.Config != "" {
		old, err := imageset.Parse([]byte(rec.Config), "the recorded config")
		if err == nil && !reflect.DeepEqual(old.Mirror, o.Config.Mirror) && o.Warn != nil {
			o.Warn(fmt.Sprintf("%s differs from the config the mirror-to-disk run recorded in %s (%s): mirroring what that run stored", o.ConfigFile, o.Dir, rec.ConfigFile))
		}
	}
	res := &Result{Mode: o.Mode, Blocked: rec.Blocked, Releases: rec.Releases, Signatures: rec.Signatures, templates: o.templates}
	if o.ReleaseSignatures.Dir != "" || (len(rec.Signatures) == 0 && len(rec.Releases) > 0) {
		// Signatures downloaded apart from the store, or none recorded:
		// import (or warn about) them now.
		if res.Signatures, err = loadReleaseSignatures(o.ReleaseSignatures, rec.Releases, o.Warn); err != nil {
			return res, err
		}
	}
	var images, catalogs plan.Plan
	for _, it := range rec.Plan.Items {
		if o.Skip[it.Digest] {
			continue
		}
		stored := it.Dests[0]
		final := FoldNested(Rebase(stored, o.Dest), o.MaxNestedPaths)
		copyIt := plan.Item{Source: stored, Dests: []ref.Ref{final}, Kind: it.Kind, Origin: it.Origin, Digest: it.Digest}
		clusterIt := it
		clusterIt.Dests = []ref.Ref{final}
		res.Cluster.Add(clusterIt)
		if it.Kind == plan.KindCatalog {
			catalogs.Add(copyIt)
			res.Catalogs = append(res.Catalogs, clusterIt)
		} else {
			images.Add(copyIt)
		}
	}
	// Catalogs last: a cluster polling a catalog must never see bundles
	// whose images are not there yet.
	res.Plan.Items = append(images.Items, catalogs.Items...)
	if o.DryRun {
		return res, dryRun(ctx, o, res, nil)
	}
	rep, err := o.Engine.Run(ctx, res.Plan)
	if err := runErr(err); err != nil {
		return res, err
	}
	res.Report = rep
	if err := writeOutputs(o, res); err != nil {
		return res, err
	}
	return res, finish(o, res)
}

func mirrorToMirror(ctx context.Context, o Options) (*Result, error) {
	col, err := CollectAll(ctx, o.input(o.Dest))
	if err != nil {
		return nil, err
	}
	for i := range col.Plan.Items {
		foldAll(col.Plan.Items[i].Dests, o.MaxNestedPaths)
	}
	res := &Result{Mode: o.Mode, Plan: col.Plan, Cluster: col.Plan, Blocked: col.Blocked, Releases: col.Releases, templates: o.templates}
	if res.Signatures, err = loadReleaseSignatures(o.ReleaseSignatures, col.Releases, o.Warn); err != nil {
		return res, err
	}
	if o.DryRun {
		return res, dryRun(ctx, o, res, col)
	}
	if err := execute(ctx, o, res, col.Catalogs, func(cj CatalogJob) ref.Ref { return FoldNested(cj.Item.Dests[0], o.MaxNestedPaths) }); err != nil {
		return res, err
	}
	res.Cluster = recordedPlan(res)
	if err := writeOutputs(o, res); err != nil {
		return res, err
	}
	return res, finish(o, res)
}

func foldAll(rs []ref.Ref, n int) {
	for i := range rs {
		rs[i] = FoldNested(rs[i], n)
	}
}

// execute copies res.Plan, then rebuilds or copies each catalog to dest(cj).
func execute(ctx context.Context, o Options, res *Result, cats []CatalogJob, dest func(CatalogJob) ref.Ref) error {
	var images, copied plan.Plan
	for _, it := range res.Plan.Items {
		if it.Kind == plan.KindCatalog {
			copied.Add(it)
		} else {
			images.Add(it)
		}
	}
	res.Plan.Items = append(images.Items, copied.Items...)
	rep, err := o.Engine.Run(ctx, res.Plan)
	if err := runErr(err); err != nil {
		return err
	}
	res.Report = rep
	for _, cj := range cats {
		it := cj.Item
		it.Dests = []ref.Ref{dest(cj)}
		if cj.Filtered == nil {
			if d := reportDigest(rep, it.Source); d != "" {
				it.Digest = d
				res.Catalogs = append(res.Catalogs, it)
			}
			continue
		}
		r, err := catalogimage.Rebuild(ctx, o.Engine, it.Source, cj.Filtered, it.Dests[0])
		if err != nil {
			res.CatalogErrors = append(res.CatalogErrors, fmt.Errorf("rebuilding catalog %s for %s: %w", it.Source, it.Dests[0], err))
			continue
		}
		it.Digest = r.Digest
		res.Catalogs = append(res.Catalogs, it)
	}
	return nil
}

func reportDigest(rep *engine.Report, src ref.Ref) string {
	if rep == nil {
		return ""
	}
	for _, ir := range rep.Items {
		if ir.Source.String() == src.String() && ir.Status != engine.StatusFailed && ir.Status != engine.StatusMissing {
			return ir.Digest
		}
	}
	return ""
}

// writeOutputs writes cluster-resources/ and working-dir/mapping.txt.
func writeOutputs(o Options, res *Result) error {
	if err := writeClusterResources(o, res); err != nil {
		return err
	}
	path := filepath.Join(WorkingDir(o.Dir), "mapping.txt")
	if err := atomicfile.Write(path, VerifyMapping(res.Cluster), 0o644); err != nil {
		return err
	}
	res.Files = append(res.Files, path)
	return nil
}

// VerifyMapping is the mapping `airlock verify -f` checks a mirror with:
// every copied image as original-source@digest=destination. Rebuilt
// catalogs are left out: their digest is not the source's (check them with
// the store reference, `airlock verify --dir DIR file://PATH:TAG DEST`).
func VerifyMapping(cluster plan.Plan) []byte {
	var q plan.Plan
	for _, it := range cluster.Items {
		if it.Digest == "" || (it.Kind == plan.KindCatalog && it.Source.Digest != it.Digest) {
			continue
		}
		it.Source = it.Source.WithDigest(it.Digest)
		q.Add(it)
	}
	return mapping.Format(q)
}

// runErr keeps per-image failures (reported at the end) from stopping the run.
func runErr(err error) error {
	var failed *engine.RunError
	if err != nil && !errors.As(err, &failed) {
		return fmt.Errorf("mirroring: %w", err)
	}
	return nil
}

// dryRun resolves every source and writes working-dir/dry-run/mapping.txt
// (every copy) and missing.txt (the copies the destination lacks).
func dryRun(ctx context.Context, o Options, res *Result, col *Collected) error {
	p := res.Plan
	if col != nil {
		// Rebuilt catalogs are no copies, but the mapping shows where they go.
		for _, cj := range col.Catalogs {
			if cj.Filtered != nil {
				it := cj.Item
				if o.Mode == MirrorToMirror {
					foldAll(it.Dests, o.MaxNestedPaths)
				}
				p.Add(it)
			}
		}
	}
	rep, err := o.Engine.Run(ctx, res.Plan)
	if err := runErr(err); err != nil {
		return err
	}
	res.Report = rep
	var missing plan.Plan
	for i, ir := range rep.Items {
		if ir.Status != engine.StatusSkipped && i < len(res.Plan.Items) {
			missing.Add(res.Plan.Items[i])
		}
	}
	dir := filepath.Join(WorkingDir(o.Dir), "dry-run")
	for name, q := range map[string]plan.Plan{"mapping.txt": p, "missing.txt": missing} {
		path := filepath.Join(dir, name)
		if err := atomicfile.Write(path, MappingText(q), 0o644); err != nil {
			return err
		}
		res.Files = append(res.Files, path)
	}
	return nil
}

// MappingText is oc-mirror's dry-run mapping: source=destination with
// transports (docker://, file://), one line per copy, sorted.
func MappingText(p plan.Plan) []byte {
	var lines []string
	for _, it := range p.Items {
		for _, d := range it.Dests {
			if d.Tag != "" {
				d.Digest = ""
			}
			lines = append(lines, withTransport(it.Source)+"="+withTransport(d))
		}
	}
	sort.Strings(lines)
	return []byte(strings.Join(lines, "\n") + "\n")
}

func withTransport(r ref.Ref) string {
	if r.Transport == ref.Docker || r.Transport == "" {
		return "docker://" + r.Name()
	}
	return r.String()
}

// finish writes the failure list (re-runnable: the same command retries)
// and turns failures into the returned error.
func finish(o Options, res *Result) error {
	if res.Report == nil || res.Failed() == 0 {
		return nil
	}
	path := filepath.Join(WorkingDir(o.Dir), "logs", "mirroring_errors_"+o.Now().UTC().Format("20060102_150405")+".txt")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if ok, err := report.WriteFailures(path, res.Report, o.Now()); err != nil {
		return err
	} else if ok {
		res.Files = append(res.Files, path)
	}
	msg := fmt.Sprintf("%d image(s) failed", len(res.Report.Failed()))
	if len(res.CatalogErrors) > 0 {
		msg += fmt.Sprintf(" and %d catalog(s) could not be pushed (%v)", len(res.CatalogErrors), errors.Join(res.CatalogErrors...))
	}
	return fmt.Errorf("%s; the list is in %s; re-run the same command: images already mirrored are skipped", msg, path)
}

// Record is what a mirror-to-disk run leaves in DIR/working-dir/airlock
// for disk-to-mirror, which runs offline.
type Record struct {
	Config     string        `json:"config"`
	ConfigFile string        `json:"configFile"`
	Created    time.Time     `json:"created"`
	Plan       plan.Plan     `json:"plan"`
	Releases   []ReleaseInfo `json:"releases,omitempty"`
	Blocked    []Blocked     `json:"blocked,omitempty"`
	// Signatures are the release signatures imported on the connected
	// side; disk-to-mirror writes their ConfigMap.
	Signatures []ReleaseSignature `json:"releaseSignatures,omitempty"`
}

func recordPath(dir string) string {
	return filepath.Join(WorkingDir(dir), "airlock", "mirror-record.json")
}

// WriteRecord writes the record atomically (the config also as a file).
func WriteRecord(dir string, rec *Record) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(WorkingDir(dir), "airlock", "imageset-config.yaml"), []byte(rec.Config), 0o644); err != nil {
		return err
	}
	return atomicfile.Write(recordPath(dir), append(b, '\n'), 0o644)
}

// ReadRecord reads the record of the last mirror-to-disk run into dir.
func ReadRecord(dir string) (*Record, error) {
	b, err := os.ReadFile(recordPath(dir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s holds no mirror-to-disk record (%s): run `airlock mirror -c imageset.yaml file://%s` on the connected side first", dir, recordPath(dir), dir)
	}
	if err != nil {
		return nil, err
	}
	var rec Record
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("%s: %w", recordPath(dir), err)
	}
	return &rec, nil
}
