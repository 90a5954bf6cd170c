package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTransferSetOpenPGPSignatureWithGPG: a transfer set signed by airlock
// with a key gpg generated is checked by gpg --verify, and a set signed by
// gpg itself (gpg --armor --detach-sign) is checked by archive verify --key;
// a changed manifest fails both.
func TestTransferSetOpenPGPSignatureWithGPG(t *testing.T) {
	gpg := requireTool(t, "gpg")
	env := clientEnv(t)
	// A short GNUPGHOME: gpg-agent's socket path must fit in sun_path.
	home, err := os.MkdirTemp("", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		run(t, append(env, "GNUPGHOME="+home), "", "gpgconf", "--kill", "gpg-agent")
		os.RemoveAll(home)
	})
	os.Chmod(home, 0o700)
	env = append(env, "GNUPGHOME="+home)
	batch := []string{"--batch", "--pinentry-mode", "loopback", "--passphrase", ""}
	mustRun(t, env, "", gpg, append(batch, "--quick-gen-key", "airlock transfer test <transfer@example.com>", "ed25519", "sign", "never")...)
	keys := t.TempDir()
	sec := mustRun(t, env, "", gpg, append(batch, "--armor", "--export-secret-keys", "transfer@example.com")...).stdout
	pub := mustRun(t, env, "", gpg, "--armor", "--export", "transfer@example.com").stdout
	if !strings.Contains(sec, "BEGIN PGP PRIVATE KEY BLOCK") || !strings.Contains(pub, "BEGIN PGP PUBLIC KEY BLOCK") {
		t.Fatalf("gpg exports:\n%s\n%s", sec, pub)
	}
	secFile, pubFile := filepath.Join(keys, "sec.asc"), filepath.Join(keys, "pub.asc")
	os.WriteFile(secFile, []byte(sec), 0o600)
	os.WriteFile(pubFile, []byte(pub), 0o644)

	store, _ := mirrorWorkloadToStore(t, 47)
	set1 := filepath.Join(t.TempDir(), "set")
	mustRun(t, env, "", airlockBin, "archive", "create", "--from", "file://"+store, set1, "--segment-bytes", "20000", "--sign-key", secFile)
	manifest, asc := filepath.Join(set1, "airlock-transfer.json"), filepath.Join(set1, "airlock-transfer.json.asc")
	r := mustRun(t, env, "", gpg, "--batch", "--verify", asc, manifest)
	if !strings.Contains(r.stderr, "Good signature") {
		t.Errorf("gpg --verify of airlock's signature:\n%s", r)
	}
	if out := mustRun(t, env, "", airlockBin, "archive", "verify", set1, "--key", pubFile).stdout; !strings.Contains(out, "signature of") || !strings.Contains(out, "valid") {
		t.Errorf("archive verify --key:\n%s", out)
	}

	// gpg signs a set (the way with a passphrase-protected key); airlock checks it.
	set2 := filepath.Join(t.TempDir(), "set2")
	mustRun(t, env, "", airlockBin, "archive", "create", "--from", "file://"+store, set2, "--segment-bytes", "20000", "--full")
	m2 := filepath.Join(set2, "airlock-transfer.json")
	mustRun(t, env, "", gpg, append(batch, "--armor", "--detach-sign", m2)...)
	mustRun(t, env, "", airlockBin, "archive", "verify", set2, "--key", pubFile)

	// One byte of the manifest changed: gpg and airlock both refuse it.
	b, _ := os.ReadFile(manifest)
	os.WriteFile(manifest, append(b, '\n'), 0o644)
	if r := run(t, env, "", gpg, "--batch", "--verify", asc, manifest); r.err == nil {
		t.Errorf("gpg verified a changed manifest:\n%s", r)
	}
	r = run(t, env, "", airlockBin, "archive", "verify", set1, "--key", pubFile)
	if r.err == nil || !strings.Contains(r.stderr, "airlock-transfer.json.asc") {
		t.Errorf("archive verify of a changed manifest:\n%s", r)
	}
}
