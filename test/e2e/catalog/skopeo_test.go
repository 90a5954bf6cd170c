package catalog_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os/exec"
	"testing"
)

// skopeoRawDigest reads a manifest with the real skopeo client and returns
// the digest of the bytes it got: proof that what airlock wrote is what a
// standard client pulls.
func skopeoRawDigest(t *testing.T, reference string) string {
	t.Helper()
	out, err := exec.Command("skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+reference).Output()
	if err != nil {
		t.Fatalf("skopeo inspect --raw %s: %v", reference, err)
	}
	sum := sha256.Sum256(out)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// skopeoLabels returns the config labels skopeo sees for one architecture.
func skopeoLabels(t *testing.T, reference, arch string) map[string]string {
	t.Helper()
	out, err := exec.Command("skopeo", "inspect", "--tls-verify=false", "--override-os", "linux", "--override-arch", arch, "docker://"+reference).Output()
	if err != nil {
		t.Fatalf("skopeo inspect %s (%s): %v", reference, arch, err)
	}
	var v struct {
		Labels map[string]string `json:"Labels"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatal(err)
	}
	return v.Labels
}
