package transfer

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// SpaceOptions describe a mirror-to-disk run that writes a transfer set
// into its store directory.
type SpaceOptions struct {
	// Store is the store directory (it need not exist yet); the set is
	// written into it too.
	Store string
	// Incoming are the manifests and blobs the run will read, by digest
	// (orchestrate.InspectBlobs); those the store has are not counted.
	Incoming    map[string]int64
	SegmentSize int64
	Full        bool
	Since       time.Time
}

// SpaceNeed is what such a run writes: every new blob goes into the
// store, and every blob the set ships (new ones and earlier ones no set
// shipped yet) once more into a segment.
type SpaceNeed struct {
	Store int64 // new blobs in the store
	Set   int64 // the segments and the manifest
	// Freed is the previous set in the directory, deleted before the new
	// one is written (after the store is filled).
	Freed int64
}

// Total is the peak the file system must hold beyond what it holds now:
// the store grows first, while the old set is still there; then the old
// set makes room for the new one.
func (n SpaceNeed) Total() int64 {
	if n.Set > n.Freed {
		return n.Store + n.Set - n.Freed
	}
	return n.Store
}

// manifestBytesPerBlob bounds what a blob adds to airlock-transfer.json
// and to the metadata (its entry in blobs, in an image's list, and its
// share of index.json and the plan, written by the run itself, so not
// measurable before it); metadataSlack covers the rest of the metadata.
// Erring high costs a few MB; erring low, a run that fails when full.
const (
	manifestBytesPerBlob = 1024
	metadataSlack        = 64 << 10
)

// EstimateSpace counts what a mirror-to-disk run with a transfer set
// writes, from the manifests alone and the store as it is, with the
// selection Create makes (history, --full, --since).
func EstimateSpace(o SpaceOptions) (SpaceNeed, error) {
	var n SpaceNeed
	hist, err := readHistory(o.Store)
	if err != nil {
		return n, err
	}
	shipped := shippedSets(hist, o.Full)
	pool := filepath.Join(o.Store, "blobs", "sha256")
	sizes := map[string]int64{}
	mtimes := map[string]time.Time{}
	entries, err := os.ReadDir(pool)
	if err != nil && !os.IsNotExist(err) {
		return n, fmt.Errorf("listing blobs of %s: %w", o.Store, err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") || len(e.Name()) != 64 {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			return n, err
		}
		sizes["sha256:"+e.Name()] = fi.Size()
		mtimes["sha256:"+e.Name()] = fi.ModTime()
	}
	for d, sz := range o.Incoming {
		if _, ok := sizes[d]; !ok {
			sizes[d] = sz
			n.Store += sz
		}
	}
	var payload int64
	for d, sz := range sizes {
		n.Set += manifestBytesPerBlob
		if shipped[d] != "" {
			continue
		}
		// A blob already in the store and not newer than --since is left
		// out; incoming blobs are written now, after any --since date.
		if mt, ok := mtimes[d]; ok && !o.Since.IsZero() && !mt.After(o.Since) {
			continue
		}
		payload += tarSize(sz)
	}
	// The metadata goes into segment 1 and, base64, into the manifest.
	for _, it := range metadataItems(o.Store) {
		payload += tarSize(it.size)
		n.Set += it.size*4/3 + 4
	}
	segs := int64(1)
	if o.SegmentSize > 0 {
		segs += payload / o.SegmentSize
	}
	n.Set += payload + segs*(tarSize(1024)+tarTrailer) + metadataSlack
	n.Freed = existingSetBytes(o.Store)
	return n, nil
}

// existingSetBytes is the size of the transfer files already in dir.
func existingSetBytes(dir string) int64 {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var total int64
	for _, e := range entries {
		if !IsTransferFile(e.Name()) {
			continue
		}
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			total += fi.Size()
		}
	}
	return total
}
