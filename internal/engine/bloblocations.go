package engine

import (
	"cmp"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/airlock-mirror/airlock/internal/atomicfile"
)

// blobLocations is the persistent half of the blob ledger: for each
// destination registry (the ledger's location key, "docker://HOST") and
// blob digest, the few repositories most recently seen holding the blob.
//
// The ledger alone forgets everything when the process ends. A mirror run
// of many hours that dies on a dropped connection and is started again
// would then upload a blob that is already in repository A of the
// destination once more into repository B. With this cache the new process
// asks the registry to mount it from A instead, which moves no bytes.
//
// Entries are hints, never trusted: the blob path still HEADs its own
// repository first, and a mount the registry refuses (202 with an upload
// location, or an error) falls back to uploading and drops the entry. Only
// registry destinations are cached; the local store has one blob pool and
// needs none.
//
// The file is JSON (see locFile), bounded by maxRepos repositories per blob
// and maxEntries blobs in all (least recently used evicted). It is loaded
// once per Engine, on first use, and written with atomicfile during a run
// (periodically, see startBlobCache) and at the end of Run, so an
// interrupted run leaves what it learned; every change in between is also
// appended to a journal beside it (bloblocations_journal.go), so a killed
// run leaves it too. Before writing, what is on disk
// is merged in when it changed since it was last read, so concurrent
// airlock processes sharing the file add up their knowledge; when two
// writes race, the last rename wins and the other's newest entries are lost
// until it writes again, which only costs an upload. A file that cannot be
// read or parsed is ignored with a warning and replaced.
type blobLocations struct {
	path string
	log  *slog.Logger

	// Bounds and save cadence; fields so tests can shrink them.
	maxEntries int
	maxRepos   int
	tick       time.Duration // how often the saver looks
	interval   time.Duration // save whatever changed at least this often
	batch      int           // ...and sooner (at a tick) after this many changes
	now        func() time.Time

	loadOnce sync.Once
	mu       sync.Mutex
	m        map[string]map[string]*locEntry // location -> digest -> entry
	n        int                             // entries in m
	// gone are holders this process found stale (location + " " + digest
	// -> repositories): merging the file must not bring them back.
	gone     map[string]map[string]bool
	changes  int               // records and forgets not yet written
	lastSave time.Time         // last write, or attempt to write
	failed   bool              // the last write failed
	warned   bool              // about a failed write (once is enough)
	diskSum  [sha256.Size]byte // of the file as we last read or wrote it

	saveMu sync.Mutex // one save at a time

	// intents are small-blob uploads begun without a HEAD and not yet
	// resolved (intentKey -> true): see the journal.
	intents map[string]bool

	// repos is, per location, every repository some entry lists (see
	// knowsRepo); built lazily.
	repos map[string]map[string]bool

	jmu           sync.Mutex // one journal append at a time (per process)
	journalWarned bool       // about a failed append (once is enough)
}

// locFile is the on-disk format:
//
//	{"version":1,"locations":{"docker://mirror.example:5000":{
//	  "sha256:4f1c…":{"t":1735689600,"repos":["ocp/release","ocp/tools"]}}}}
//
// repos are most recent first; t is when the entry last changed (Unix
// seconds), used to merge and to evict the least recently used.
type locFile struct {
	Version   int                             `json:"version"`
	Locations map[string]map[string]*locEntry `json:"locations"`
}

type locEntry struct {
	T     int64    `json:"t"`
	Repos []string `json:"repos"`
}

const (
	blobLocationsVersion = 1
	// maxBlobCacheFile guards against reading a huge foreign file: the
	// bounds below keep a real one well under 20 MB.
	maxBlobCacheFile = 64 << 20
)

// newBlobLocations returns the cache stored at path, or nil (disabled)
// when path is "". Nothing is read until first use.
func newBlobLocations(path string, log *slog.Logger) *blobLocations {
	if path == "" {
		return nil
	}
	return &blobLocations{
		path:       path,
		log:        log,
		maxEntries: 50000,
		maxRepos:   3,
		tick:       5 * time.Second,
		interval:   30 * time.Second,
		batch:      1000,
		now:        time.Now,
		m:          map[string]map[string]*locEntry{},
		gone:       map[string]map[string]bool{},
		intents:    map[string]bool{},
	}
}

func (c *blobLocations) load() {
	c.loadOnce.Do(func() {
		f, sum, err := readLocFile(c.path)
		lines, jerr := readJournal(c.journalPath())
		c.mu.Lock()
		defer c.mu.Unlock()
		c.lastSave = time.Now()
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			c.log.Warn("blob location cache ignored: starting with an empty one, which replaces it at the next save",
				"file", c.path, "err", err)
			c.changes++ // replace the broken file even if the run learns nothing
		default:
			c.diskSum = sum
			c.mergeLocked(f)
		}
		if jerr != nil {
			c.log.Debug("blob location cache: journal unreadable, ignored", "file", c.journalPath(), "err", jerr)
		}
		if len(lines) > 0 {
			// A run that ended without its final save (killed) left
			// these: fold them into the snapshot at the next save.
			c.replayLocked(lines)
			c.changes++
		}
		c.evictLocked()
	})
}

// readLocFile reads and checks the cache file; sum is the SHA-256 of its
// bytes (also when they do not parse).
func readLocFile(path string) (f *locFile, sum [sha256.Size]byte, err error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, sum, err
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxBlobCacheFile+1))
	if err != nil {
		return nil, sum, err
	}
	sum = sha256.Sum256(data)
	if len(data) > maxBlobCacheFile {
		return nil, sum, fmt.Errorf("more than %d bytes, more than a blob location cache can be", maxBlobCacheFile)
	}
	f = &locFile{}
	if err := json.Unmarshal(data, f); err != nil {
		return nil, sum, fmt.Errorf("not a blob location cache: %w", err)
	}
	if f.Version != blobLocationsVersion {
		return nil, sum, fmt.Errorf("blob location cache version %d, want %d", f.Version, blobLocationsVersion)
	}
	return f, sum, nil
}

// mergeLocked adds f's entries to the cache: for a blob in both, the
// repositories of the newer entry come first. Holders this process found
// stale are left out.
func (c *blobLocations) mergeLocked(f *locFile) {
	for loc, digests := range f.Locations {
		for digest, in := range digests {
			c.merge1Locked(loc, digest, in, false)
		}
	}
}

// merge1Locked adds one entry (see mergeLocked); with later, in is newer
// than what the cache holds even at the same timestamp (a journal line
// replayed in order).
func (c *blobLocations) merge1Locked(loc, digest string, in *locEntry, later bool) {
	if !strings.HasPrefix(loc, "docker://") || in == nil || !strings.Contains(digest, ":") {
		return
	}
	gone := c.gone[loc+" "+digest]
	var repos []string
	for _, r := range in.Repos {
		if r != "" && !gone[r] && !slices.Contains(repos, r) {
			repos = append(repos, r)
		}
	}
	if len(repos) == 0 {
		return
	}
	byDigest := c.m[loc]
	if byDigest == nil {
		byDigest = map[string]*locEntry{}
		c.m[loc] = byDigest
	}
	cur := byDigest[digest]
	if cur == nil {
		byDigest[digest] = &locEntry{T: in.T, Repos: repos[:min(len(repos), c.maxRepos)]}
		c.n++
		return
	}
	first, second := cur.Repos, repos
	if in.T > cur.T || later && in.T == cur.T {
		first, second = repos, cur.Repos
		cur.T = in.T
	}
	merged := slices.Clone(first)
	for _, r := range second {
		if !slices.Contains(merged, r) {
			merged = append(merged, r)
		}
	}
	cur.Repos = merged[:min(len(merged), c.maxRepos)]
}

// evictLocked drops the least recently changed entries beyond maxEntries.
func (c *blobLocations) evictLocked() {
	if c.n <= c.maxEntries {
		return
	}
	type aged struct {
		loc, digest string
		t           int64
	}
	all := make([]aged, 0, c.n)
	for loc, digests := range c.m {
		for d, en := range digests {
			all = append(all, aged{loc, d, en.T})
		}
	}
	slices.SortFunc(all, func(a, b aged) int {
		return cmp.Or(cmp.Compare(a.t, b.t), strings.Compare(a.loc, b.loc), strings.Compare(a.digest, b.digest))
	})
	for _, a := range all[:c.n-c.maxEntries] {
		delete(c.m[a.loc], a.digest)
		if len(c.m[a.loc]) == 0 {
			delete(c.m, a.loc)
		}
	}
	c.n = c.maxEntries
}

// holder returns the most recent repository of loc known to hold digest,
// other than exclude; "" when none is known.
func (c *blobLocations) holder(loc, digest, exclude string) string {
	if c == nil {
		return ""
	}
	c.load()
	c.mu.Lock()
	defer c.mu.Unlock()
	if en := c.m[loc][digest]; en != nil {
		for _, r := range en.Repos {
			if r != exclude {
				return r
			}
		}
	}
	return ""
}

// record notes that repo of loc holds digest (it was uploaded, mounted or
// found there).
func (c *blobLocations) record(loc, digest, repo string) {
	if c == nil {
		return
	}
	c.load()
	c.mu.Lock()
	if g := c.gone[loc+" "+digest]; g != nil {
		delete(g, repo)
	}
	byDigest := c.m[loc]
	if byDigest == nil {
		byDigest = map[string]*locEntry{}
		c.m[loc] = byDigest
	}
	en := byDigest[digest]
	if en == nil {
		en = &locEntry{}
		byDigest[digest] = en
		c.n++
	}
	en.T = c.now().Unix()
	ikey := intentKey(loc, digest, repo)
	resolves := c.intents[ikey]
	delete(c.intents, ikey)
	if len(en.Repos) > 0 && en.Repos[0] == repo && !resolves {
		c.mu.Unlock()
		return // already the most recent: nothing worth a write
	}
	en.Repos = slices.DeleteFunc(en.Repos, func(r string) bool { return r == repo })
	en.Repos = slices.Insert(en.Repos, 0, repo)
	en.Repos = en.Repos[:min(len(en.Repos), c.maxRepos)]
	c.changes++
	t := en.T
	c.mu.Unlock()
	c.appendJournal(journalLine{L: loc, D: digest, R: repo, T: t})
}

// knowsRepo reports whether the cache lists repo of loc as holding any blob:
// whether an earlier airlock run (or this one, before the first question)
// wrote there. A snapshot built once per location on first use: what this
// run writes later does not change the answer, so every image of a
// repository new to the cache is checked the same way (one tag list).
func (c *blobLocations) knowsRepo(loc, repo string) bool {
	if c == nil {
		return false
	}
	c.load()
	c.mu.Lock()
	defer c.mu.Unlock()
	set := c.repos[loc]
	if set == nil {
		set = map[string]bool{}
		for _, en := range c.m[loc] {
			for _, r := range en.Repos {
				set[r] = true
			}
		}
		if c.repos == nil {
			c.repos = map[string]map[string]bool{}
		}
		c.repos[loc] = set
	}
	return set[repo]
}

// holds reports whether the cache lists repo of loc as holding digest.
func (c *blobLocations) holds(loc, digest, repo string) bool {
	if c == nil {
		return false
	}
	c.load()
	c.mu.Lock()
	defer c.mu.Unlock()
	en := c.m[loc][digest]
	return en != nil && slices.Contains(en.Repos, repo)
}

// forget drops repo as a holder of digest: the registry says it does not
// hold it (HEAD 404, refused mount).
func (c *blobLocations) forget(loc, digest, repo string) {
	if c == nil {
		return
	}
	c.load()
	c.mu.Lock()
	ikey := intentKey(loc, digest, repo)
	resolves := c.intents[ikey]
	delete(c.intents, ikey)
	if !c.dropLocked(loc, digest, repo) && !resolves {
		c.mu.Unlock()
		return
	}
	key := loc + " " + digest
	if c.gone[key] == nil {
		c.gone[key] = map[string]bool{}
	}
	c.gone[key][repo] = true
	c.changes++
	c.mu.Unlock()
	c.appendJournal(journalLine{L: loc, D: digest, R: repo, X: true})
}

// dropLocked removes repo from digest's holders; false when it was not one.
func (c *blobLocations) dropLocked(loc, digest, repo string) bool {
	en := c.m[loc][digest]
	if en == nil || !slices.Contains(en.Repos, repo) {
		return false
	}
	en.Repos = slices.DeleteFunc(en.Repos, func(r string) bool { return r == repo })
	if len(en.Repos) == 0 {
		delete(c.m[loc], digest)
		c.n--
	}
	return true
}

// save writes the cache when something changed since the last write (or
// always, with force), merging in what another process wrote meanwhile.
func (c *blobLocations) save(force bool) error {
	if c == nil {
		return nil
	}
	if force {
		c.load()
	}
	// Without force there is something to write only after record or
	// forget, which loaded the file.
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	c.mu.Lock()
	if c.changes == 0 && !force {
		c.mu.Unlock()
		return nil
	}
	seen := c.diskSum
	c.mu.Unlock()

	// No appends (of any process) while the journal is folded in and
	// emptied.
	unlock := c.lockJournal()
	defer unlock()
	lines, jerr := readJournal(c.journalPath())

	// Merge the file when someone else replaced it since we last saw it
	// (its content, not its stat: renames reuse inodes within one clock
	// tick).
	f, sum, err := readLocFile(c.path)
	switch {
	case errors.Is(err, fs.ErrNotExist), sum == seen:
		f = nil
	case err != nil:
		c.log.Debug("blob location cache: not merging the unreadable file, replacing it", "file", c.path, "err", err)
		f = nil
	}

	c.mu.Lock()
	if f != nil {
		c.mergeLocked(f)
	}
	c.replayLocked(lines)
	c.evictLocked()
	data, err := json.Marshal(locFile{Version: blobLocationsVersion, Locations: c.m})
	written := c.changes
	intents := slices.Sorted(maps.Keys(c.intents))
	c.mu.Unlock()
	if err != nil {
		return err
	}
	err = atomicfile.Write(c.path, data, 0o600)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastSave = time.Now() // after a failure too: see due
	c.failed = err != nil
	if err != nil {
		return err
	}
	c.changes -= written
	c.diskSum = sha256.Sum256(data)
	if jerr == nil {
		// Every line is in the snapshot now (an unreadable journal is
		// kept: its lines may still be read by a later save).
		c.resetJournal(intents)
	}
	return nil
}

// due reports whether the periodic saver should write now.
func (c *blobLocations) due() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.changes > 0 && time.Since(c.lastSave) >= c.interval {
		return true
	}
	return c.changes >= c.batch && !c.failed // a failing write is retried once an interval only
}

// startBlobCache starts writing the blob location cache periodically for
// the duration of a Run; the returned function stops that and writes what
// is left. Failing to write is logged, never fails the run: the cache only
// saves uploads.
func (e *Engine) startBlobCache() (stop func()) {
	c := e.blobLocs
	if c == nil {
		return func() {}
	}
	saveLogged := func() {
		err := c.save(false)
		if err == nil {
			return
		}
		c.mu.Lock()
		warned := c.warned
		c.warned = true
		c.mu.Unlock()
		if warned {
			e.log.Debug("could not write the blob location cache", "file", c.path, "err", err)
			return
		}
		e.log.Warn("could not write the blob location cache; blobs it would have remembered may be uploaded again by a later run",
			"file", c.path, "err", err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(c.tick)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				if c.due() {
					saveLogged()
				}
			case <-done:
				return
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
		saveLogged()
	}
}

// cachedHolder returns a repository of rd's registry that the cache says
// holds digest (not rd's own); "" when none is known.
func (e *Engine) cachedHolder(rd *registryEndpoint, digest string) string {
	return e.blobLocs.holder(rd.location(), digest, rd.repo)
}

// forgetHolder drops repo as a cached holder of digest in rd's registry.
func (e *Engine) forgetHolder(rd *registryEndpoint, digest, repo string) {
	e.blobLocs.forget(rd.location(), digest, repo)
}

// rememberHolder records that repo of dst holds digest (registries only).
func (e *Engine) rememberHolder(dst endpoint, digest, repo string) {
	if _, ok := dst.(*registryEndpoint); ok {
		e.blobLocs.record(dst.location(), digest, repo)
	}
}
