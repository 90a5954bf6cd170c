package cli

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

// verify finds a missing destination and a destination with another digest,
// names their mapping lines and exits non-zero; with --dest-only it needs no
// source at all.
func TestVerifyMissingAndMismatch(t *testing.T) {
	src := regtest.Start(t)
	dst := regtest.Start(t)
	dA := imPush(t, 10, src.Ref("app/a:1"))
	imPush(t, 11, src.Ref("app/b:1"))
	imPush(t, 12, src.Ref("app/c:1"))
	if _, _, err := imRun(t, "", "image", "mirror", src.Ref("app/a:1")+"="+dst.Ref("m/a"), src.Ref("app/b:1")+"="+dst.Ref("m/b")); err != nil {
		t.Fatal(err)
	}
	// m/b:1 now gets another image: the mirror is wrong there.
	other := imPush(t, 99, dst.Ref("m/b:1"))
	m := imWriteFile(t, "mapping.txt", src.Ref("app/a:1")+" "+dst.Ref("m/a")+"\n"+
		src.Ref("app/b:1")+" "+dst.Ref("m/b")+"\n"+
		src.Ref("app/c:1")+" "+dst.Ref("m/c")+"\n")

	out, _, err := imRun(t, "", "verify", "-f", m)
	if err == nil || !strings.Contains(err.Error(), "2 of 3 destination(s) missing or wrong") {
		t.Fatalf("verify error = %v, want 2 of 3 failing\n%s", err, out)
	}
	if !strings.Contains(out, "MISMATCH  "+dst.Ref("m/b:1")+" ("+m+":2): has "+other) {
		t.Errorf("mismatch not reported with its line:\n%s", out)
	}
	if !strings.Contains(out, "MISSING   "+dst.Ref("m/c:1")+" ("+m+":3)") {
		t.Errorf("missing destination not reported with its line:\n%s", out)
	}
	if strings.Contains(out, dst.Ref("m/a:1")) {
		t.Errorf("a correct destination is listed without -v:\n%s", out)
	}

	// JSON carries the same verdicts.
	out, _, err = imRun(t, "", "verify", "-f", m, "-o", "json")
	if err == nil {
		t.Fatal("verify -o json passed a broken mirror")
	}
	var j struct {
		OK     bool `json:"ok"`
		Failed int  `json:"failed"`
		Checks []struct {
			Destination string `json:"destination"`
			Status      string `json:"status"`
			Actual      string `json:"actual"`
		} `json:"checks"`
	}
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	got := map[string]string{}
	for _, c := range j.Checks {
		got[c.Destination] = c.Status
	}
	if j.OK || j.Failed != 2 || got[dst.Ref("m/a:1")] != "ok" || got[dst.Ref("m/b:1")] != "mismatch" || got[dst.Ref("m/c:1")] != "missing" {
		t.Errorf("JSON verdicts = %+v", j)
	}

	// Disconnected side: the source registry is gone. A digest-pinned
	// mapping still verifies; a tag-only one needs --dest-only.
	pinned := src.Ref("app/a@"+dA) + "=" + dst.Ref("m/a:1")
	src.Server.Close()
	if out, _, err := imRun(t, "", "verify", pinned); err != nil {
		t.Errorf("verify of a digest-pinned mapping needed the source: %v\n%s", err, out)
	}
	if out, _, err := imRun(t, "", "verify", src.Ref("app/a:1")+"="+dst.Ref("m/a")); err == nil || !strings.Contains(out, "--dest-only") {
		t.Errorf("tag-only mapping with the source gone: err %v, want an error suggesting --dest-only\n%s", err, out)
	}
	if out, _, err := imRun(t, "", "verify", "--dest-only", src.Ref("app/a:1")+"="+dst.Ref("m/a")); err != nil {
		t.Errorf("--dest-only with the source gone: %v\n%s", err, out)
	}
}

// A manifest list whose tag resolves with the right digest but whose child
// manifests are partly missing is reported INCOMPLETE (pulls of those
// platforms would fail with "manifest unknown"); --shallow accepts it.
func TestVerifyIncompleteManifestList(t *testing.T) {
	dst := regtest.Start(t)
	idx, err := synth.Index(21, []string{"linux/amd64", "linux/arm64", "linux/s390x"}, synth.WithLayerSize(512))
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	// Only the first child is pushed; then the list itself, by tag.
	child, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := synth.Push(child, dst.Ref("m/multi@"+im.Manifests[0].Digest.String())); err != nil {
		t.Fatal(err)
	}
	raw, err := idx.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPut, dst.URL+"/v2/m/multi/manifests/v1", bytes.NewReader(raw))
	req.Header.Set("Content-Type", string(im.MediaType))
	resp, err := dst.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("pushing the sparse list: status %d", resp.StatusCode)
	}
	d, _ := idx.Digest()
	pair := "quay.io/app/multi@" + d.String() + "=" + dst.Ref("m/multi:v1")
	out, _, err := imRun(t, "", "verify", pair)
	if err == nil || !strings.Contains(out, "INCOMPLETE "+dst.Ref("m/multi:v1")) || !strings.Contains(out, "2 of 3 child manifest(s) missing") ||
		!strings.Contains(out, im.Manifests[1].Digest.String()+" (linux/arm64)") {
		t.Fatalf("verify of a list missing 2 children: err %v\n%s", err, out)
	}
	if out, _, err := imRun(t, "", "verify", "--shallow", pair); err != nil {
		t.Fatalf("verify --shallow of the same list: %v\n%s", err, out)
	}
}
