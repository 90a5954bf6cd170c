package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestBlobCacheJournalSurvivesKill: a process that records holders and
// never saves (killed) leaves them in the journal, and the next process
// knows them: forgotten holders stay forgotten, a torn last line is
// skipped, and the next save folds the journal into the snapshot and
// empties it.
func TestBlobCacheJournalSurvivesKill(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "blob-locations.json")
	const loc = "docker://reg.example"
	dig := func(i int) string { return fmt.Sprintf("sha256:%064x", i) }

	killed := newBlobLocations(path, testLogger(t))
	for i := range 50 {
		killed.record(loc, dig(i), "a")
	}
	killed.record(loc, dig(7), "b")
	killed.forget(loc, dig(3), "a")
	// No save: the process died. A write cut short leaves a torn line.
	f, err := os.OpenFile(path+".journal", os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatalf("the killed process left no journal: %v", err)
	}
	f.WriteString(`{"l":"docker://reg.example","d":"sha256:ff`)
	f.Close()
	if _, err := os.Stat(path); err == nil {
		t.Fatal("a snapshot exists although nothing was saved: the test proves nothing")
	}

	next := newBlobLocations(path, testLogger(t))
	for i := range 50 {
		want := "a"
		switch i {
		case 3:
			want = ""
		case 7:
			want = "b"
		}
		if got := next.holder(loc, dig(i), ""); got != want {
			t.Errorf("after the kill, holder of blob %d = %q, want %q", i, got, want)
		}
	}
	if !next.holds(loc, dig(7), "a") || next.holds(loc, dig(3), "a") {
		t.Error("holds disagrees with the journal")
	}
	if err := next.save(false); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path + ".journal"); err != nil || st.Size() != 0 {
		t.Errorf("journal after the save: %v, %v; want it empty", st, err)
	}
	snap := readBlobCache(t, path)
	if n := len(snap.Locations[loc]); n != 49 {
		t.Errorf("snapshot holds %d blobs, want 49", n)
	}
}

// TestBlobCacheJournalConcurrentSaves: appends of several processes'
// caches (separate instances on one file) racing with their saves lose no
// line: the save folds and truncates under an exclusive lock.
func TestBlobCacheJournalConcurrentSaves(t *testing.T) {
	path := filepath.Join(t.TempDir(), "blob-locations.json")
	const writers, perWriter = 6, 200
	var wg sync.WaitGroup
	for i := range writers {
		c := newBlobLocations(path, testLogger(t))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range perWriter {
				c.record("docker://reg.example", fmt.Sprintf("sha256:%064x", i*1000+j), fmt.Sprintf("w%d", i))
				if j%17 == 0 {
					if err := c.save(false); err != nil {
						t.Error(err)
					}
				}
			}
			// Killed: the last changes are only in the journal.
		}()
	}
	wg.Wait()
	fresh := newBlobLocations(path, testLogger(t))
	missing := 0
	for i := range writers {
		for j := range perWriter {
			if fresh.holder("docker://reg.example", fmt.Sprintf("sha256:%064x", i*1000+j), "") != fmt.Sprintf("w%d", i) {
				missing++
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d recorded holders lost between snapshot and journal", missing, writers*perWriter)
	}
}

// TestBlobCacheJournalIntents: a small-blob upload begun without a HEAD
// and killed before its result was recorded leaves an intent; the next
// process treats the blob as "may be there" (the blob path HEADs it) even
// after a save, until a record or a forget resolves it.
func TestBlobCacheJournalIntents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "blob-locations.json")
	const loc = "docker://reg.example"
	dig := func(i int) string { return fmt.Sprintf("sha256:%064x", i) }

	killed := newBlobLocations(path, testLogger(t))
	killed.intend(loc, dig(1), "a") // killed in flight
	killed.intend(loc, dig(2), "a")
	killed.record(loc, dig(2), "a") // completed and recorded
	killed.intend(loc, dig(3), "a")
	killed.forget(loc, dig(3), "a") // found missing (a failed upload)
	if !killed.uncertain(loc, dig(1), "a") || killed.uncertain(loc, dig(2), "a") || killed.uncertain(loc, dig(3), "a") {
		t.Fatal("the writing process disagrees with its own intents")
	}

	next := newBlobLocations(path, testLogger(t))
	if !next.uncertain(loc, dig(1), "a") {
		t.Error("an unresolved intent of a killed run is not uncertain for its successor")
	}
	if next.uncertain(loc, dig(1), "b") {
		t.Error("an intent for repository a made repository b uncertain")
	}
	if next.uncertain(loc, dig(2), "a") || next.uncertain(loc, dig(3), "a") {
		t.Error("resolved intents are still uncertain")
	}
	if err := next.save(true); err != nil {
		t.Fatal(err)
	}
	// The successor is killed too, before it resolved the intent.
	third := newBlobLocations(path, testLogger(t))
	if !third.uncertain(loc, dig(1), "a") {
		t.Error("a save dropped an unresolved intent")
	}
	third.record(loc, dig(1), "a")
	if err := third.save(true); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path + ".journal"); err != nil || st.Size() != 0 {
		t.Errorf("journal with every intent resolved and saved: %v, %v; want it empty", st, err)
	}
	if fourth := newBlobLocations(path, testLogger(t)); fourth.uncertain(loc, dig(1), "a") || !fourth.holds(loc, dig(1), "a") {
		t.Error("a resolved intent survived, or its record was lost")
	}
}
