package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

// workload pushes n synthetic images to host and returns them.
func workload(t *testing.T, host string, seed int64, n, layerSize int) []synth.Entry {
	t.Helper()
	entries, err := synth.Workload(seed, n, layerSize)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := synth.PushWorkload(entries, host); err != nil {
		t.Fatal(err)
	}
	return entries
}

// writeMapping writes "SRC DST" lines for every entry, from srcHost to
// dst (a "host/prefix" or "file://prefix"), destination tags inherited.
func writeMapping(t *testing.T, entries []synth.Entry, srcHost, dst string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# synthetic workload\n")
	for _, e := range entries {
		fmt.Fprintf(&b, "%s/%s:%s %s/%s\n", srcHost, e.Repo, e.Tag, dst, e.Repo)
	}
	p := filepath.Join(t.TempDir(), "mapping.txt")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkMirrored proves every entry is at host/prefix/repo:tag with the
// source digest, and reads every manifest and blob back, checking each
// against its digest (validate does the hashing).
func checkMirrored(t *testing.T, entries []synth.Entry, host, prefix string) {
	t.Helper()
	for _, e := range entries {
		want, err := e.Digest()
		if err != nil {
			t.Fatal(err)
		}
		r, err := name.ParseReference(fmt.Sprintf("%s/%s/%s:%s", host, prefix, e.Repo, e.Tag), name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		desc, err := remote.Get(r)
		if err != nil {
			t.Errorf("%s: %v", r, err)
			continue
		}
		if desc.Digest.String() != want {
			t.Errorf("%s: digest %s, want %s", r, desc.Digest, want)
			continue
		}
		if desc.MediaType.IsIndex() {
			idx, err := desc.ImageIndex()
			if err == nil {
				err = checkIndex(idx)
			}
			if err != nil {
				t.Errorf("%s: index content: %v", r, err)
			}
			continue
		}
		img, err := desc.Image()
		if err == nil {
			err = checkImage(img)
		}
		if err != nil {
			t.Errorf("%s: image content: %v", r, err)
		}
	}
}

// checkIndex checks every child image of idx.
func checkIndex(idx v1.ImageIndex) error {
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			return fmt.Errorf("child %s: %w", d.Digest, err)
		}
		if err := checkImage(img); err != nil {
			return fmt.Errorf("child %s: %w", d.Digest, err)
		}
	}
	return nil
}

// checkImage downloads the config and every layer and hashes them against
// their digests.
func checkImage(img v1.Image) error {
	raw, err := img.RawConfigFile()
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	cfg, err := img.ConfigName()
	if err != nil {
		return err
	}
	if got := sha256.Sum256(raw); "sha256:"+hex.EncodeToString(got[:]) != cfg.String() {
		return fmt.Errorf("config bytes do not match %s", cfg)
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return err
		}
		rc, err := l.Compressed()
		if err != nil {
			return fmt.Errorf("layer %s: %w", d, err)
		}
		h := sha256.New()
		_, err = io.Copy(h, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("layer %s: %w", d, err)
		}
		if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != d.String() {
			return fmt.Errorf("layer %s: content hashes to %s", d, got)
		}
	}
	return nil
}

// uniqueBlobBytes is the size of every distinct blob (layers and configs,
// all platforms) of the entries: what a perfect mirror transfers.
func uniqueBlobBytes(t *testing.T, entries []synth.Entry) int64 {
	t.Helper()
	var total int64
	for _, size := range blobSet(t, entries) {
		total += size
	}
	return total
}
