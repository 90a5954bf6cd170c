package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"io"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestBlobReaderVerifiesEachAlgorithm: a blob named by a sha512 digest is
// verified with sha512 (it used to be hashed with sha256 and always
// rejected), and a wrong sha512 is still caught.
func TestBlobReaderVerifiesEachAlgorithm(t *testing.T) {
	data := bytes.Repeat([]byte("airlock"), 1000)
	s256 := sha256.Sum256(data)
	s512 := sha512.Sum512(data)
	good := map[string]v1.Hash{
		"sha256": {Algorithm: "sha256", Hex: hex.EncodeToString(s256[:])},
		"sha512": {Algorithm: "sha512", Hex: hex.EncodeToString(s512[:])},
	}
	for alg, d := range good {
		r := (&Engine{}).newBlobReader(context.Background(), nil, v1.Descriptor{Digest: d, Size: int64(len(data))})
		r.body = io.NopCloser(bytes.NewReader(data))
		if _, err := io.ReadAll(r); err != nil {
			t.Errorf("%s: correct blob rejected: %v", alg, err)
		}
	}
	bad := good["sha512"]
	bad.Hex = hex.EncodeToString(make([]byte, 64))
	r := (&Engine{}).newBlobReader(context.Background(), nil, v1.Descriptor{Digest: bad, Size: int64(len(data))})
	r.body = io.NopCloser(bytes.NewReader(data))
	if _, err := io.ReadAll(r); err == nil {
		t.Error("sha512 blob with the wrong digest accepted")
	}
}
