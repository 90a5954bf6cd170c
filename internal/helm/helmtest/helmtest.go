// Package helmtest packs chart directories and serves them as an HTTP
// chart repository on 127.0.0.1, for tests of helm collection.
package helmtest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// Pack tars the chart directory dir as `helm package` lays it out
// (NAME/Chart.yaml, NAME/templates/...), name being the chart's name.
func Pack(t testing.TB, dir, name string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if err := tw.WriteHeader(&tar.Header{Name: name + "/" + filepath.ToSlash(rel), Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err = tw.Write(b)
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = gz.Close()
	}
	if err != nil {
		t.Fatalf("helmtest: packing %s: %v", dir, err)
	}
	return buf.Bytes()
}

// Chart is one archive a repository serves.
type Chart struct {
	Name, Version string
	Archive       []byte
}

// ServeRepo serves index.yaml and the archives under URL/charts, with the
// relative download URLs and sha256 digests `helm repo index` writes, plus
// for each chart an indexed version 0.0.1 whose archive is missing. It
// returns the repository URL.
func ServeRepo(t testing.TB, charts ...Chart) string {
	t.Helper()
	mux := http.NewServeMux()
	var idx strings.Builder
	idx.WriteString("apiVersion: v1\nentries:\n")
	sort.Slice(charts, func(i, j int) bool { return charts[i].Name < charts[j].Name })
	for _, c := range charts {
		sum := sha256.Sum256(c.Archive)
		file := fmt.Sprintf("%s-%s.tgz", c.Name, c.Version)
		fmt.Fprintf(&idx, "  %s:\n  - name: %s\n    version: %s\n    digest: %s\n    urls: [%s]\n", c.Name, c.Name, c.Version, hex.EncodeToString(sum[:]), file)
		fmt.Fprintf(&idx, "  - name: %s\n    version: 0.0.1\n    urls: [%s-0.0.1.tgz]\n", c.Name, c.Name)
		archive := c.Archive
		mux.HandleFunc("/charts/"+file, func(w http.ResponseWriter, r *http.Request) { w.Write(archive) })
	}
	mux.HandleFunc("/charts/index.yaml", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(idx.String())) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL + "/charts"
}
