package registry_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
)

// chunkedUploadAcross starts a blob upload on a, sends the data to b and
// completes it on a again, as a round-robin load balancer would. It
// returns the final status.
func chunkedUploadAcross(t *testing.T, a, b *regtest.Registry, repo string, data []byte) int {
	t.Helper()
	resp, err := a.Client().Post(a.URL+"/v2/"+repo+"/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("start upload on A: %d", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	onB := b.URL + loc.RequestURI()
	req, _ := http.NewRequest(http.MethodPatch, onB, bytes.NewReader(data))
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Content-Range", fmt.Sprintf("0-%d", len(data)-1))
	resp, err = b.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return resp.StatusCode
	}
	loc, _ = url.Parse(resp.Header.Get("Location"))
	q := loc.Query()
	q.Set("digest", fmt.Sprintf("sha256:%x", sha256.Sum256(data)))
	loc.RawQuery = q.Encode()
	req, _ = http.NewRequest(http.MethodPut, a.URL+loc.Path+"?"+loc.RawQuery, nil)
	resp, err = a.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestUploadAcrossInstancesNeedsSharedSecret: behind a load balancer an
// upload's requests land on different instances; that works only when they
// share the HTTP secret (http.secret in --storage-config).
func TestUploadAcrossInstancesNeedsSharedSecret(t *testing.T) {
	backend := s3mem.New()
	if err := backend.CreateBucket("mirror"); err != nil {
		t.Fatal(err)
	}
	s3 := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(s3.Close)
	st := configuration.Storage{
		"s3": configuration.Parameters{
			"bucket": "mirror", "region": "us-east-1", "regionendpoint": s3.URL,
			"forcepathstyle": true, "accesskey": "fake", "secretkey": "fake", "secure": false,
		},
		"redirect": configuration.Parameters{"disable": true},
	}
	data := bytes.Repeat([]byte("airlock "), 4096)

	a := regtest.Start(t, regtest.WithStorage(st, "shared-secret"))
	b := regtest.Start(t, regtest.WithStorage(st, "shared-secret"))
	if got := chunkedUploadAcross(t, a, b, "lb/app", data); got != http.StatusCreated {
		t.Fatalf("upload across instances with a shared secret: %d, want 201", got)
	}
	resp, err := b.Client().Get(fmt.Sprintf("%s/v2/lb/app/blobs/sha256:%x", b.URL, sha256.Sum256(data)))
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	got.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("blob through B: %d, %d bytes", resp.StatusCode, got.Len())
	}

	c := regtest.Start(t, regtest.WithStorage(st, "")) // random secret
	if got := chunkedUploadAcross(t, a, c, "lb/other", data); got < 400 {
		t.Fatalf("upload across instances with different secrets: %d, want an error (proves the secret matters)", got)
	}
}
