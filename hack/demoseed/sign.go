package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/airlock-mirror/airlock/internal/testutil/synth"
)

// apps pushes the demo's additional images: apps/web:1.0 and apps/api:1.0
// signed the way cosign signs with a key (a tag-style sha256-<hex>.sig
// simple-signing payload, ECDSA P-256), apps/tools:2.1 unsigned. The
// public key goes to pubOut, for --policy.
func apps(host string, tr http.RoundTripper, pubOut string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	if err := os.WriteFile(pubOut, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		return err
	}
	opt := remote.WithTransport(tr)
	for i, a := range []struct {
		repo, tag string
		signed    bool
	}{{"apps/web", "1.0", true}, {"apps/api", "1.0", true}, {"apps/tools", "2.1", false}} {
		img, err := synth.Image(int64(8100+i), synth.WithLayerSize(32<<10))
		if err != nil {
			return err
		}
		repo := host + "/" + a.repo
		d, err := synth.Push(img, repo+":"+a.tag, opt)
		if err != nil {
			return err
		}
		if !a.signed {
			fmt.Printf("app image %s:%s (unsigned)\n", repo, a.tag)
			continue
		}
		payload := fmt.Appendf(nil, `{"critical":{"identity":{"docker-reference":%q},"image":{"docker-manifest-digest":%q},"type":"cosign container image signature"},"optional":null}`, repo, d)
		sum := sha256.Sum256(payload)
		sig, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
		if err != nil {
			return err
		}
		sigImg, err := mutate.Append(mutate.MediaType(empty.Image, types.OCIManifestSchema1), mutate.Addendum{
			Layer:       static.NewLayer(payload, "application/vnd.dev.cosign.simplesigning.v1+json"),
			Annotations: map[string]string{"dev.cosignproject.cosign/signature": base64.StdEncoding.EncodeToString(sig)},
		})
		if err != nil {
			return err
		}
		sigImg = mutate.ConfigMediaType(sigImg, types.OCIConfigJSON)
		tag, err := name.NewTag(repo+":"+strings.Replace(d, ":", "-", 1)+".sig", name.Insecure)
		if err != nil {
			return err
		}
		if err := remote.Write(tag, sigImg, opt); err != nil {
			return fmt.Errorf("pushing the signature of %s: %w", repo, err)
		}
		fmt.Printf("app image %s:%s signed (%s)\n", repo, a.tag, tag.TagStr())
	}
	return nil
}
