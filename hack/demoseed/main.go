// Command demoseed fills a registry with the "upstream" content that
// `make demo` then mirrors, so the demo runs offline: a catalog image built
// from REAL community-operators packages (../shared/testdata) whose bundle
// and related images are replaced by deterministic synthetic images pushed
// to the same registry (some multi-arch), an opm base image, and a
// synthetic OpenShift release image carrying the REAL 4.12.0
// image-references (its components synthetic too), and app images, some
// signed as cosign signs them with a key.
//
// It is a development tool, not part of the airlock binary.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/operator-framework/operator-registry/alpha/declcfg"

	"github.com/airlock-mirror/airlock/internal/catalog"
	"github.com/airlock-mirror/airlock/internal/catalogimage"
	"github.com/airlock-mirror/airlock/internal/engine"
	"github.com/airlock-mirror/airlock/internal/ref"
	"github.com/airlock-mirror/airlock/internal/release/releasetest"
	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demoseed:", err)
		os.Exit(1)
	}
}

func run() error {
	host := flag.String("registry", "", "host:port of the registry to fill (required)")
	caFile := flag.String("ca-file", "", "CA certificate of the registry (TLS); empty for plain HTTP")
	catalogs := flag.String("catalog-dir", "../shared/testdata/catalogs/community-operators-prod-v4.18", "directory of per-package FBC directories")
	pkgs := flag.String("packages", "kepler-operator,ecr-secret-operator,rsct-operator,shipwright-operator", "packages to put in the catalog")
	components := flag.Int("release-components", 24, "release components to keep of the 183 real ones (0 = all)")
	layerSize := flag.Int("layer-size", 64<<10, "bytes of each synthetic layer")
	pubOut := flag.String("sign-key-out", "", "push signed and unsigned app images (apps/web, apps/api signed; apps/tools not) and write the signing public key here")
	flag.Parse()
	if *host == "" {
		return fmt.Errorf("--registry is required")
	}
	ctx := context.Background()

	tr := http.DefaultTransport.(*http.Transport).Clone()
	insecure := *caFile == ""
	if !insecure {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%s: no PEM certificate", *caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	eng, err := engine.New(engine.Options{Transport: tr, Insecure: insecure})
	if err != nil {
		return err
	}

	// The catalog: real packages, synthetic images.
	var cfg declcfg.DeclarativeConfig
	for _, p := range strings.Split(*pkgs, ",") {
		c, err := catalog.LoadDir(ctx, filepath.Join(*catalogs, p))
		if err != nil {
			return err
		}
		cfg.Merge(c.Config)
	}
	repl, bad, err := synth.PushCatalogImages(*host, &cfg, *layerSize, tr, nil)
	if err != nil {
		return err
	}
	for _, b := range bad {
		fmt.Fprintf(os.Stderr, "demoseed: skipping %s\n", b)
	}
	fmt.Printf("pushed %d synthetic bundle and related images\n", len(repl))

	base, err := synth.Index(424242, []string{"linux/amd64", "linux/arm64"}, synth.WithLayerSize(*layerSize))
	if err != nil {
		return err
	}
	baseRef := ref.MustParse(*host + "/operator-framework/opm:latest")
	if err := eng.WriteIndex(ctx, baseRef, base); err != nil {
		return err
	}
	catRef := ref.MustParse(*host + "/redhat/community-operator-index:v4.18")
	res, err := catalogimage.Build(ctx, eng, baseRef, &catalog.Catalog{Config: &cfg, Format: catalog.FormatFBC}, catRef)
	if err != nil {
		return err
	}
	fmt.Printf("catalog image %s@%s (%s)\n", catRef, res.Digest, strings.Join(res.Platforms, ", "))

	rel, err := releasetest.Build(*host, releasetest.Options{
		Components: *components,
		Remote:     []remote.Option{remote.WithTransport(tr)},
	})
	if err != nil {
		return err
	}
	fmt.Printf("release image %s@%s (%d components)\n", rel.Ref, rel.Digest, len(rel.Names))
	if *pubOut != "" {
		return apps(*host, tr, *pubOut)
	}
	return nil
}
