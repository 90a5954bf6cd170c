package orchestrate

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlock-mirror/airlock/internal/engine"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/release/releasetest"
	"github.com/airlock-mirror/airlock/internal/testutil/regtest"
)

// TestReleaseMirrorRegistryWithoutFrontEnd runs ReleaseMirror directly:
// a synthetic release to another repository of the same registry, the
// mirror sets and verify mapping written, no install-config sections with
// PrintMirror "none".
func TestReleaseMirrorRegistryWithoutFrontEnd(t *testing.T) {
	reg := regtest.Start(t)
	rel, err := releasetest.Build(reg.Host, releasetest.Options{Components: 5})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.Options{Transport: reg.Transport})
	if err != nil {
		t.Fatal(err)
	}
	manifests := t.TempDir()
	var out, errOut, logged bytes.Buffer
	res, err := ReleaseMirror(context.Background(), ReleaseMirrorOptions{
		ReleaseRequest: ReleaseRequest{From: ref.MustParse(rel.Ref), To: ref.MustParse(reg.Host + "/ocp/release")},
		ToManifests:    manifests, PrintMirror: "none", Engine: eng, Out: &out, ErrOut: &errOut,
		Log: slog.New(slog.NewTextHandler(&logged, nil)),
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	if res.Release.Digest != rel.Digest || res.Report == nil || len(res.Report.Failed()) != 0 {
		t.Fatalf("result: digest %s (want %s), report %v", res.Release.Digest, rel.Digest, res.Report)
	}
	if res.Manifests == nil {
		t.Fatal("no manifests for a registry mirror")
	}
	for _, p := range []string{res.Manifests.IDMS, res.Manifests.ICSP, res.Manifests.Mapping} {
		if filepath.Dir(p) != manifests {
			t.Errorf("%s not in %s", p, manifests)
		}
		if _, err := os.Stat(p); err != nil {
			t.Error(err)
		}
	}
	s := out.String()
	if !strings.Contains(s, "Update image:  "+reg.Host+"/ocp/release:4.12.0-x86_64") || strings.Contains(s, "install-config.yaml") {
		t.Errorf("stdout:\n%s", s)
	}
	if !strings.Contains(logged.String(), "no release signature imported") {
		t.Errorf("a missing signature must be warned about through Log:\n%s", logged.String())
	}
	if !strings.Contains(errOut.String(), "Mirroring release 4.12.0") {
		t.Errorf("stderr:\n%s", errOut.String())
	}
}
