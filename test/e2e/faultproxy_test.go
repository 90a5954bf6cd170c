package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

// TestProxyInjectsFaults checks the proxy itself: each rule fires exactly
// its budget, in order, and then requests pass through untouched. The
// fault tests of the mirror rely on this.
func TestProxyInjectsFaults(t *testing.T) {
	reg := regtest.Start(t)
	img, err := synth.Image(1, synth.WithLayers(1), synth.WithLayerSize(64*1024))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := synth.Push(img, reg.Ref("probe/img:v1")); err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	dg, err := layers[0].Digest()
	if err != nil {
		t.Fatal(err)
	}
	size, err := layers[0].Size()
	if err != nil {
		t.Fatal(err)
	}

	p, err := NewProxy(reg.Host,
		&Rule{Name: "reset", Match: IsBlobGet, Times: 1, Action: ResetMidBody},
		&Rule{Name: "503", Match: IsBlobGet, Times: 1, Action: Status, Code: 503},
		&Rule{Name: "429", Match: IsBlobGet, Times: 1, Action: TooManyRequests, RetryAfter: 2},
	)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	url := "http://" + p.Host + "/v2/probe/img/blobs/" + dg.String()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

	// 1: reset mid-body — headers arrive, the body is cut short.
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("first GET: %v (want headers, then a cut body)", err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil || n >= size {
		t.Fatalf("first GET read %d of %d bytes with error %v; want a reset mid-body", n, size, err)
	}
	// 2: 503 without forwarding.
	resp, err = client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("second GET: status %d, want 503", resp.StatusCode)
	}
	// 3: 429 with Retry-After.
	resp, err = client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "2" {
		t.Fatalf("third GET: status %d Retry-After %q, want 429 and 2", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// 4: budgets spent: the whole blob passes.
	resp, err = client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	n, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != size || resp.StatusCode != 200 {
		t.Fatalf("fourth GET: status %d, %d of %d bytes, err %v; want the whole blob", resp.StatusCode, n, size, err)
	}

	c := p.Counts()
	if c.BlobGets != 4 || c.Faults["reset"] != 1 || c.Faults["503"] != 1 || c.Faults["429"] != 1 {
		t.Fatalf("counts = %+v; want 4 blob GETs and each fault once", c)
	}
	// Half of the first body plus the whole fourth crossed the proxy.
	if want := size/2 + size; c.BlobGetBytes != want {
		t.Fatalf("BlobGetBytes = %d, want %d", c.BlobGetBytes, want)
	}
}

func TestProxyRefusesNonLoopback(t *testing.T) {
	_, err := NewProxy("192.0.2.1:5000")
	if err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Fatalf("NewProxy(non-loopback) error = %v, want a refusal", err)
	}
}
