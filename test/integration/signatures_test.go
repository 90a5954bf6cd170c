package integration

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/airlock-mirror/airlock/internal/testutil/gotool"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

// The signing and attaching clients, built through the module proxy like
// helm (.ci/run prebuilds them into goTool's cache).
const (
	cosignModule = "github.com/sigstore/cosign/v3/cmd/cosign@v3.1.3"
	orasModule   = "oras.land/oras/cmd/oras@v1.3.6"
)

// signedSource is a registry holding what users sign in practice, made by the
// real clients: an image signed by cosign v3 (a Sigstore bundle stored as an
// OCI 1.1 referrer), a multi-arch index signed the classic way (tag
// sha256-<hex>.sig, every child too with --recursive), an SPDX SBOM attached
// with oras to the first image and itself signed, and an unsigned image.
type signedSource struct {
	reg                     *regtest.Registry
	signed, multi, unsigned string // repo:tag at reg
	signedD, multiD, unsigD string // their digests
	key, pub                string // cosign key pair
	cosign, oras            string
	env                     []string
}

func newSignedSource(t *testing.T) *signedSource {
	t.Helper()
	s := &signedSource{cosign: gotool.Path(t, cosignModule), oras: gotool.Path(t, orasModule), env: append(clientEnv(t), "COSIGN_PASSWORD=")}
	s.reg = regtest.Start(t)
	opt := remote.WithTransport(s.reg.Transport)
	img, err := synth.Image(101, synth.WithLayers(2), synth.WithLayerSize(1024))
	if err != nil {
		t.Fatal(err)
	}
	idx, err := synth.Index(102, []string{"linux/amd64", "linux/arm64"}, synth.WithLayerSize(1024))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := synth.Image(103, synth.WithLayerSize(1024))
	if err != nil {
		t.Fatal(err)
	}
	s.signed, s.multi, s.unsigned = s.reg.Ref("apps/signed")+":v1", s.reg.Ref("apps/multi")+":v1", s.reg.Ref("apps/unsigned")+":v1"
	for _, p := range []struct {
		x   synth.Pushable
		ref string
		d   *string
	}{{img, s.signed, &s.signedD}, {idx, s.multi, &s.multiD}, {plain, s.unsigned, &s.unsigD}} {
		if *p.d, err = synth.Push(p.x, p.ref, opt); err != nil {
			t.Fatalf("pushing %s: %v", p.ref, err)
		}
	}

	keys := t.TempDir()
	r := run(t, s.env, "", s.cosign, "generate-key-pair", "--output-key-prefix", filepath.Join(keys, "cosign"))
	if r.err != nil {
		t.Fatalf("cosign generate-key-pair: %v", r)
	}
	s.key, s.pub = filepath.Join(keys, "cosign.key"), filepath.Join(keys, "cosign.pub")

	s.sign(t, s.reg.Ref("apps/signed")+"@"+s.signedD)
	s.sign(t, s.reg.Ref("apps/multi")+"@"+s.multiD, "--new-bundle-format=false", "--recursive")
	sbom := filepath.Join(t.TempDir(), "sbom.spdx.json")
	if err := os.WriteFile(sbom, []byte(`{"spdxVersion":"SPDX-2.3","name":"signed"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	att := mustRun(t, s.env, "", s.oras, "attach", "--plain-http", "--disable-path-validation", "--artifact-type", "application/spdx+json",
		"--format", "go-template={{.digest}}", s.reg.Ref("apps/signed")+"@"+s.signedD, sbom+":application/spdx+json")
	sbomD := strings.TrimSpace(att.stdout)
	if !strings.HasPrefix(sbomD, "sha256:") {
		t.Fatalf("oras attach printed no digest:\n%s", att)
	}
	s.sign(t, s.reg.Ref("apps/signed")+"@"+sbomD)
	return s
}

// sign signs ref with the key pair, offline: no transparency log, no
// Fulcio, plain HTTP to 127.0.0.1.
func (s *signedSource) sign(t *testing.T, ref string, extra ...string) {
	t.Helper()
	args := append([]string{"sign", "--key", s.key, "--use-signing-config=false", "--tlog-upload=false",
		"--allow-http-registry", "--allow-insecure-registry", "-y"}, extra...)
	mustRun(t, s.env, "", s.cosign, append(args, ref)...)
}

// verify runs cosign verify against ref and reports whether it passed.
func (s *signedSource) verify(t *testing.T, ref string) result {
	t.Helper()
	return run(t, s.env, "", s.cosign, "verify", "--key", s.pub, "--insecure-ignore-tlog",
		"--allow-http-registry", "--allow-insecure-registry", ref)
}

// artifactTypes lists, sorted, the artifact types oras discovers as
// referrers of ref, and of their referrers.
func (s *signedSource) artifactTypes(t *testing.T, ref string) []string {
	t.Helper()
	out := mustRun(t, s.env, "", s.oras, "discover", "--plain-http", "--format", "json", ref)
	var tree struct {
		Referrers []discovered `json:"referrers"`
	}
	if err := json.Unmarshal([]byte(out.stdout), &tree); err != nil {
		t.Fatalf("oras discover %s: %v\n%s", ref, err, out.stdout)
	}
	var types []string
	var walk func([]discovered, string)
	walk = func(rs []discovered, prefix string) {
		for _, r := range rs {
			types = append(types, prefix+r.ArtifactType)
			walk(r.Referrers, prefix+r.ArtifactType+" > ")
		}
	}
	walk(tree.Referrers, "")
	sort.Strings(types)
	return types
}

type discovered struct {
	ArtifactType string       `json:"artifactType"`
	Referrers    []discovered `json:"referrers"`
}

// report is the part of `image mirror -o json` this test reads.
type mirrorReport struct {
	Items []struct {
		Source      json.RawMessage `json:"source"` // ref.Ref: compared by repository
		Status      string          `json:"status"`
		Signed      bool            `json:"signed"`
		Attachments []struct {
			Kind string `json:"kind"`
		} `json:"attachments"`
	} `json:"items"`
}

// repoOf names an item of the report by its source repository.
func repoOf(source json.RawMessage) string {
	for _, r := range []string{"apps/signed", "apps/multi", "apps/unsigned"} {
		if strings.Contains(string(source), r+`"`) || strings.Contains(string(source), r+":") {
			return r
		}
	}
	return string(source)
}

func parseReport(t *testing.T, out string) mirrorReport {
	t.Helper()
	var rep mirrorReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("image mirror -o json: %v\n%s", err, out)
	}
	return rep
}

// TestSignaturesTravelWithImages: signatures, SBOMs and their signatures made
// by the real cosign and oras reach the mirror with the images, registry to
// registry and registry → disk → registry, so `cosign verify` and `oras
// discover` give the same answers at the mirror as at the source;
// --signatures strict fails exactly the unsigned image and --signatures
// remove carries none.
func TestSignaturesTravelWithImages(t *testing.T) {
	s := newSignedSource(t)
	srcTypes := s.artifactTypes(t, s.reg.Ref("apps/signed")+"@"+s.signedD)
	wantTypes := []string{"application/spdx+json", "application/spdx+json > application/vnd.dev.sigstore.bundle.v0.3+json", "application/vnd.dev.sigstore.bundle.v0.3+json"}
	if strings.Join(srcTypes, "\n") != strings.Join(wantTypes, "\n") {
		t.Fatalf("source referrers as oras sees them: %q, want %q", srcTypes, wantTypes)
	}
	mapping := func(host string) []string {
		return []string{s.signed + "=" + host + "/mirror/signed:v1", s.multi + "=" + host + "/mirror/multi:v1", s.unsigned + "=" + host + "/mirror/unsigned:v1"}
	}
	check := func(t *testing.T, host string) {
		t.Helper()
		for _, ref := range []string{host + "/mirror/signed@" + s.signedD, host + "/mirror/multi@" + s.multiD} {
			if r := s.verify(t, ref); r.err != nil {
				t.Errorf("cosign verify %s at the mirror: %v", ref, r)
			}
		}
		if r := s.verify(t, host+"/mirror/unsigned@"+s.unsigD); r.err == nil {
			t.Errorf("cosign verify of the unsigned image passed at the mirror:\n%s", r)
		}
		if got := s.artifactTypes(t, host+"/mirror/signed@"+s.signedD); strings.Join(got, "\n") != strings.Join(srcTypes, "\n") {
			t.Errorf("referrers at the mirror: %q, at the source %q", got, srcTypes)
		}
	}

	t.Run("registry to registry", func(t *testing.T) {
		dst := regtest.Start(t)
		out := mustRun(t, s.env, "", airlockBin, append([]string{"image", "mirror", "--insecure", "-o", "json"}, mapping(dst.Host)...)...)
		rep := parseReport(t, out.stdout)
		signed := map[string]bool{}
		for _, it := range rep.Items {
			if it.Status != "copied" {
				t.Errorf("%s: status %s", it.Source, it.Status)
			}
			signed[repoOf(it.Source)] = it.Signed
		}
		if !signed["apps/signed"] || !signed["apps/multi"] || signed["apps/unsigned"] || len(signed) != 3 {
			t.Errorf("report says signed: %v", signed)
		}
		check(t, dst.Host)
		r := sigReport(t, s.env, mapping(dst.Host))
		if r.err != nil || r.total.Signed != 2 || r.total.Unsigned != 1 || r.total.MissingAtDestination != 0 {
			t.Errorf("signatures report after a full mirror: %+v\n%s", r.total, r.res)
		}
	})

	t.Run("registry to disk to registry", func(t *testing.T) {
		store := filepath.Join(t.TempDir(), "store")
		var toDisk []string
		for _, m := range mapping("x") {
			src, dst, _ := strings.Cut(m, "=")
			toDisk = append(toDisk, src+"=file://"+strings.TrimPrefix(dst, "x/"))
		}
		mustRun(t, s.env, "", airlockBin, append([]string{"image", "mirror", "--insecure", "--dir", store}, toDisk...)...)
		dst := regtest.Start(t)
		var fromDisk []string
		for _, m := range toDisk {
			_, d, _ := strings.Cut(m, "=")
			fromDisk = append(fromDisk, d+"="+dst.Host+"/"+strings.TrimPrefix(d, "file://"))
		}
		mustRun(t, s.env, "", airlockBin, append([]string{"image", "mirror", "--insecure", "--from-dir", store}, fromDisk...)...)
		check(t, dst.Host)
	})

	t.Run("strict", func(t *testing.T) {
		dst := regtest.Start(t)
		r := run(t, s.env, "", airlockBin, append([]string{"image", "mirror", "--insecure", "--signatures", "strict", "-o", "json", "--report", filepath.Join(t.TempDir(), "failed.txt")}, mapping(dst.Host)...)...)
		if r.err == nil {
			t.Fatalf("--signatures strict with an unsigned image succeeded:\n%s", r)
		}
		if !strings.Contains(r.stderr, "apps/unsigned") {
			t.Errorf("the error does not name the unsigned image:\n%s", r.stderr)
		}
		rep := parseReport(t, r.stdout)
		for _, it := range rep.Items {
			wantFailed := repoOf(it.Source) == "apps/unsigned"
			if (it.Status == "failed") != wantFailed {
				t.Errorf("%s: status %s", it.Source, it.Status)
			}
		}
		if d := dst.DigestOf(t, dst.Host+"/mirror/unsigned:v1"); d != "" {
			t.Errorf("strict copied the unsigned image (%s)", d)
		}
		check := s.verify(t, dst.Host+"/mirror/signed@"+s.signedD)
		if check.err != nil {
			t.Errorf("cosign verify after strict: %v", check)
		}
	})

	t.Run("remove", func(t *testing.T) {
		dst := regtest.Start(t)
		mustRun(t, s.env, "", airlockBin, append([]string{"image", "mirror", "--insecure", "--signatures", "remove"}, mapping(dst.Host)...)...)
		if r := s.verify(t, dst.Host+"/mirror/signed@"+s.signedD); r.err == nil {
			t.Errorf("--signatures remove, yet cosign verify passes at the mirror:\n%s", r)
		}
		if got := s.artifactTypes(t, dst.Host+"/mirror/signed@"+s.signedD); len(got) != 0 {
			t.Errorf("--signatures remove, yet the mirror holds referrers %q", got)
		}
		if d := dst.DigestOf(t, dst.Host+"/mirror/multi:sha256-"+strings.TrimPrefix(s.multiD, "sha256:")+".sig"); d != "" {
			t.Errorf("--signatures remove copied the .sig tag (%s)", d)
		}
		if d := dst.DigestOf(t, dst.Host+"/mirror/signed:v1"); d != s.signedD {
			t.Errorf("the image itself: %q", d)
		}
		// The report sees what the mirror lacks: both signed images'
		// signatures; the unsigned image lacks nothing.
		r := sigReport(t, s.env, mapping(dst.Host))
		if r.err == nil || r.total.Signed != 2 || r.total.MissingAtDestination != 2 || !strings.Contains(r.res.stdout, "MISSING at "+dst.Host+"/mirror/multi:v1: sig ") {
			t.Errorf("signatures report after --signatures remove: %+v\n%s", r.total, r.res)
		}
	})
}

// TestSignaturePolicyBeforeCopy: with --policy (containers-policy.json
// requiring the cosign key) the images signed with it — a cosign v3 bundle
// and a tag-style signature of an index — are mirrored, and an unsigned
// image, one signed by another key and one whose signature was tampered
// with are each refused by name and not copied.
func TestSignaturePolicyBeforeCopy(t *testing.T) {
	s := newSignedSource(t)
	opt := remote.WithTransport(s.reg.Transport)
	foreign, err := synth.Image(104, synth.WithLayerSize(1024))
	if err != nil {
		t.Fatal(err)
	}
	foreignD, err := synth.Push(foreign, s.reg.Ref("apps/foreign")+":v1", opt)
	if err != nil {
		t.Fatal(err)
	}
	otherKeys := t.TempDir()
	mustRun(t, s.env, "", s.cosign, "generate-key-pair", "--output-key-prefix", filepath.Join(otherKeys, "other"))
	mustRun(t, s.env, "", s.cosign, "sign", "--key", filepath.Join(otherKeys, "other.key"), "--use-signing-config=false", "--tlog-upload=false",
		"--allow-http-registry", "--allow-insecure-registry", "-y", s.reg.Ref("apps/foreign")+"@"+foreignD)

	tampered, err := synth.Image(105, synth.WithLayerSize(1024))
	if err != nil {
		t.Fatal(err)
	}
	tamperedD, err := synth.Push(tampered, s.reg.Ref("apps/tampered")+":v1", opt)
	if err != nil {
		t.Fatal(err)
	}
	s.sign(t, s.reg.Ref("apps/tampered")+"@"+tamperedD, "--new-bundle-format=false")
	tamper(t, s.reg, "apps/tampered", strings.Replace(tamperedD, ":", "-", 1)+".sig")

	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.json")
	if err := os.WriteFile(policy, []byte(`{"default": [{"type": "reject"}], "transports": {"docker": {
  "`+s.reg.Host+`/apps": [{"type": "sigstoreSigned", "keyPath": "`+s.pub+`"}]}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	dst := regtest.Start(t)
	args := []string{"image", "mirror", "--insecure", "--policy", policy, "-o", "json", "--report", filepath.Join(dir, "failed.txt")}
	for _, repo := range []string{"signed", "multi", "unsigned", "foreign", "tampered"} {
		args = append(args, s.reg.Ref("apps/"+repo)+":v1="+dst.Host+"/mirror/"+repo+":v1")
	}
	r := run(t, s.env, "", airlockBin, args...)
	if r.err == nil {
		t.Fatalf("--policy passed unsigned, foreign and tampered images:\n%s", r)
	}
	var rep struct {
		Items []struct {
			Status         string `json:"status"`
			Error          string `json:"error"`
			PolicyVerified bool   `json:"policyVerified"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || len(rep.Items) != 5 {
		t.Fatalf("report (%v):\n%s", err, r.stdout)
	}
	for i, want := range []string{"", "", "no sigstore signature", "not signed by the policy's key", "not signed by the policy's key"} {
		it := rep.Items[i]
		if want == "" {
			if it.Status != "copied" || !it.PolicyVerified {
				t.Errorf("item %d: %s (verified %v): %s", i, it.Status, it.PolicyVerified, it.Error)
			}
			continue
		}
		if it.Status != "failed" || !strings.Contains(it.Error, want) || !strings.Contains(it.Error, policy) {
			t.Errorf("item %d: %s %q, want failed saying %q and naming %s", i, it.Status, it.Error, want, policy)
		}
	}
	for _, repo := range []string{"unsigned", "foreign", "tampered"} {
		if d := dst.DigestOf(t, dst.Host+"/mirror/"+repo+":v1"); d != "" {
			t.Errorf("%s was refused by the policy but copied", repo)
		}
		if !strings.Contains(r.stderr, "apps/"+repo) {
			t.Errorf("the output does not name apps/%s:\n%s", repo, r.stderr)
		}
	}
	if v := s.verify(t, dst.Host+"/mirror/multi@"+s.multiD); v.err != nil {
		t.Errorf("cosign verify of the policy-checked index at the mirror: %v", v)
	}
}

// tamper flips one byte of the cosign signature annotation of the
// tag-style signature manifest at repo:tag and puts it back.
func tamper(t *testing.T, reg *regtest.Registry, repo, tag string) {
	t.Helper()
	desc, err := remote.Get(mustName(t, reg.Ref(repo)+":"+tag), remote.WithTransport(reg.Transport))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(desc.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	layer := m["layers"].([]any)[0].(map[string]any)
	ann := layer["annotations"].(map[string]any)
	sig, err := base64.StdEncoding.DecodeString(ann["dev.cosignproject.cosign/signature"].(string))
	if err != nil {
		t.Fatal(err)
	}
	sig[len(sig)/2] ^= 0x01
	ann["dev.cosignproject.cosign/signature"] = base64.StdEncoding.EncodeToString(sig)
	body, _ := json.Marshal(m)
	req, err := reg.Request(http.MethodPut, "/v2/"+repo+"/manifests/"+tag, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", string(desc.MediaType))
	resp, err := reg.Client().Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("putting the tampered signature: %v %v", err, resp)
	}
	resp.Body.Close()
}

func mustName(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

type sigReportResult struct {
	res   result
	err   error
	total struct {
		Signed, Unsigned, MissingAtDestination int
	}
}

// sigReport runs `airlock signatures report -f` over a mapping, in text
// (kept for messages) and JSON (parsed).
func sigReport(t *testing.T, env []string, mapping []string) sigReportResult {
	t.Helper()
	file := filepath.Join(t.TempDir(), "mapping.txt")
	if err := os.WriteFile(file, []byte(strings.Join(mapping, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	text := run(t, env, "", airlockBin, "signatures", "report", "--insecure", "-f", file)
	js := run(t, env, "", airlockBin, "signatures", "report", "--insecure", "-f", file, "-o", "json")
	if (text.err == nil) != (js.err == nil) {
		t.Errorf("text and json runs disagree: %v / %v", text.err, js.err)
	}
	out := sigReportResult{res: text, err: js.err}
	var rep struct {
		Total struct {
			Signed               int `json:"signed"`
			Unsigned             int `json:"unsigned"`
			MissingAtDestination int `json:"missingAtDestination"`
		} `json:"total"`
	}
	if err := json.Unmarshal([]byte(js.stdout), &rep); err != nil {
		t.Fatalf("signatures report -o json: %v\n%s", err, js)
	}
	out.total.Signed, out.total.Unsigned, out.total.MissingAtDestination = rep.Total.Signed, rep.Total.Unsigned, rep.Total.MissingAtDestination
	return out
}
