// Package engine executes a plan.Plan: it copies images (manifests, indexes
// and blobs) between registries (docker://), airlock's local store (file://)
// and plain OCI layouts (oci://).
//
// One engine serves every front-end (image mirror, catalog, release,
// ImageSetConfiguration), so the rules that make a mirror correct and fast
// live here once:
//
//   - Multi-arch images are copied byte-for-byte with all their children, so
//     the destination digest equals the source digest. Options.FilterByOS
//     narrows a manifest list the way `oc image mirror --filter-by-os` does.
//   - Every unique blob crosses the wire at most once per destination
//     registry per run: present blobs are skipped (HEAD), blobs already in (or
//     being uploaded to) another repository of the same destination are
//     cross-repo mounted, and same-registry copies mount from the source.
//     With Options.BlobCacheFile, where blobs were put is remembered across
//     runs, so a restarted run mounts what an earlier one uploaded.
//   - Children are written before parents, manifests by digest, tags last, so
//     a tag never points at something incomplete and a re-run after any
//     interruption copies only what is missing.
//   - Every blob and manifest is verified against its digest and size while
//     it streams; blobs are never held in memory.
//   - Transient failures (connection reset, EOF, timeouts, 408, 429, 5xx) are
//     retried with exponential backoff and jitter; 429 honours Retry-After; an
//     interrupted blob download resumes with a Range request.
//
// file:// references name a repository inside the local store (package
// store): with Options.StoreDir set, file://ns/repo:tag is repository
// "ns/repo" of the store at StoreDir (oc's --dir / --from-dir). Without
// StoreDir, the first path component is the store directory, relative to the
// working directory: file://mirror/ns/repo:tag is "ns/repo" in ./mirror.
// oci://DIR[:tag] is a plain OCI layout at DIR whose images are named by
// tag only (org.opencontainers.image.ref.name), as skopeo's oci:DIR:TAG.
package engine

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/sigpolicy"
)

// Options configure an Engine. The zero value works: anonymous, TLS with
// system roots, default parallelism, keep whole manifest lists.
type Options struct {
	// Keychain resolves credentials per registry; nil means anonymous
	// (internal/auth provides the real one from auth.json files).
	Keychain authn.Keychain
	// Transport is the base HTTP transport (TLS roots, proxies); nil means a
	// clone of http.DefaultTransport. The engine adds auth, retries and
	// limits on top of it.
	Transport http.RoundTripper
	// Insecure allows plain HTTP and skips TLS verification for docker://
	// references (oc's --insecure). 127.0.0.1/localhost registries may always
	// be reached over plain HTTP when they do not speak TLS.
	Insecure bool
	// StoreDir is the root of the local store that file:// references live
	// in; see the package comment for the mapping.
	StoreDir string

	// FilterByOS is a regular expression matched against "os/arch[/variant]"
	// of each child of a manifest list (as oc image mirror --filter-by-os).
	// Empty keeps every child and the list byte-for-byte. One matching child
	// is pushed as a single manifest; several are pushed under a new, smaller
	// list (a new digest); none is an error for that image.
	FilterByOS string
	// KeepManifestList pushes the original list unchanged (same digest) and
	// copies only the children FilterByOS matches: a sparse list, which the
	// destination registry must accept.
	KeepManifestList bool

	// Parallel is how many plan items are copied at once (default 8).
	// Their blobs share the blob and request slots, so small blobs of
	// several images are in flight together, each image's manifests
	// going out as soon as its own blobs landed. (More items at once
	// reorders which repository reaches a shared blob first, and a resumed
	// run then re-uploads blobs it could mount: see docs/REQUESTS.md.)
	Parallel int
	// ParallelBlobs bounds transfers of large blobs in flight across all
	// items (default 12): enough to overlap latency, few enough not to
	// thrash small machines. Small blobs (read into memory first, so they
	// hold one request slot at a time) are bounded by MaxPerRegistry only.
	ParallelBlobs int
	// MaxPerRegistry bounds concurrent requests per registry host
	// (default 16, minimum 2). Blob transfers across all images share it;
	// ParallelBlobs is capped at half of it, since a copy within one
	// registry holds a download and an upload slot at once.
	MaxPerRegistry int
	// RateLimit is the request rate per registry host in requests per
	// second; 0 means unlimited.
	RateLimit float64
	// RetryTimes is how many times a transient failure is retried
	// (default 5; negative means no retries).
	RetryTimes int

	// FailFast stops the whole run at the first failed item; by default a
	// failed item is recorded and the others continue.
	FailFast bool
	// SkipMissing records a source that does not exist (manifest unknown)
	// as StatusMissing instead of a failure.
	SkipMissing bool
	// DryRun resolves every source (digest, size) and reports what would be
	// copied, writing nothing.
	DryRun bool

	// Signatures says what happens to the signatures of each image:
	// cosign tag-style signatures, attestations and SBOMs
	// (sha256-<hex>.sig/.att/.sbom) and OCI 1.1 referrers of every manifest
	// written are copied with it (best-effort, the default), required
	// (strict) or left behind (remove).
	Signatures SignatureMode
	// Policy, when set, is checked for every image before it is copied
	// (containers-policy.json semantics): an image whose signatures do not
	// satisfy its scope's requirements fails and is not copied. It also
	// turns off the re-run fast path, so an image already mirrored is
	// checked again.
	Policy *sigpolicy.Policy
	// NoReferrers skips OCI referrers (tag-style signatures still copied).
	NoReferrers bool
	// ReferrersFilter, when set, copies only referrers of these artifact
	// types.
	ReferrersFilter []string

	// BlobCacheFile is a file remembering, across runs, which repositories
	// of each destination registry hold which blobs; "" disables it. Within
	// one run the engine mounts a blob already uploaded to another
	// repository of the destination instead of uploading it again; without
	// this file a new process (a run restarted after an interruption) knows
	// nothing and uploads such blobs once more. With it, a blob found in the
	// cache is mounted from the repository that holds it, which moves no
	// bytes. Entries are hints: a refused mount falls back to uploading and
	// drops the entry. The file is written during the run and at its end,
	// atomically, and may be shared by concurrent processes. Only registry
	// destinations use it.
	BlobCacheFile string

	// Logger receives structured logs; nil means slog.Default().
	Logger *slog.Logger
	// Progress receives progress output: on a terminal, bars for images
	// done/total and bytes with throughput and ETA (mpb); otherwise periodic
	// log lines (every ProgressInterval) with the same numbers. nil means no
	// progress output.
	Progress io.Writer
	// ProgressInterval is the period of progress lines (default 5s).
	ProgressInterval time.Duration
}

// Descriptor names one resolved manifest: digest, media type, size (and
// platform for children of an index). It is go-containerregistry's type so
// callers can use it with that library directly.
type Descriptor = v1.Descriptor

// Status is the outcome of one plan item or destination.
type Status string

const (
	StatusCopied  Status = "copied"  // something was written
	StatusSkipped Status = "skipped" // already complete at every destination
	StatusFailed  Status = "failed"  // see Err
	StatusMissing Status = "missing" // source does not exist and Options.SkipMissing
	StatusPlanned Status = "planned" // Options.DryRun: would be copied
)

// DestResult is the outcome for one destination of an item.
type DestResult struct {
	Ref ref.Ref `json:"ref"`
	// Digest is what was (or, in a dry run, would be) written; it differs
	// from the source digest only when FilterByOS rewrote a manifest list.
	Digest string `json:"digest,omitempty"`
	Status Status `json:"status"`
	Error  string `json:"error,omitempty"`
}

// ItemResult is the outcome of one plan item.
type ItemResult struct {
	Source ref.Ref      `json:"source"`
	Kind   plan.Kind    `json:"kind,omitempty"`
	Origin plan.Origin  `json:"origin,omitempty"`
	Dests  []DestResult `json:"destinations"`
	// Digest is the resolved source digest (of the top-level manifest).
	Digest    string `json:"digest,omitempty"`
	MediaType string `json:"mediaType,omitempty"`
	// Size is the total size of the image: every manifest and unique blob
	// the copy needs (known after resolving; in a dry run the size to move).
	Size int64 `json:"size,omitempty"`
	// Bytes is how many blob bytes this item actually transferred.
	Bytes int64 `json:"bytes"`
	// SignaturesChecked: the item's signatures and referrers were looked
	// for (not on a re-run that found the image complete, nor with
	// SignaturesRemove); Signed: its top-level manifest has a signature.
	SignaturesChecked bool `json:"signaturesChecked,omitempty"`
	Signed            bool `json:"signed,omitempty"`
	// PolicyVerified: the image satisfied Options.Policy.
	PolicyVerified bool `json:"policyVerified,omitempty"`
	// Attachments are the signatures, attestations, SBOMs and referrers
	// copied with the image.
	Attachments []Attachment `json:"attachments,omitempty"`
	Status      Status       `json:"status"`
	// Err is why the item failed (nil otherwise); Error is its text for JSON.
	Err   error  `json:"-"`
	Error string `json:"error,omitempty"`
}

// Stats summarise a run.
type Stats struct {
	Images        int           `json:"images"`
	ImagesCopied  int           `json:"imagesCopied"`
	ImagesSkipped int           `json:"imagesSkipped"`
	ImagesFailed  int           `json:"imagesFailed"`
	ImagesMissing int           `json:"imagesMissing"`
	Manifests     int64         `json:"manifests"` // manifests written
	BlobsCopied   int64         `json:"blobsCopied"`
	BlobsMounted  int64         `json:"blobsMounted"`
	BlobsSkipped  int64         `json:"blobsSkipped"` // already present
	Bytes         int64         `json:"bytes"`        // blob bytes transferred
	Duration      time.Duration `json:"durationNs"`
	// Requests is every HTTP request the run sent, by kind, and the
	// connections it opened; RequestsByHost splits them by registry host.
	Requests       RequestCounts            `json:"requests,omitzero"`
	RequestsByHost map[string]RequestCounts `json:"requestsByHost,omitempty"`
}

// MBPerSecond is the transfer rate of the run (MB = 10^6 bytes).
func (s Stats) MBPerSecond() float64 {
	if s.Duration <= 0 {
		return 0
	}
	return float64(s.Bytes) / 1e6 / s.Duration.Seconds()
}

// Report is the result of Run: one ItemResult per plan item, in plan order.
type Report struct {
	Items []ItemResult `json:"items"`
	Stats Stats        `json:"stats"`
}

// Failed returns the items that failed.
func (r *Report) Failed() []ItemResult {
	var out []ItemResult
	for _, it := range r.Items {
		if it.Status == StatusFailed {
			out = append(out, it)
		}
	}
	return out
}

// RunError is returned by Run when at least one item failed; it names each
// failed image and why. errors.Is/As see through to the item errors.
type RunError struct {
	Failed []ItemResult
}

func (e *RunError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d image(s) failed:", len(e.Failed))
	for _, it := range e.Failed {
		fmt.Fprintf(&b, "\n  %s: %v", it.Source, it.Err)
	}
	return b.String()
}

// Unwrap returns the item errors.
func (e *RunError) Unwrap() []error {
	var errs []error
	for _, it := range e.Failed {
		errs = append(errs, it.Err)
	}
	return errs
}

// ErrNotFound is wrapped by errors for a manifest or blob that does not
// exist (registry MANIFEST_UNKNOWN / 404, or absent from a store or layout).
var ErrNotFound = errors.New("not found")

// Engine copies images. It is safe for concurrent use; the blob dedup state
// (which destination repositories hold which blobs) lives as long as the
// Engine, so reuse one Engine for everything a run copies.
type Engine struct {
	opts     Options
	log      *slog.Logger
	hosts    *hostPool      // per-registry clients, limits and auth
	blobs    *blobLedger    // dedup/mount coordination per destination registry
	blobLocs *blobLocations // what blobLedger learnt, kept across runs (nil: off)
	stores   sync.Map       // store dir -> *store.Store (opened once)
	storeMu  sync.Mutex
	base     http.RoundTripper // baseTransport, built once
	baseOnce sync.Once
	filter   *platformFilter
	// blobSem bounds concurrent transfers of large blobs (ParallelBlobs),
	// smallSem those of small ones (MaxPerRegistry).
	blobSem, smallSem chan struct{}
	stats             statCounters
	reqs              requestCounter
	tags              tagCache
	// dstTags are the tag lists of destination repositories the
	// blob-location cache never saw airlock write to, taken once per Run
	// (a fresh cache each Run: tags pushed by an earlier Run must not read
	// as absent): the re-run check of a new repository costs one list
	// instead of one manifest HEAD per image.
	dstTags atomic.Pointer[tagCache]
}

// New checks opts and returns an Engine.
func New(opts Options) (*Engine, error) {
	if opts.ParallelBlobs <= 0 {
		opts.ParallelBlobs = 12
	}
	if opts.MaxPerRegistry <= 0 {
		opts.MaxPerRegistry = 16
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 8
	}
	// A blob copy holds a download and an upload slot at once; when both
	// are on one host (same-registry copy whose mount is refused, or a
	// registry limit shared by source and destination) more concurrent
	// copies than half the slots could each hold a download and wait for
	// an upload slot forever.
	opts.MaxPerRegistry = max(opts.MaxPerRegistry, 2)
	opts.ParallelBlobs = min(opts.ParallelBlobs, opts.MaxPerRegistry/2)
	if opts.RetryTimes == 0 {
		opts.RetryTimes = 5
	}
	if opts.RetryTimes < 0 {
		opts.RetryTimes = 0
	}
	if opts.RateLimit < 0 {
		return nil, fmt.Errorf("rate limit %v: must be >= 0", opts.RateLimit)
	}
	sm, err := ParseSignatureMode(string(opts.Signatures))
	if err != nil {
		return nil, err
	}
	opts.Signatures = sm
	if opts.ProgressInterval <= 0 {
		opts.ProgressInterval = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Keychain == nil {
		opts.Keychain = authn.NewMultiKeychain() // resolves everything to anonymous
	}
	if opts.Transport == nil {
		opts.Transport = defaultTransport()
	}
	e := &Engine{opts: opts, log: opts.Logger}
	if opts.FilterByOS != "" {
		f, err := newPlatformFilter(opts.FilterByOS)
		if err != nil {
			return nil, err
		}
		e.filter = f
	}
	e.blobSem = make(chan struct{}, opts.ParallelBlobs)
	e.smallSem = make(chan struct{}, opts.MaxPerRegistry)
	e.hosts = newHostPool(e)
	e.blobs = newBlobLedger()
	e.blobLocs = newBlobLocations(opts.BlobCacheFile, opts.Logger)
	return e, nil
}
