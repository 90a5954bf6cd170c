// Command benchsmall is `make bench`'s many-small-images workload: the shape
// of a large operator catalog (thousands of images, a few small layers each,
// some shared, some multi-arch), which ../shared/bench/workload.sh does not
// make.
//
//	benchsmall push   -src 127.0.0.1:5101 -dir WL_DIR -dst 127.0.0.1:5102 [-images 2000] [-seed 7]
//	benchsmall ingest -dir WL_DIR -storage SRC_STORAGE -dst 127.0.0.1:5102 [-p 4]
//
// push writes the images to the source registry and, in WL_DIR, the files
// ../shared/bench/run.sh reads (images.txt, mapping.txt, skopeo-sync.yaml,
// regsync.yaml, manifests.tsv, blobs.tsv, totals.env, totals.txt). Each
// image has 5 layers of 4-64 KiB: one of a pool of 50 shared base layers
// (20% of the layers) and 4 of its own; every 10th image is an index of
// two platforms. Repositories hold 10 images each and have unique basenames
// (skopeo sync keeps only those).
//
// ingest is the `registry-ingest-manifests` row: what the destination
// registry takes at its own pace for the same objects, straight from the
// source registry's storage files with P workers over keep-alive: each
// unique blob uploaded once (POST + PUT), mounted into every other
// repository that needs it, every manifest PUT (index children by digest,
// top-level manifests by their mapping.txt tag). No source registry reads.
//
// A development tool, not part of the airlock binary.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchsmall push|ingest [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "push":
		err = push(os.Args[2:])
	case "ingest":
		err = ingest(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q (push, ingest)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchsmall:", err)
		os.Exit(1)
	}
}

type manifestRow struct{ repo, digest, mediaType, role string }

func push(args []string) error {
	fs := flag.NewFlagSet("push", flag.ExitOnError)
	src := fs.String("src", "127.0.0.1:5101", "source registry")
	dst := fs.String("dst", "127.0.0.1:5102", "destination registry (for mapping.txt)")
	dir := fs.String("dir", "", "workload directory to write")
	images := fs.Int("images", 2000, "top-level images")
	seed := fs.Int64("seed", 7, "seed")
	jobs := fs.Int("jobs", 4, "images pushed at once")
	fs.Parse(args)
	if *dir == "" {
		return fmt.Errorf("-dir is required")
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	base := make([]v1.Layer, 50)
	for i := range base {
		base[i] = synth.Layer(*seed*1_000_000+int64(i), 4096+(i*997)%(60<<10))
	}
	type img struct {
		repo, tag, digest string
		x                 synth.Pushable
	}
	all := make([]img, *images)
	errs := make(chan error, *images)
	sem := make(chan struct{}, *jobs)
	var wg sync.WaitGroup
	for i := range all {
		repo := fmt.Sprintf("smallwl/ns%d/op-%04d", (i/10)%5, i/10)
		size := 4096 + (i*7919)%(60<<10)
		opts := []synth.Option{synth.WithBase(base[i%len(base)]), synth.WithLayers(4), synth.WithLayerSize(size)}
		if (i/10)%3 == 1 {
			opts = append(opts, synth.WithOCI())
		}
		var x synth.Pushable
		var err error
		s := *seed*100_000 + int64(i)
		if i%10 == 3 {
			x, err = synth.Index(s, []string{"linux/amd64", "linux/arm64"}, opts...)
		} else {
			x, err = synth.Image(s, opts...)
		}
		if err != nil {
			return err
		}
		all[i] = img{repo: repo, tag: fmt.Sprintf("v%d", i%10), x: x}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			d, err := synth.Push(all[i].x, fmt.Sprintf("%s/%s:%s", *src, all[i].repo, all[i].tag), remote.WithJobs(2))
			if err != nil {
				errs <- err
				return
			}
			all[i].digest = d
		}(i)
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}

	var imagesTxt, mapping, skopeo, regsync, manifests, blobs bytes.Buffer
	fmt.Fprintf(&skopeo, "%s:\n  tls-verify: false\n  images:\n", *src)
	fmt.Fprintf(&regsync, "version: 1\ncreds:\n  - registry: %s\n    tls: disabled\n  - registry: %s\n    tls: disabled\ndefaults:\n  parallel: 4\n  skipDockerConfig: true\nsync:\n", *src, *dst)
	uniq := map[string]int64{}
	repoBlobs := map[string]bool{}
	nManifests, nIndexes := 0, 0
	prevRepo := ""
	var repoBlobBytes int64
	addImage := func(repo string, im v1.Image, role string) error {
		m, err := im.Manifest()
		if err != nil {
			return err
		}
		d, _ := im.Digest()
		mt, _ := im.MediaType()
		raw, _ := im.RawManifest()
		fmt.Fprintf(&manifests, "%s\t%s\t%s\t%s\t%d\n", repo, d, mt, role, len(raw))
		nManifests++
		for _, b := range append([]v1.Descriptor{m.Config}, m.Layers...) {
			uniq[b.Digest.String()] = b.Size
			if k := repo + " " + b.Digest.String(); !repoBlobs[k] {
				repoBlobs[k] = true
				repoBlobBytes += b.Size
				fmt.Fprintf(&blobs, "%s\t%s\t%d\n", repo, b.Digest, b.Size)
			}
		}
		return nil
	}
	for _, im := range all {
		fmt.Fprintf(&imagesTxt, "%s/%s@%s\n", *src, im.repo, im.digest)
		fmt.Fprintf(&mapping, "%s/%s@%s=%s/%s:%s\n", *src, im.repo, im.digest, *dst, im.repo, im.digest[7:15])
		if im.repo != prevRepo {
			fmt.Fprintf(&skopeo, "    %s:\n", im.repo)
			prevRepo = im.repo
		}
		fmt.Fprintf(&skopeo, "      - %q\n", im.digest)
		fmt.Fprintf(&regsync, "  - source: %s/%s@%s\n    target: %s/%s:%s\n    type: image\n", *src, im.repo, im.digest, *dst, im.repo, im.digest[7:15])
		switch x := im.x.(type) {
		case v1.ImageIndex:
			nIndexes++
			mt, _ := x.MediaType()
			raw, _ := x.RawManifest()
			fmt.Fprintf(&manifests, "%s\t%s\t%s\ttop\t%d\n", im.repo, im.digest, mt, len(raw))
			nManifests++
			idx, err := x.IndexManifest()
			if err != nil {
				return err
			}
			for _, c := range idx.Manifests {
				ci, err := x.Image(c.Digest)
				if err != nil {
					return err
				}
				if err := addImage(im.repo, ci, "child"); err != nil {
					return err
				}
			}
		case v1.Image:
			if err := addImage(im.repo, x, "top"); err != nil {
				return err
			}
		}
	}
	var uniqBytes int64
	for _, s := range uniq {
		uniqBytes += s
	}
	totals := fmt.Sprintf("WL_REPOS=%d\nWL_IMAGES=%d\nWL_INDEXES=%d\nWL_MANIFESTS=%d\nWL_UNIQUE_BLOBS=%d\nWL_UNIQUE_BYTES=%d\nWL_REPO_BLOBS=%d\nWL_REPO_BLOB_BYTES=%d\nWL_SCALE=small-%d\nWL_SEED=%d\n",
		(*images+9)/10, *images, nIndexes, nManifests, len(uniq), uniqBytes, len(repoBlobs), repoBlobBytes, *images, *seed)
	text := fmt.Sprintf("workload many-small-images (%d images, seed %d) in %s\n  repositories: %d\n  images (top-level): %d   of which multi-arch indexes: %d\n  manifests: %d\n  unique blobs: %d, %.1f MB (layers 4-64 KiB, 5 per image, 1 of them from 50 shared)\n  per-repository blobs: %d, %.1f MB\n",
		*images, *seed, *dir, (*images+9)/10, *images, nIndexes, nManifests, len(uniq), float64(uniqBytes)/1e6, len(repoBlobs), float64(repoBlobBytes)/1e6)
	for name, b := range map[string][]byte{"images.txt": imagesTxt.Bytes(), "mapping.txt": mapping.Bytes(),
		"skopeo-sync.yaml": skopeo.Bytes(), "regsync.yaml": regsync.Bytes(), "manifests.tsv": manifests.Bytes(),
		"blobs.tsv": blobs.Bytes(), "totals.txt": []byte(text), "totals.env": []byte(totals)} {
		if err := writeAtomic(filepath.Join(*dir, name), b); err != nil {
			return err
		}
	}
	fmt.Print(text)
	return nil
}

// writeAtomic writes via a temporary file and rename, so a killed run
// never leaves a half-written workload file under its final name.
func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func readTSV(path string) ([][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rows [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if sc.Text() != "" {
			rows = append(rows, strings.Split(sc.Text(), "\t"))
		}
	}
	return rows, sc.Err()
}

func ingest(args []string) error {
	fs := flag.NewFlagSet("ingest", flag.ExitOnError)
	dir := fs.String("dir", "", "workload directory")
	storage := fs.String("storage", "", "source registry storage root")
	dst := fs.String("dst", "127.0.0.1:5102", "destination registry")
	par := fs.Int("p", 4, "parallel requests")
	fs.Parse(args)
	file := func(d string) string {
		h := strings.TrimPrefix(d, "sha256:")
		return filepath.Join(*storage, "docker/registry/v2/blobs/sha256", h[:2], h, "data")
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *par, MaxConnsPerHost: *par}}
	do := func(method, u, ct string, body []byte, want ...int) (*http.Response, error) {
		req, err := http.NewRequest(method, u, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		for _, w := range want {
			if resp.StatusCode == w {
				return resp, nil
			}
		}
		return nil, fmt.Errorf("%s %s: %s", method, u, resp.Status)
	}
	parallel := func(n int, fn func(i int) error) error {
		var mu sync.Mutex
		var first error
		var wg sync.WaitGroup
		next := make(chan int)
		for range *par {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					if err := fn(i); err != nil {
						mu.Lock()
						first = err
						mu.Unlock()
					}
				}
			}()
		}
		for i := range n {
			next <- i
		}
		close(next)
		wg.Wait()
		return first
	}
	blobs, err := readTSV(filepath.Join(*dir, "blobs.tsv"))
	if err != nil {
		return err
	}
	// first repository of each blob uploads, the others mount
	var uploads, mounts [][]string
	seen := map[string]string{}
	for _, b := range blobs {
		if from, ok := seen[b[1]]; ok {
			mounts = append(mounts, []string{b[0], b[1], from})
			continue
		}
		seen[b[1]] = b[0]
		uploads = append(uploads, b)
	}
	base := "http://" + *dst + "/v2/"
	if err := parallel(len(uploads), func(i int) error {
		b := uploads[i]
		data, err := os.ReadFile(file(b[1]))
		if err != nil {
			return err
		}
		resp, err := do(http.MethodPost, base+b[0]+"/blobs/uploads/", "", nil, http.StatusAccepted)
		if err != nil {
			return err
		}
		loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
		if err != nil {
			return err
		}
		q := loc.Query()
		q.Set("digest", b[1])
		loc.RawQuery = q.Encode()
		_, err = do(http.MethodPut, loc.String(), "application/octet-stream", data, http.StatusCreated)
		return err
	}); err != nil {
		return err
	}
	if err := parallel(len(mounts), func(i int) error {
		m := mounts[i]
		_, err := do(http.MethodPost, base+m[0]+"/blobs/uploads/?mount="+m[1]+"&from="+m[2], "", nil, http.StatusCreated)
		return err
	}); err != nil {
		return err
	}
	rows, err := readTSV(filepath.Join(*dir, "manifests.tsv"))
	if err != nil {
		return err
	}
	tags := map[string]string{} // repo@digest -> tag from mapping.txt
	mp, err := os.ReadFile(filepath.Join(*dir, "mapping.txt"))
	if err != nil {
		return err
	}
	for _, l := range strings.Split(strings.TrimSpace(string(mp)), "\n") {
		s, t, _ := strings.Cut(l, "=")
		_, ref, _ := strings.Cut(s, "/")
		_, dref, _ := strings.Cut(t, "/")
		tags[ref] = dref[strings.LastIndex(dref, ":")+1:]
	}
	// children first, then top-level manifests by tag
	sort.SliceStable(rows, func(i, j int) bool { return rows[i][3] == "child" && rows[j][3] != "child" })
	put := func(r []string) error {
		data, err := os.ReadFile(file(r[1]))
		if err != nil {
			return err
		}
		reference := r[1]
		if r[3] == "top" {
			reference = tags[r[0]+"@"+r[1]]
		}
		_, err = do(http.MethodPut, base+r[0]+"/manifests/"+reference, r[2], data, http.StatusCreated)
		return err
	}
	nChild := 0
	for nChild < len(rows) && rows[nChild][3] == "child" {
		nChild++
	}
	if err := parallel(nChild, func(i int) error { return put(rows[i]) }); err != nil {
		return err
	}
	return parallel(len(rows)-nChild, func(i int) error { return put(rows[nChild+i]) })
}
