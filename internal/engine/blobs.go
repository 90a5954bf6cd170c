package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// blobLedger remembers, per destination location and digest, which
// repositories hold the blob and whether an upload is in flight, so every
// unique blob crosses the wire at most once per destination per run: the
// first image to need a blob uploads it, the others wait for that upload and
// then mount it into their own repository.
//
// Work on one (location, digest, repository) is also done at most once at a
// time: registries with a filesystem backend (distribution) rewrite a
// repository's blob link on every mount, non-atomically, and a manifest PUT
// reading that link at the same moment fails with DIGEST_INVALID /
// MANIFEST_BLOB_UNKNOWN. Two images of one repository sharing a layer must
// therefore not both mount it.
type blobLedger struct {
	mu    sync.Mutex
	m     map[string]*blobState // location + " " + digest
	repos flights               // location + " " + digest + " " + repo
}

type blobState struct {
	uploading chan struct{}   // non-nil while the first upload is in flight
	holders   map[string]bool // repositories known to hold the blob
}

func newBlobLedger() *blobLedger {
	return &blobLedger{m: map[string]*blobState{}, repos: flights{m: map[string]*flight{}}}
}

// flights runs one function per key at a time and remembers successes;
// a failure is forgotten so a later caller tries again.
type flights struct {
	mu sync.Mutex
	m  map[string]*flight
}

type flight struct {
	done chan struct{}
	err  error
}

// do runs fn for key unless it already succeeded (ran=false) or is running
// (waits for it).
func (f *flights) do(ctx context.Context, key string, fn func() error) (ran bool, err error) {
	for {
		f.mu.Lock()
		fl := f.m[key]
		if fl == nil {
			fl = &flight{done: make(chan struct{})}
			f.m[key] = fl
			f.mu.Unlock()
			err := fn()
			f.mu.Lock()
			fl.err = err
			if err != nil {
				delete(f.m, key)
			}
			close(fl.done)
			f.mu.Unlock()
			return true, err
		}
		f.mu.Unlock()
		select {
		case <-fl.done:
		case <-ctx.Done():
			return false, ctx.Err()
		}
		if fl.err == nil {
			return false, nil
		}
		// It failed and was forgotten: try ourselves.
	}
}

// blobOutcome says how a blob got to its destination.
type blobOutcome int

const (
	blobSkipped blobOutcome = iota // already there
	blobMounted                    // cross-repository mount
	blobCopied                     // bytes transferred
)

// ensureBlob makes desc present in dst, copying it from src if needed.
// It returns how, and the bytes transferred.
func (e *Engine) ensureBlob(ctx context.Context, src, dst endpoint, desc v1.Descriptor) (blobOutcome, int64, error) {
	digest := desc.Digest.String()
	key := dst.location() + " " + digest
	repo := dst.repoName()
	if _, ok := dst.(*storeEndpoint); ok {
		repo = "" // one blob pool for the whole store
	}
	var out blobOutcome
	var n int64
	_, err := e.blobs.repos.do(ctx, key+" "+repo, func() error {
		var err error
		out, n, err = e.placeBlob(ctx, src, dst, desc, key, repo)
		return err
	})
	return out, n, err // out is blobSkipped when another image did the work
}

// placeBlob puts one blob in one repository: the first repository of a
// location gets an upload (or a HEAD-skip), later ones a mount from a
// repository that holds it.
func (e *Engine) placeBlob(ctx context.Context, src, dst endpoint, desc v1.Descriptor, key, repo string) (blobOutcome, int64, error) {
	l := e.blobs
	for {
		l.mu.Lock()
		st := l.m[key]
		if st == nil {
			st = &blobState{holders: map[string]bool{}}
			l.m[key] = st
		}
		if len(st.holders) == 0 && st.uploading != nil {
			wait := st.uploading
			l.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return 0, 0, ctx.Err()
			}
		}
		var from []string
		for r := range st.holders {
			from = append(from, r)
		}
		var mine chan struct{}
		if len(from) == 0 {
			mine = make(chan struct{})
			st.uploading = mine
		}
		l.mu.Unlock()

		out, n, err := e.transferLimited(ctx, src, dst, desc, from)
		if err == nil {
			e.rememberHolder(dst, desc.Digest.String(), repo)
		}
		l.mu.Lock()
		if err == nil {
			st.holders[repo] = true
		}
		if mine != nil {
			st.uploading = nil
			close(mine)
		}
		l.mu.Unlock()
		return out, n, err
	}
}

// transferLimited is transferBlob holding a slot of the blob semaphore.
// Waiting for another image's upload holds no slot, so waiters never
// starve the uploads they wait for.
func (e *Engine) transferLimited(ctx context.Context, src, dst endpoint, desc v1.Descriptor, from []string) (blobOutcome, int64, error) {
	sem := e.blobSem
	if _, reg := dst.(*registryEndpoint); reg && desc.Size <= smallBlobMax {
		// Read whole before it is sent: never holds two request slots,
		// so as many as the registry limit may be in flight.
		sem = e.smallSem
	}
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	}
	defer func() { <-sem }()
	return e.transferBlob(ctx, src, dst, desc, from)
}

// transferBlob puts one blob into dst: skip when present, else mount from a
// repository of the same registry known to hold it (mountFrom, or the
// source repository when source and destination share the registry), else
// stream it from src.
func (e *Engine) transferBlob(ctx context.Context, src, dst endpoint, desc v1.Descriptor, mountFrom []string) (blobOutcome, int64, error) {
	digest := desc.Digest.String()
	if sd, ok := dst.(*storeEndpoint); ok {
		if _, ok := sd.s.HasBlob(digest); ok {
			return blobSkipped, 0, nil
		}
		var n int64
		err := retry(ctx, e.opts.RetryTimes, e.log, "copy blob "+digest, func() error {
			r := e.newBlobReader(ctx, src, desc)
			defer r.Close()
			_, err := sd.s.WriteBlob(digest, desc.Size, r)
			n = r.read
			if r.verifyErr != nil {
				return permanent(r.verifyErr)
			}
			return err
		})
		if err != nil {
			return 0, n, fmt.Errorf("copying blob %s to %s: %w", digest, dst, err)
		}
		return blobCopied, desc.Size, nil
	}
	rd := dst.(*registryEndpoint)
	small := desc.Size <= smallBlobMax
	cached := "" // mount source taken from the persistent cache (a hint)
	if len(mountFrom) == 0 {
		// Nothing in this run put the blob at this registry yet. A mount
		// from a repository known to hold it (the source repository on the
		// same registry, or the blob-location cache) answers "present" in
		// one request and needs no HEAD first: a refused mount opens the
		// upload at once.
		if rs, same := src.(*registryEndpoint); same && rs.c.host == rd.c.host && rs.repo != rd.repo {
			mountFrom = []string{rs.repo}
		} else if cached = e.cachedHolder(rd, digest); cached != "" {
			mountFrom = []string{cached}
		} else if !small || e.blobLocs == nil || e.blobLocs.holds(rd.location(), digest, rd.repo) ||
			e.blobLocs.uncertain(rd.location(), digest, rd.repo) {
			// A blob nobody knows about: HEAD first, one cheap request
			// that saves re-sending it when it is already there. Small
			// blobs skip it when the blob-location cache is on and does
			// not list this repository: the cache (with its journal)
			// knows what earlier airlock runs, killed ones too, put here,
			// and a small upload costs about what the HEAD does; a
			// registry that has the blob from elsewhere stores it again.
			// When the cache lists this repository, or a killed run was
			// sending the blob there, the HEAD settles it.
			ok, err := rd.hasBlob(ctx, digest)
			if err != nil {
				return 0, 0, fmt.Errorf("checking blob %s in %s: %w", digest, dst, err)
			}
			if ok {
				return blobSkipped, 0, nil
			}
			e.forgetHolder(rd, digest, rd.repo)
		} else {
			// Sent without asking: journal the intent first so that a
			// kill before the result is recorded leaves "may be there".
			e.blobLocs.intend(rd.location(), digest, rd.repo)
		}
	}
	var out blobOutcome
	var n int64
	var data []byte // a small blob, read and verified once, re-sent from memory on retries
	load := func() error {
		if data != nil {
			return nil
		}
		r := e.newBlobReader(ctx, src, desc)
		b, err := io.ReadAll(r)
		r.Close()
		n += r.read
		if r.verifyErr != nil {
			return permanent(r.verifyErr)
		}
		if err != nil {
			return err
		}
		data = b
		return nil
	}
	err := retry(ctx, e.opts.RetryTimes, e.log, "copy blob "+digest, func() error {
		from := ""
		if len(mountFrom) > 0 {
			from = mountFrom[0]
		}
		if small && from == "" {
			if err := load(); err != nil {
				return err
			}
			// One request where the registry takes the blob in the POST
			// (OCI single-request upload); otherwise POST + PUT.
			created, loc, err := rd.c.uploadSmall(ctx, rd.repo, digest, data)
			if err != nil {
				return err
			}
			if !created {
				if err := rd.c.putBlob(ctx, loc, digest, desc.Size, bytes.NewReader(data)); err != nil {
					return err
				}
			}
			out = blobCopied
			return nil
		}
		mounted, loc, err := rd.c.startUpload(ctx, rd.repo, digest, from)
		if err != nil && from != "" && from == cached && !transient(err) && ctx.Err() == nil {
			// A registry may answer a mount from a repository we cannot
			// read (or that is gone) with an error instead of 202: the
			// hint is useless, upload.
			e.log.Debug("mount from cached holder failed, uploading", "digest", digest, "from", cached, "err", err)
			e.forgetHolder(rd, digest, cached)
			mountFrom, cached, from = nil, "", ""
			mounted, loc, err = rd.c.startUpload(ctx, rd.repo, digest, "")
		}
		if err != nil {
			return err
		}
		if mounted {
			out = blobMounted
			return nil
		}
		if from != "" && from == cached {
			// Refused: it does not hold the blob (any more).
			e.forgetHolder(rd, digest, cached)
			mountFrom, cached = nil, ""
		}
		// Mount refused (or none asked): upload to the location given.
		if small {
			if err := load(); err != nil {
				return err
			}
			err = rd.c.putBlob(ctx, loc, digest, desc.Size, bytes.NewReader(data))
		} else {
			r := e.newBlobReader(ctx, src, desc)
			defer r.Close()
			var body io.Reader = r
			if desc.Size == 0 {
				body = http.NoBody
			}
			err = rd.c.putBlob(ctx, loc, digest, desc.Size, body)
			n += r.read
			if r.verifyErr != nil {
				return permanent(r.verifyErr)
			}
		}
		if err != nil {
			return err
		}
		out = blobCopied
		return nil
	})
	if err != nil {
		return 0, n, fmt.Errorf("copying blob %s to %s: %w", digest, dst, err)
	}
	if out == blobCopied {
		return out, desc.Size, nil
	}
	return out, 0, nil
}

// blobReader streams one blob from a source, verifying size and digest as
// it goes, and resuming an interrupted download with a Range request (or by
// re-reading and discarding when the source ignores Range). The consumer
// sees one continuous, verified stream; at the end a mismatch is returned
// instead of io.EOF, so a corrupt blob is never committed.
type blobReader struct {
	ctx       context.Context
	e         *Engine
	src       endpoint
	desc      v1.Descriptor
	body      io.ReadCloser
	off       int64 // bytes delivered to the consumer
	h         hash.Hash
	resumes   int
	read      int64 // bytes received over the wire (progress, stats)
	verifyErr error
}

func (e *Engine) newBlobReader(ctx context.Context, src endpoint, desc v1.Descriptor) *blobReader {
	return &blobReader{ctx: ctx, e: e, src: src, desc: desc, h: hasherFor(desc.Digest)}
}

// hasherFor returns the hash a digest is computed with: registries accept
// sha512 blobs (the OCI spec allows them; airlock's own registry serves
// them), and verifying those with sha256 would fail every copy.
// Unknown algorithms get sha256, and the comparison then fails loudly.
func hasherFor(d v1.Hash) hash.Hash {
	if d.Algorithm == "sha512" {
		return sha512.New()
	}
	return sha256.New()
}

func (r *blobReader) open() error {
	body, start, err := r.src.openBlob(r.ctx, r.desc.Digest.String(), r.off)
	if err != nil {
		return err
	}
	// The source ignored Range: skip what we already delivered.
	if start < r.off {
		if _, err := io.CopyN(io.Discard, body, r.off-start); err != nil {
			body.Close()
			return err
		}
	}
	r.body = body
	return nil
}

func (r *blobReader) Read(p []byte) (int, error) {
	if r.verifyErr != nil {
		return 0, r.verifyErr
	}
	for {
		if r.body == nil {
			if err := r.open(); err != nil {
				return 0, err
			}
		}
		// Never read past the declared size: a source sending more is wrong.
		if rem := r.desc.Size - r.off; int64(len(p)) > rem+1 {
			p = p[:rem+1]
		}
		n, err := r.body.Read(p)
		if n > 0 {
			r.h.Write(p[:n])
			r.off += int64(n)
			r.read += int64(n)
			r.e.stats.inflight.Add(int64(n))
		}
		if r.off > r.desc.Size {
			r.verifyErr = fmt.Errorf("blob %s: source sent more than the %d bytes its descriptor says", r.desc.Digest, r.desc.Size)
			return 0, r.verifyErr
		}
		if err == io.EOF {
			if r.off != r.desc.Size {
				if r.resumable() {
					continue
				}
				r.verifyErr = fmt.Errorf("blob %s: got %d bytes, want %d", r.desc.Digest, r.off, r.desc.Size)
				return n, r.verifyErr
			}
			if got := r.desc.Digest.Algorithm + ":" + hex.EncodeToString(r.h.Sum(nil)); got != r.desc.Digest.String() {
				r.verifyErr = fmt.Errorf("blob %s: content hashes to %s (corrupt source or transfer)", r.desc.Digest, got)
				return n, r.verifyErr
			}
			return n, io.EOF
		}
		if err != nil {
			if transient(err) && r.resumable() {
				if n > 0 {
					return n, nil
				}
				continue
			}
			return n, err
		}
		if n > 0 {
			return n, nil
		}
	}
}

// resumable closes the broken body and reports whether to reopen at r.off.
func (r *blobReader) resumable() bool {
	if r.body != nil {
		r.body.Close()
		r.body = nil
	}
	if r.resumes >= r.e.opts.RetryTimes || r.ctx.Err() != nil {
		return false
	}
	r.resumes++
	r.e.log.Debug("resuming blob download", "digest", r.desc.Digest.String(), "offset", r.off, "attempt", r.resumes)
	select {
	case <-time.After(backoff(r.resumes, nil)):
	case <-r.ctx.Done():
		return false
	}
	return true
}

func (r *blobReader) Close() error {
	if r.body != nil {
		err := r.body.Close()
		r.body = nil
		return err
	}
	return nil
}

// statCounters are updated atomically by concurrent copies.
type statCounters struct {
	manifests, blobsCopied, blobsMounted, blobsSkipped, bytes atomic.Int64
	inflight                                                  atomic.Int64 // bytes read from sources (progress)
	itemsDone                                                 atomic.Int64
	plannedBytes                                              atomic.Int64 // sizes of images being copied (progress total)
}
