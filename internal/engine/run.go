package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"

	"github.com/airlock-mirror/airlock/internal/plan"
	"github.com/airlock-mirror/airlock/internal/ref"
)

// Run executes p. Items run Options.Parallel at a time, blobs of all items
// share the per-registry limits. The report lists every item in plan order;
// the error is a *RunError when any item failed (the report is complete
// either way), or a plan validation error (report nil).
func (e *Engine) Run(ctx context.Context, p plan.Plan) (*Report, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	start := time.Now()
	before := e.snapshot()
	reqsBefore := e.reqs.snapshot()
	e.dstTags.Store(&tagCache{})
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer e.startBlobCache()() // written during the run and when it ends, however it ends

	rep := &Report{Items: make([]ItemResult, len(p.Items))}
	stopProgress := e.startProgress(ctx, len(p.Items))

	var once sync.Once
	g := errgroup.Group{}
	g.SetLimit(e.opts.Parallel)
	for i, it := range p.Items {
		g.Go(func() error {
			res := e.copyItem(ctx, it)
			rep.Items[i] = res
			e.stats.itemsDone.Add(1)
			if res.Status == StatusFailed {
				e.log.Error("image failed", "source", it.Source.String(), "err", res.Err)
				if e.opts.FailFast {
					once.Do(cancel)
				}
			} else {
				e.log.Debug("image done", "source", it.Source.String(), "status", res.Status, "bytes", res.Bytes)
			}
			return nil
		})
	}
	g.Wait()
	stopProgress()

	after := e.snapshot()
	st := Stats{
		Images:       len(p.Items),
		Manifests:    after.manifests - before.manifests,
		BlobsCopied:  after.blobsCopied - before.blobsCopied,
		BlobsMounted: after.blobsMounted - before.blobsMounted,
		BlobsSkipped: after.blobsSkipped - before.blobsSkipped,
		Bytes:        after.bytes - before.bytes,
		Duration:     time.Since(start),
	}
	st.RequestsByHost, st.Requests = requestDelta(reqsBefore, e.reqs.snapshot())
	if len(st.RequestsByHost) == 0 {
		st.RequestsByHost = nil
	}
	var failed []ItemResult
	for _, it := range rep.Items {
		switch it.Status {
		case StatusCopied:
			st.ImagesCopied++
		case StatusSkipped:
			st.ImagesSkipped++
		case StatusMissing:
			st.ImagesMissing++
		case StatusFailed:
			st.ImagesFailed++
			failed = append(failed, it)
		}
	}
	rep.Stats = st
	e.logRequests(st)
	e.log.Info("mirror finished", "images", st.Images, "copied", st.ImagesCopied, "skipped", st.ImagesSkipped,
		"failed", st.ImagesFailed, "missing", st.ImagesMissing, "manifests", st.Manifests,
		"blobsCopied", st.BlobsCopied, "blobsMounted", st.BlobsMounted, "blobsSkipped", st.BlobsSkipped,
		"bytes", st.Bytes, "duration", st.Duration.Round(time.Millisecond), "MB/s", fmt.Sprintf("%.1f", st.MBPerSecond()))
	if len(failed) > 0 {
		return rep, &RunError{Failed: failed}
	}
	return rep, nil
}

type statSnapshot struct {
	manifests, blobsCopied, blobsMounted, blobsSkipped, bytes int64
}

func (e *Engine) snapshot() statSnapshot {
	return statSnapshot{e.stats.manifests.Load(), e.stats.blobsCopied.Load(), e.stats.blobsMounted.Load(),
		e.stats.blobsSkipped.Load(), e.stats.bytes.Load()}
}

// startProgress writes a progress line every ProgressInterval to
// Options.Progress until the returned function is called.
func (e *Engine) startProgress(ctx context.Context, total int) func() {
	if e.opts.Progress == nil {
		return func() {}
	}
	if isTerminal(e.opts.Progress) {
		return e.startBars(ctx, total)
	}
	log := slog.New(slog.NewTextHandler(e.opts.Progress, nil))
	start := time.Now()
	read0 := e.stats.inflight.Load()
	done0 := e.stats.itemsDone.Load()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	line := func(msg string) {
		read := e.stats.inflight.Load() - read0
		el := time.Since(start)
		log.Info(msg, "images", fmt.Sprintf("%d/%d", e.stats.itemsDone.Load()-done0, total),
			"MB", fmt.Sprintf("%.1f", float64(read)/1e6),
			"MB/s", fmt.Sprintf("%.1f", float64(read)/1e6/max(el.Seconds(), 0.001)),
			"elapsed", el.Round(time.Second))
	}
	go func() {
		defer wg.Done()
		t := time.NewTicker(e.opts.ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				line("progress")
			case <-stop:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() {
		close(stop)
		wg.Wait()
	}
}

// sourceReference is what to read from the source: its digest (from the
// reference or resolved during planning) when known, else its tag.
func sourceReference(it plan.Item) (string, bool) {
	switch {
	case it.Source.Digest != "":
		return it.Source.Digest, true
	case it.Digest != "":
		return it.Digest, true
	case it.Source.Tag != "":
		return it.Source.Tag, false
	}
	return "latest", false
}

// destTag is the tag written at d: its own, else the source's (oc: a
// destination without a tag inherits the source tag). "" means by digest.
func destTag(it plan.Item, d ref.Ref) string {
	if d.Tag != "" {
		return d.Tag
	}
	return it.Source.Tag
}

func (e *Engine) copyItem(ctx context.Context, it plan.Item) ItemResult {
	return e.copyItemAt(ctx, it, 0)
}

// copyItemAt copies it; depth is 0 for a plan item, n for an attachment of
// depth n (see copyAttachments).
func (e *Engine) copyItemAt(ctx context.Context, it plan.Item, depth int) ItemResult {
	res := ItemResult{Source: it.Source, Kind: it.Kind, Origin: it.Origin}
	for _, d := range it.Dests {
		res.Dests = append(res.Dests, DestResult{Ref: d})
	}
	fail := func(err error) ItemResult {
		res.Status = StatusFailed
		res.Err = fmt.Errorf("%s: %w", it.Source, err)
		res.Error = res.Err.Error()
		for i := range res.Dests {
			if res.Dests[i].Status == "" {
				res.Dests[i].Status = StatusFailed
				res.Dests[i].Error = err.Error()
			}
		}
		return res
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	src, err := e.endpointFor(ctx, it.Source)
	if err != nil {
		return fail(err)
	}
	reference, pinned := sourceReference(it)

	// Re-run fast path: a pinned source whose manifest and tag are already
	// at every destination costs one or two HEADs per destination, and no
	// source request at all.
	known := make([]destState, len(it.Dests)) // what the re-run check learnt per destination
	if pinned && e.filter == nil && !e.opts.DryRun && (e.opts.Policy == nil || depth > 0) {
		if ok, err := e.allComplete(ctx, it, reference, known); err != nil {
			return fail(err)
		} else if ok {
			res.Digest = reference
			res.Status = StatusSkipped
			for i := range res.Dests {
				res.Dests[i].Status, res.Dests[i].Digest = StatusSkipped, reference
			}
			// Signatures are often added upstream after an image was
			// mirrored: look for them (the repository's tag list, once
			// per run, and one referrers query) and bring what is new.
			if e.opts.Signatures != SignaturesRemove && depth < maxAttachDepth {
				atts := e.lookupAttachments(ctx, src, reference, depth)
				res.SignaturesChecked = depth == 0
				res.Signed = signed(reference, atts)
				if len(atts) > 0 {
					res.Attachments, res.Bytes = e.copyAttachments(ctx, it, atts)
				}
			}
			return res
		}
	}

	want := v1Descriptor(reference, pinned)
	tree, err := e.fetchTree(ctx, src, reference, want)
	if err != nil {
		if errors.Is(err, ErrNotFound) && e.opts.SkipMissing {
			res.Status = StatusMissing
			res.Error = err.Error()
			for i := range res.Dests {
				res.Dests[i].Status = StatusMissing
			}
			e.log.Warn("source image missing, skipped", "source", it.Source.String(), "err", err)
			return res
		}
		return fail(err)
	}
	res.Digest = tree.desc.Digest.String()
	res.MediaType = string(tree.desc.MediaType)
	top, err := e.filter.apply(tree, e.opts.KeepManifestList)
	if err != nil {
		return fail(err)
	}
	res.Size = top.size()
	var atts []Attachment
	if (e.opts.Signatures != SignaturesRemove || (e.opts.Policy != nil && depth == 0)) && depth < maxAttachDepth {
		atts = e.discover(ctx, src, tree, top, depth)
		if e.opts.Policy != nil && depth == 0 {
			if err := e.checkPolicy(ctx, src, it, tree.desc.Digest.String(), atts, depth); err != nil {
				return fail(fmt.Errorf("not mirrored: %w", err))
			}
			res.PolicyVerified = true
		}
		if e.opts.Signatures == SignaturesRemove {
			atts = nil
		} else if depth == 0 {
			res.SignaturesChecked = true
			res.Signed = signed(top.desc.Digest.String(), atts)
			if e.opts.Signatures == SignaturesStrict && !res.Signed {
				return fail(fmt.Errorf("no signature for %s (neither a cosign %s tag nor a signature referrer) and --signatures strict: not copied",
					top.desc.Digest, strings.Replace(top.desc.Digest.String(), ":", "-", 1)+".sig"))
			}
		}
	}
	if e.opts.DryRun {
		res.Attachments = atts
		res.Status = StatusPlanned
		for i := range res.Dests {
			res.Dests[i].Status, res.Dests[i].Digest = StatusPlanned, top.desc.Digest.String()
		}
		return res
	}

	e.stats.plannedBytes.Add(res.Size * int64(len(it.Dests)))
	res.Status = StatusSkipped
	for i, d := range it.Dests {
		copied, n, err := e.copyTo(ctx, src, top, it, d, known[i])
		res.Bytes += n
		res.Dests[i].Digest = top.desc.Digest.String()
		if err != nil {
			res.Dests[i].Status = StatusFailed
			res.Dests[i].Error = err.Error()
			return fail(fmt.Errorf("to %s: %w", d, err))
		}
		if copied {
			res.Status = StatusCopied
			res.Dests[i].Status = StatusCopied
		} else {
			res.Dests[i].Status = StatusSkipped
		}
	}
	if len(atts) > 0 {
		var n int64
		res.Attachments, n = e.copyAttachments(ctx, it, atts)
		res.Bytes += n
		for _, a := range res.Attachments {
			if a.Status == StatusFailed && a.Depth == 1 && a.IsSignature() && e.opts.Signatures == SignaturesStrict {
				return fail(fmt.Errorf("copying signature %s: %s", a.Digest, a.Error))
			}
		}
	}
	return res
}

func v1Descriptor(reference string, pinned bool) Descriptor {
	if !pinned {
		return Descriptor{}
	}
	return Descriptor{Digest: hashOf(reference)}
}

// destState is what allComplete learnt about one destination, so copyTo
// does not ask again.
type destState int

const (
	destUnknown destState = iota
	destAbsent            // 404 for the tag (or, without a tag, the digest)
	destTagged            // the tag (or digest) is there with the digest: an index whose children are to check
)

// allComplete reports whether digest (and the tag) is at every destination,
// and records in known what it learnt about each.
func (e *Engine) allComplete(ctx context.Context, it plan.Item, digest string, known []destState) (bool, error) {
	for i, d := range it.Dests {
		dst, err := e.endpointFor(ctx, d)
		if err != nil {
			return false, err
		}
		if d.Digest != "" && d.Digest != digest {
			return false, nil // reported as an error by copyTo
		}
		tag := destTag(it, d)
		ref := digest
		if tag != "" {
			ref = tag
		}
		if tag != "" && e.tagSurelyAbsent(ctx, dst, tag) {
			known[i] = destAbsent
			return false, nil
		}
		info, found, err := dst.headManifest(ctx, ref)
		if err != nil {
			return false, fmt.Errorf("checking %s: %w", d, err)
		}
		if !found {
			known[i] = destAbsent
			return false, nil
		}
		if info.Digest != "" && info.Digest != digest {
			return false, nil
		}
		if types.MediaType(info.MediaType).IsIndex() {
			if info.Digest == digest {
				known[i] = destTagged
			}
			// Lists need their children checked, which needs the source
			// manifest: leave them to the full path (GETs, no blobs).
			return false, nil
		}
		if info.Digest == "" {
			// A registry that does not return Docker-Content-Digest: check
			// by digest as well.
			if _, found, err := dst.headManifest(ctx, digest); err != nil || !found {
				return false, err
			}
		}
	}
	return true, nil
}

// tagSurelyAbsent reports whether the destination repository's tag list,
// taken once this Run, lacks tag. Only for repositories the blob-location
// cache has no record of airlock writing to (a first mirror into a new
// repository, where every HEAD would answer 404): there one tag list
// replaces a manifest HEAD per image. Where airlock wrote before, and
// without the cache, the HEAD stays (a no-op re-run costs what it did). A
// failed or refused list answers false, and the HEAD decides. A tag the
// list lacks only costs a copy that a HEAD would have saved, never a wrong
// result: the copy writes the same digests.
func (e *Engine) tagSurelyAbsent(ctx context.Context, dst endpoint, tag string) bool {
	rd, ok := dst.(*registryEndpoint)
	tc := e.dstTags.Load()
	if !ok || tc == nil || e.blobLocs == nil || e.blobLocs.knowsRepo(rd.location(), rd.repo) {
		return false
	}
	tags, err := tc.get(ctx, rd)
	if err != nil {
		e.log.Debug("destination tag list failed, checking by HEAD", "repository", rd.String(), "err", err)
		return false
	}
	return !tags[tag]
}

// copyTo writes top (children first, manifests by digest, tag last) to d.
// copied reports whether anything was written. known is what the re-run
// check just learnt about d, not asked again: destAbsent starts the copy at
// once (when the digest is there under another tag, the blob steps find
// its blobs present or mount them, and the PUTs are idempotent);
// destTagged means the top manifest and tag are there.
func (e *Engine) copyTo(ctx context.Context, src endpoint, top *node, it plan.Item, d ref.Ref, known destState) (bool, int64, error) {
	digest := top.desc.Digest.String()
	if d.Digest != "" && d.Digest != digest {
		return false, 0, fmt.Errorf("destination names digest %s but the image to write has digest %s", d.Digest, digest)
	}
	dst, err := e.endpointFor(ctx, d)
	if err != nil {
		return false, 0, err
	}
	tag := destTag(it, d)
	found := known == destTagged
	if known == destUnknown {
		if _, found, err = dst.headManifest(ctx, digest); err != nil {
			return false, 0, fmt.Errorf("checking %s: %w", d, err)
		}
	}
	if _, isStore := dst.(*storeEndpoint); isStore {
		// In the store a manifest blob may exist (shared pool) without this
		// repository's name: always go through the copy, which finds every
		// blob present and only (re)writes the name.
		found = false
	}
	if found && top.isIndex() {
		// A list may be present with children missing (a sparse list from
		// an earlier --keep-manifest-list run, or one pushed by another
		// tool): complete it, or clusters get "manifest unknown".
		complete, err := childrenPresent(ctx, dst, top)
		if err != nil {
			return false, 0, fmt.Errorf("checking %s: %w", d, err)
		}
		found = complete
	}
	if found {
		if tag == "" || known == destTagged {
			return false, 0, nil
		}
		ti, tfound, err := dst.headManifest(ctx, tag)
		if err != nil {
			return false, 0, fmt.Errorf("checking %s: %w", d, err)
		}
		if tfound && ti.Digest == digest {
			return false, 0, nil
		}
		if err := dst.name(ctx, tag, top.desc, top.data, it.Source.String()); err != nil {
			return false, 0, fmt.Errorf("tagging %s: %w", d, err)
		}
		return true, 0, nil
	}

	// Blobs of every image in the tree, in parallel, deduplicated.
	var bytes int64
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	for _, b := range top.uniqueBlobs() {
		g.Go(func() error {
			out, n, err := e.ensureBlob(gctx, src, dst, b)
			mu.Lock()
			bytes += n
			mu.Unlock()
			if err != nil {
				return err
			}
			switch out {
			case blobCopied:
				e.stats.blobsCopied.Add(1)
				e.stats.bytes.Add(n)
			case blobMounted:
				e.stats.blobsMounted.Add(1)
			case blobSkipped:
				e.stats.blobsSkipped.Add(1)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return false, bytes, err
	}
	for _, c := range top.children {
		if err := e.putManifests(ctx, dst, c); err != nil {
			return false, bytes, err
		}
	}
	// A registry stores a manifest PUT by tag as it stores one by digest:
	// with a tag to write, that one PUT does both. The local store keeps
	// the manifest and its name apart.
	byTag := ""
	if _, isReg := dst.(*registryEndpoint); isReg {
		byTag = tag
	}
	tagged, err := e.putManifest(ctx, dst, top, byTag)
	if err != nil {
		return false, bytes, err
	}
	if !tagged {
		if err := dst.name(ctx, tag, top.desc, top.data, it.Source.String()); err != nil {
			return false, bytes, fmt.Errorf("tagging %s: %w", d, err)
		}
	}
	return true, bytes, nil
}

// childrenPresent reports whether every manifest under n is at dst.
func childrenPresent(ctx context.Context, dst endpoint, n *node) (bool, error) {
	for _, c := range n.children {
		_, found, err := dst.headManifest(ctx, c.desc.Digest.String())
		if err != nil || !found {
			return false, err
		}
		if ok, err := childrenPresent(ctx, dst, c); err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// putManifests writes n's children (recursively) and then n, by digest.
func (e *Engine) putManifests(ctx context.Context, dst endpoint, n *node) error {
	for _, c := range n.children {
		if err := e.putManifests(ctx, dst, c); err != nil {
			return err
		}
	}
	_, err := e.putManifest(ctx, dst, n, "")
	return err
}

// putManifest writes n itself (by tag when tag is not "", else by digest)
// unless this run already wrote it to dst's repository; tagged reports
// whether the tag was written by this PUT.
func (e *Engine) putManifest(ctx context.Context, dst endpoint, n *node, tag string) (tagged bool, err error) {
	d := n.desc.Digest.String()
	reference := d
	if tag != "" {
		reference = tag
	}
	// Once per repository and run, never twice at the same time: a
	// concurrent re-PUT rewrites the registry's links while another image's
	// index PUT checks them (see blobLedger). A second image with the same
	// digest finds it written and only adds its own tag, after this one.
	ran, err := e.blobs.repos.do(ctx, "manifest "+dst.location()+" "+dst.repoName()+" "+d, func() error {
		return dst.putManifest(ctx, reference, n.data, string(n.desc.MediaType))
	})
	if err != nil {
		return false, fmt.Errorf("writing manifest %s to %s: %w", d, dst, err)
	}
	if ran {
		e.stats.manifests.Add(1)
	}
	return ran && tag != "", nil
}
