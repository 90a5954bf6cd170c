// Package orchestrate is the one orchestration every mirroring front-end
// shares: collect → plan → execute → outputs.
//
// # Collect
//
// An ImageSetConfiguration is turned into a plan.Plan by section
// collectors, one per part of mirror: (platform, operators,
// additionalImages, and helm once its collector registers). A collector
// implements Collector and is added with Register, usually from an init
// function in its own file of this package:
//
//	type helmCollector struct{}
//
//	func (helmCollector) Section() string { return "helm" }
//	func (helmCollector) Collect(ctx context.Context, in *Input) (*Collection, error) {
//		charts, err := helm.Collect(ctx, in.Config.Mirror.Helm, helm.Options{...})
//		...
//		items, err := helm.Items(charts, in.Root, in.Name)
//		return &Collection{Items: items}, err
//	}
//
//	func init() { Register(helmCollector{}) }
//
// A collector reads its section of in.Config, resolves what it names to
// digests through in.Images (manifests only, never blobs), names every
// destination with in.Name (oc-mirror v2 naming below in.Root) and sets
// each item's Kind and Origin so reports, failure lists and cluster
// resources can group items by release, catalog/package/bundle, chart or
// additional image. Collectors copy nothing.
//
// CollectAll runs every registered collector in order, merges their items
// (one item per source, destinations merged), then removes
// mirror.blockedImages and reports what was removed.
//
// # Naming (oc-mirror v2)
//
// DestFor keeps the source path below the destination root (the source
// registry is dropped), tags a digest-only image sha256-<hex>, and keeps the
// tag of a tagged one (a tag+digest source is read by digest and pushed
// with its tag). --max-nested-paths N is applied by FoldNested when the
// destination is a registry: the first N-1 path components stay, the rest
// are joined with "-".
//
// # Execute and outputs
//
// Mirror runs the three oc-mirror v2 workflows (mirror-to-disk,
// disk-to-mirror, mirror-to-mirror) over the engine; see Mode. Outputs
// (mapping.txt, missing.txt, cluster-resources/) are pure functions of the
// plan and the engine's report.
//
// # Compatibility commands
//
// ImageMirror, CatalogMirror and ReleaseMirror are oc image mirror, oc adm
// catalog mirror and oc adm release mirror over the same engine, naming
// and outputs. They take plain options (the front-end turns flags into
// them and builds the engine) and print to the Out and ErrOut writers as
// they go, so a run that fails half-way has already said what it wrote.
// The cobra commands in internal/cli hold no orchestration of their own.
package orchestrate
