// Package transfer writes and reads airlock transfer sets: a local store
// (internal/store) cut into tar segments of bounded size, with a manifest
// (airlock-transfer.json) carrying every segment's size and sha256, so the
// disconnected side knows before anything is pushed exactly which file is
// bad and which images it affects. The format is in docs/transfer-format.md.
package transfer

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

const (
	// FormatVersion is bumped on any incompatible change of the layout.
	FormatVersion = 1
	// ManifestName is the manifest beside the segments.
	ManifestName = "airlock-transfer.json"
	// SignatureName is the detached signature of the manifest.
	SignatureName = ManifestName + ".sig"
	// PGPSignatureName is the detached armored OpenPGP signature of the
	// manifest, the name `gpg --armor --detach-sign` gives it.
	PGPSignatureName = ManifestName + ".asc"
	// SegmentHeaderName is the first entry of every segment: which set
	// and which position it belongs to, so a stray segment is named.
	SegmentHeaderName = "airlock-segment.json"
	// HistoryPath is the history of shipped blobs, in the store.
	HistoryPath = "working-dir/airlock/transfer-history.json"
	// TempPrefix marks files being written; never a final name.
	TempPrefix = ".airlock-transfer-tmp-"
	// GiB is the unit of archiveSize.
	GiB = int64(1) << 30
)

// metadataFiles are the store files a segment may carry besides blobs.
var metadataFiles = []string{
	"oci-layout",
	"index.json",
	"working-dir/airlock/mirror-record.json",
	"working-dir/airlock/imageset-config.yaml",
	"working-dir/plan/plan.json",
	HistoryPath,
}

var segmentRE = regexp.MustCompile(`^mirror_[0-9]{6}\.tar$`)

// IsTransferFile reports whether a directory entry belongs to a transfer
// set (so a store directory holding one is not "foreign").
func IsTransferFile(name string) bool {
	return segmentRE.MatchString(name) || name == ManifestName || name == SignatureName || name == PGPSignatureName ||
		len(name) > len(TempPrefix) && name[:len(TempPrefix)] == TempPrefix
}

// SegmentName is the file name of segment n (1-based).
func SegmentName(n int) string { return fmt.Sprintf("mirror_%06d.tar", n) }

// Manifest is airlock-transfer.json.
type Manifest struct {
	FormatVersion  int       `json:"formatVersion"`
	AirlockVersion string    `json:"airlockVersion"`
	SetID          string    `json:"setID"`
	Created        time.Time `json:"created"`
	PlanDigest     string    `json:"planDigest"`
	// Full is true for a set that depends on no earlier one.
	Full bool `json:"full"`
	// DependsOn lists earlier sets holding blobs this set's images need.
	DependsOn []string   `json:"dependsOn,omitempty"`
	Since     *time.Time `json:"since,omitempty"`
	Segments  []Segment  `json:"segments"`
	Blobs     []Blob     `json:"blobs"`
	Images    []Image    `json:"images"`
	Catalogs  []string   `json:"catalogs,omitempty"`
	Packages  []string   `json:"packages,omitempty"`
	Releases  []string   `json:"releases,omitempty"`
	// Metadata duplicates the store's metadata files (index.json, the
	// pinned plan, ...) that segment 1 also holds: a damaged segment 1
	// then costs only the blobs in it, and --partial can still push every
	// image whose blobs are intact. Sets written before it have none and
	// take the metadata from segment 1 alone.
	Metadata []MetadataFile `json:"metadata,omitempty"`
}

// MetadataFile is one store metadata file carried in the manifest.
type MetadataFile struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
	// Data is the file's content (base64 in the JSON).
	Data []byte `json:"data"`
}

// Segment is one tar file of the set.
type Segment struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Blob is one store blob: in a segment of this set, or (Segment "")
// shipped by the earlier set InSet.
type Blob struct {
	Digest  string `json:"digest"`
	Size    int64  `json:"size"`
	Segment string `json:"segment,omitempty"`
	InSet   string `json:"inSet,omitempty"`
}

// Image is a top-level image of the store with the blobs it needs.
type Image struct {
	Name   string   `json:"name"`
	Digest string   `json:"digest"`
	Size   int64    `json:"size"`
	Blobs  []string `json:"blobs"`
}

// segmentHeader is the first entry of each segment.
type segmentHeader struct {
	FormatVersion int    `json:"formatVersion"`
	SetID         string `json:"setID"`
	PlanDigest    string `json:"planDigest"`
	Segment       string `json:"segment"`
}

// History is the record of sets created from a store.
type History struct {
	Sets []HistorySet `json:"sets"`
}

// HistorySet is one earlier set and the blobs it shipped.
type HistorySet struct {
	SetID   string    `json:"setID"`
	Created time.Time `json:"created"`
	Blobs   []string  `json:"blobs"`
}

// ReadManifest reads DIR/airlock-transfer.json.
func ReadManifest(dir string) (*Manifest, error) {
	p := filepath.Join(dir, ManifestName)
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("reading the transfer manifest: %w; copy %s from the media again", err, ManifestName)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("parsing %s: %w; copy it from the media again", p, err)
	}
	if m.FormatVersion != FormatVersion {
		return nil, fmt.Errorf("%s: format version %d, this airlock reads %d; use the airlock version %s that wrote it", p, m.FormatVersion, FormatVersion, m.AirlockVersion)
	}
	return &m, nil
}

func readHistory(storeDir string) (*History, error) {
	b, err := os.ReadFile(filepath.Join(storeDir, HistoryPath))
	if os.IsNotExist(err) {
		return &History{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading transfer history: %w", err)
	}
	var h History
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("parsing %s: %w; delete it and create a --full set", filepath.Join(storeDir, HistoryPath), err)
	}
	return &h, nil
}

// HasStore reports whether dir holds a transfer set.
func HasSet(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, ManifestName))
	return err == nil
}
