package engine

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// The journal makes the blob-location cache survive a killed process.
// The snapshot (the JSON file) is written every interval and at the end of
// a run; what a run learns in between is appended, one line per change, to
// PATH.journal as it happens. A run killed with SIGKILL (the OOM killer, a
// closed laptop lid, kill -9 of a stuck job) therefore leaves every blob it
// placed on record, and its successor mounts or skips them instead of
// uploading them again. This matters most for small blobs, which the blob
// path uploads without a HEAD when the cache does not know them.
//
// Writers hold a shared flock on the journal while appending a line; a
// save holds an exclusive one while it folds the journal into the snapshot
// and truncates it, so no line of a concurrent process is lost between the
// read and the truncation. A torn last line (killed mid-write) is skipped.
//
// A small blob is uploaded without asking the registry first, so a kill
// between the registry storing it and this process writing its line would
// leave a blob the successor does not know about and sends again. Before
// such an upload an intent line (P) is written; a later line for the same
// blob and repository (held, or not held) resolves it. An intent still
// unresolved when a run starts means "may be there": the blob path asks
// the registry (HEAD) before uploading it. Saves keep unresolved intents
// in the journal instead of dropping them with the folded lines.

// journalLine is one change: repo of location L holds digest D (or, with
// X, was found not to; with P, is about to be sent it).
type journalLine struct {
	L string `json:"l"`
	D string `json:"d"`
	R string `json:"r"`
	T int64  `json:"t,omitempty"`
	X bool   `json:"x,omitempty"`
	P bool   `json:"p,omitempty"`
}

// maxIntents bounds the unresolved intents kept: each is at most one
// upload in flight when a run was killed, so real journals hold a few.
const maxIntents = 10000

func intentKey(loc, digest, repo string) string { return loc + " " + digest + " " + repo }

func (c *blobLocations) journalPath() string { return c.path + ".journal" }

// appendJournal writes one line. Failing to is logged once and otherwise
// ignored: the snapshot still holds what was saved, the journal only adds
// what a kill would lose.
func (c *blobLocations) appendJournal(l journalLine) {
	data, err := json.Marshal(l)
	if err != nil {
		return
	}
	data = append(data, '\n')
	c.jmu.Lock()
	defer c.jmu.Unlock()
	err = func() error {
		f, err := os.OpenFile(c.journalPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if errors.Is(err, fs.ErrNotExist) {
			// The first change of a cache whose directory the first
			// save would create.
			if err = os.MkdirAll(filepath.Dir(c.journalPath()), 0o700); err == nil {
				f, err = os.OpenFile(c.journalPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
			}
		}
		if err != nil {
			return err
		}
		defer f.Close()
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
			return err
		}
		// One write of a short line with O_APPEND: concurrent writers'
		// lines do not interleave.
		_, err = f.Write(data)
		return err
	}()
	if err != nil && !c.journalWarned {
		c.journalWarned = true
		c.log.Debug("blob location cache: cannot append to the journal; a killed run will forget what it placed since the last save",
			"file", c.journalPath(), "err", err)
	}
}

// readJournal returns the journal's changes; a missing journal has none.
func readJournal(path string) ([]journalLine, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseJournal(io.LimitReader(f, maxBlobCacheFile))
}

func parseJournal(r io.Reader) ([]journalLine, error) {
	var out []journalLine
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		b := bytes.TrimSpace(sc.Bytes())
		var l journalLine
		if len(b) == 0 || json.Unmarshal(b, &l) != nil || l.L == "" || l.D == "" || l.R == "" {
			continue // torn or foreign line
		}
		out = append(out, l)
	}
	return out, sc.Err()
}

// replayLocked applies journal lines to the cache in order. Holders this
// process found stale stay out, as in mergeLocked.
func (c *blobLocations) replayLocked(lines []journalLine) {
	for _, l := range lines {
		key := intentKey(l.L, l.D, l.R)
		if l.P {
			if len(c.intents) < maxIntents {
				c.intents[key] = true
			}
			continue
		}
		delete(c.intents, key)
		if l.X {
			c.dropLocked(l.L, l.D, l.R)
			continue
		}
		if c.gone[l.L+" "+l.D][l.R] {
			continue
		}
		c.merge1Locked(l.L, l.D, &locEntry{T: l.T, Repos: []string{l.R}}, true)
	}
}

// lockJournal takes the exclusive lock that stops appends while a save
// folds the journal into the snapshot; unlock releases it. A journal that
// cannot be opened yields a no-op lock (there is nothing to fold).
func (c *blobLocations) lockJournal() (unlock func()) {
	f, err := os.OpenFile(c.journalPath(), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return func() {}
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return func() {}
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}
}

// resetJournal empties the journal once its lines are in the snapshot,
// keeping the unresolved intents (called holding the exclusive lock).
func (c *blobLocations) resetJournal(intents []string) {
	var keep []byte
	for _, key := range intents {
		loc, rest, _ := strings.Cut(key, " ")
		digest, repo, _ := strings.Cut(rest, " ")
		if b, err := json.Marshal(journalLine{L: loc, D: digest, R: repo, P: true}); err == nil {
			keep = append(append(keep, b...), '\n')
		}
	}
	err := os.Truncate(c.journalPath(), 0)
	if err == nil && len(keep) > 0 {
		var f *os.File
		if f, err = os.OpenFile(c.journalPath(), os.O_WRONLY|os.O_APPEND, 0o600); err == nil {
			_, err = f.Write(keep)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		c.log.Debug("blob location cache: cannot reset the journal", "file", c.journalPath(), "err", err)
	}
}

// intend notes, before a small blob is sent to repo without a HEAD, that
// it may be there from now on (see the intents above).
func (c *blobLocations) intend(loc, digest, repo string) {
	if c == nil {
		return
	}
	c.load()
	key := intentKey(loc, digest, repo)
	c.mu.Lock()
	if c.intents[key] || len(c.intents) >= maxIntents {
		c.mu.Unlock()
		return
	}
	c.intents[key] = true
	c.mu.Unlock()
	c.appendJournal(journalLine{L: loc, D: digest, R: repo, P: true})
}

// uncertain reports whether an earlier (killed) run may have sent digest
// to repo of loc without recording the result.
func (c *blobLocations) uncertain(loc, digest, repo string) bool {
	if c == nil {
		return false
	}
	c.load()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.intents[intentKey(loc, digest, repo)]
}
