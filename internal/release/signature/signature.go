// Package signature imports and verifies OpenShift release signatures.
//
// Red Hat publishes, for every release image digest, one or more files
// sha256=<hex>/signature-N. Each is an OpenPGP signed message (not a
// detached signature) whose literal data is an "atomic container signature"
// JSON document naming the image digest it vouches for. A disconnected
// cluster cannot fetch them, so they are imported from disk and handed to
// the cluster-version operator as a ConfigMap.
package signature

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"

	"github.com/airlock-mirror/airlock/internal/clusterres"
)

// PublicURL is where Red Hat publishes release signatures; used in the
// message that tells a user how to get a missing one.
const PublicURL = "https://mirror.openshift.com/pub/openshift-v4/signatures/openshift/release/"

// maxSignatures bounds the signature-N files read for one digest.
const maxSignatures = 64

var digestRE = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)

// DirName is the directory of one release's signatures: "sha256=<hex>".
func DirName(digest string) string { return strings.Replace(digest, ":", "=", 1) }

// ErrMissing says there is no signature for a release digest.
var ErrMissing = errors.New("no release signature")

// MissingHelp is what a user must do when the signature of digest is missing.
func MissingHelp(digest, dir string) string {
	where := "a directory and pass it with --signature-dir"
	if dir != "" {
		where = filepath.Join(dir, DirName(digest), "signature-1")
	}
	return fmt.Sprintf("download %s%s/signature-1 into %s; without it a cluster that verifies release signatures refuses to update to this release", PublicURL, DirName(digest), where)
}

// Load reads dir/sha256=<hex>/signature-1, -2, ... up to the first missing
// number. No signature at all is ErrMissing (wrapped with what to do).
func Load(dir, digest string) ([][]byte, error) {
	if !digestRE.MatchString(digest) {
		return nil, fmt.Errorf("release digest %q: want sha256:<64 hex>", digest)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("--signature-dir %s: not a readable directory", dir)
	}
	var sigs [][]byte
	for n := 1; n <= maxSignatures; n++ {
		p := filepath.Join(dir, DirName(digest), fmt.Sprintf("signature-%d", n))
		b, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading release signature %s: %w", p, err)
		}
		if len(b) == 0 {
			return nil, fmt.Errorf("release signature %s is empty", p)
		}
		sigs = append(sigs, b)
	}
	if len(sigs) == 0 {
		return nil, fmt.Errorf("%w for %s in %s: %s", ErrMissing, digest, dir, MissingHelp(digest, dir))
	}
	return sigs, nil
}

// ReadKeyring reads an OpenPGP public key file, ASCII-armored or binary.
func ReadKeyring(path string) (openpgp.EntityList, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--verify-key: %w", err)
	}
	kr, err := ParseKeyring(data)
	if err != nil {
		return nil, fmt.Errorf("--verify-key %s: %w", path, err)
	}
	return kr, nil
}

// ParseKeyring parses OpenPGP public keys, ASCII-armored or binary.
func ParseKeyring(data []byte) (openpgp.EntityList, error) {
	var kr openpgp.EntityList
	var err error
	if bytes.Contains(data, []byte("-----BEGIN PGP")) {
		kr, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
	} else {
		kr, err = openpgp.ReadKeyRing(bytes.NewReader(data))
	}
	if err != nil {
		return nil, fmt.Errorf("not an OpenPGP public key: %w", err)
	}
	if len(kr) == 0 {
		return nil, fmt.Errorf("no key in the file")
	}
	return kr, nil
}

// Claims is the atomic container signature document.
type Claims struct {
	Critical struct {
		Type  string `json:"type"`
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Identity struct {
			DockerReference string `json:"docker-reference"`
		} `json:"identity"`
	} `json:"critical"`
	Optional map[string]any `json:"optional,omitempty"`
}

// Verify checks that sig is an OpenPGP message signed by a key of keyring
// whose content is an atomic container signature for digest. A valid
// signature for another image is as bad as a forged one: both are errors.
func Verify(sig []byte, keyring openpgp.EntityList, digest string) (*Claims, error) {
	r := io.Reader(bytes.NewReader(sig))
	if bytes.HasPrefix(bytes.TrimSpace(sig), []byte("-----BEGIN PGP")) {
		blk, err := armor.Decode(bytes.NewReader(sig))
		if err != nil {
			return nil, fmt.Errorf("decoding armored signature: %w", err)
		}
		r = blk.Body
	}
	md, err := openpgp.ReadMessage(r, keyring, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("not an OpenPGP signed message: %w", err)
	}
	if !md.IsSigned {
		return nil, fmt.Errorf("the message is not signed")
	}
	body, err := io.ReadAll(io.LimitReader(md.UnverifiedBody, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("reading signed content: %w", err)
	}
	// The signature is only checked once the body has been read to EOF.
	if md.SignedBy == nil {
		return nil, fmt.Errorf("signed by key %X, which is not in the verification keyring", md.SignedByKeyId)
	}
	if md.SignatureError != nil {
		return nil, fmt.Errorf("bad signature: %w", md.SignatureError)
	}
	var c Claims
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, fmt.Errorf("signed content is not an atomic container signature: %w", err)
	}
	if c.Critical.Type != "atomic container signature" {
		return nil, fmt.Errorf("signed content has type %q, want \"atomic container signature\"", c.Critical.Type)
	}
	if c.Critical.Image.DockerManifestDigest != digest {
		return nil, fmt.Errorf("signature is for image %s, not for release %s", c.Critical.Image.DockerManifestDigest, digest)
	}
	return &c, nil
}

// VerifyAll verifies every signature and names the bad one (1-based, as
// the signature-N files are numbered).
func VerifyAll(sigs [][]byte, keyring openpgp.EntityList, digest string) error {
	for i, s := range sigs {
		if _, err := Verify(s, keyring, digest); err != nil {
			return fmt.Errorf("release %s signature-%d: %w", digest, i+1, err)
		}
	}
	return nil
}

// ConfigMap builds the ConfigMap the cluster-version operator reads
// (namespace openshift-config-managed, label
// release.openshift.io/verification-signatures, binaryData
// sha256-<hex>-<n>), named "sha256-<hex>" as oc names it.
func ConfigMap(digest string, sigs [][]byte) (clusterres.ConfigMap, error) {
	return clusterres.SignatureConfigMap("", clusterres.ReleaseSignatures{Digest: digest, Signatures: sigs})
}

// FileName is the name oc gives the ConfigMap file:
// signature-sha256-<first 16 hex>.json.
func FileName(digest string) string {
	hex := strings.TrimPrefix(digest, "sha256:")
	if len(hex) > 16 {
		hex = hex[:16]
	}
	return "signature-sha256-" + hex + ".json"
}
