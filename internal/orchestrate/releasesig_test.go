package orchestrate

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlock-mirror/airlock/internal/testutil/pgptest"

	"github.com/airlock-mirror/airlock/internal/testutil/golden"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// TestReleaseSignatureFilesGolden: the signature ConfigMap of a run, in
// the shape oc-mirror v2 writes into cluster-resources/ (one
// mirrored-release-signatures ConfigMap in openshift-config-managed,
// labelled for the cluster-version operator, binaryData
// sha256-<hex>-<n>), as YAML and JSON.
func TestReleaseSignatureFilesGolden(t *testing.T) {
	other := strings.Repeat("fe", 32)
	files, err := ReleaseSignatureFiles([]ReleaseSignature{
		{Digest: "sha256:" + hex, Signatures: [][]byte{[]byte("first signature"), []byte("second signature")}},
		{Digest: "sha256:" + other, Signatures: [][]byte{[]byte("other release")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 {
		t.Fatalf("files %v, want %s and %s", files, SignatureConfigMapFile, SignatureConfigMapJSONFile)
	}
	golden.Check(t, SignatureConfigMapFile, files[SignatureConfigMapFile])
	golden.Check(t, SignatureConfigMapJSONFile, files[SignatureConfigMapJSONFile])
	if files, err := ReleaseSignatureFiles(nil); err != nil || len(files) != 0 {
		t.Errorf("no signatures: %v, %v; want no files", files, err)
	}
}

// TestLoadReleaseSignatures: signatures are read per release digest (a
// payload two channels list once), a missing one is a warning naming the
// file to download, and with a key one that does not verify stops the run.
func TestLoadReleaseSignatures(t *testing.T) {
	key := pgptest.NewKey(t, "release")
	stranger := pgptest.NewKey(t, "stranger")
	sign := func(k *openpgp.Entity, digest string) []byte {
		return pgptest.SignAtomic(t, k, "quay.io/openshift-release-dev/ocp-release", digest)
	}
	keyFile := pgptest.PublicKeyFile(t, key)
	d1, d2, d3 := "sha256:"+hex, "sha256:"+strings.Repeat("ab", 32), "sha256:"+strings.Repeat("cd", 32)
	dir := t.TempDir()
	put := func(digest string, sig []byte) {
		p := filepath.Join(dir, strings.Replace(digest, ":", "=", 1))
		os.MkdirAll(p, 0o755)
		if err := os.WriteFile(filepath.Join(p, "signature-1"), sig, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s1, s2 := sign(key, d1), sign(key, d2)
	put(d1, s1)
	put(d2, s2)
	releases := []ReleaseInfo{{Version: "4.18.1", Digest: d1}, {Version: "4.18.2", Digest: d2}, {Version: "4.18.2", Digest: d2}, {Version: "4.18.3", Digest: d3}}
	var warns []string
	warn := func(s string) { warns = append(warns, s) }
	got, err := loadReleaseSignatures(SignatureSource{Dir: dir, VerifyKey: keyFile}, releases, warn)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Digest != d1 || !bytes.Equal(got[0].Signatures[0], s1) || got[1].Digest != d2 || !bytes.Equal(got[1].Signatures[0], s2) {
		t.Errorf("signatures: %+v", got)
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "4.18.3") || !strings.Contains(warns[0], "sha256="+strings.Repeat("cd", 32)+"/signature-1") {
		t.Errorf("warnings %q: want one naming the missing signature of 4.18.3", warns)
	}

	put(d2, sign(stranger, d2))
	if _, err := loadReleaseSignatures(SignatureSource{Dir: dir, VerifyKey: keyFile}, releases, warn); err == nil ||
		!strings.Contains(err.Error(), "release 4.18.2") || !strings.Contains(err.Error(), "refusing to mirror") {
		t.Errorf("a signature by another key: %v", err)
	}
	warns = nil
	if got, err := loadReleaseSignatures(SignatureSource{}, releases, warn); err != nil || got != nil || len(warns) != 1 || !strings.Contains(warns[0], "--signature-dir not given") {
		t.Errorf("no --signature-dir: %v, %v, warnings %q", got, err, warns)
	}
}
