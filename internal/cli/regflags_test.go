package cli

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestRegistryFlagsTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}

	get := func(args ...string) error {
		t.Helper()
		var f RegistryFlags
		fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
		f.AddFlags(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		tr, err := f.Transport()
		if err != nil {
			return err
		}
		resp, err := (&http.Client{Transport: tr}).Get(srv.URL)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	if err := get(); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted server: err = %v, want a certificate error", err)
	}
	if err := get("--ca-file", caFile); err != nil {
		t.Fatalf("--ca-file: %v", err)
	}
	certsD := filepath.Join(t.TempDir(), "certs.d", "127.0.0.1:5000")
	if err := os.MkdirAll(certsD, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := get("--ca-file", certsD); err == nil || !strings.Contains(err.Error(), "no *.crt") {
		t.Fatalf("empty certs.d directory: err = %v", err)
	}
	data, _ := os.ReadFile(caFile)
	if err := os.WriteFile(filepath.Join(certsD, "ca.crt"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := get("--ca-file", certsD); err != nil {
		t.Fatalf("--ca-file certs.d directory: %v", err)
	}
	if err := get("--insecure"); err != nil {
		t.Fatalf("--insecure: %v", err)
	}
	if err := get("--ca-file", notPEM); err == nil || !strings.Contains(err.Error(), notPEM) {
		t.Fatalf("non-PEM --ca-file: err = %v, want it named", err)
	}
	if err := get("--ca-file", filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "--ca-file") {
		t.Fatalf("missing --ca-file: err = %v", err)
	}
}

func TestRegistryFlagsKeychain(t *testing.T) {
	isolateCredentials(t)
	var f RegistryFlags
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	f.AddFlags(fs)
	missing := filepath.Join(t.TempDir(), "nope.json")
	if err := fs.Parse([]string{"-a", missing}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Keychain(); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing --authfile: err = %v, want it named", err)
	}
	if len(f.NameOptions()) != 0 {
		t.Fatal("NameOptions without --insecure must be empty")
	}
	f.Insecure = true
	if len(f.NameOptions()) != 1 {
		t.Fatal("NameOptions with --insecure must allow plain HTTP")
	}
}
