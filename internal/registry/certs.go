package registry

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/airlock-mirror/airlock/internal/atomicfile"
)

// CertFiles are the paths of a generated certificate authority and the
// server certificate it signed.
type CertFiles struct {
	Dir     string
	CACert  string // ca.crt: what clients must trust
	CAKey   string // ca.key: kept so the server cert can be re-issued for new SANs
	Cert    string // server.crt
	Key     string // server.key
	Created bool   // true when the CA was generated on this call
}

// Certificate validity. The CA lives long because re-trusting it on every
// cluster node is expensive; the server cert is re-issued from the same CA
// whenever it nears expiry or lacks a requested name.
const (
	caValidity     = 10 * 365 * 24 * time.Hour
	serverValidity = 2 * 365 * 24 * time.Hour
	renewBefore    = 30 * 24 * time.Hour
)

// EnsureCerts makes sure dir holds a CA and a server certificate valid for
// every name in hosts (DNS names or IP addresses). Existing files are
// reused, so restarting the registry does not invalidate the trust clients
// and clusters were given; the server certificate alone is re-issued (from
// the same CA) when it misses one of hosts or expires soon.
func EnsureCerts(dir string, hosts []string) (CertFiles, error) {
	cf := CertFiles{
		Dir:    dir,
		CACert: filepath.Join(dir, "ca.crt"),
		CAKey:  filepath.Join(dir, "ca.key"),
		Cert:   filepath.Join(dir, "server.crt"),
		Key:    filepath.Join(dir, "server.key"),
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return cf, fmt.Errorf("creating certificate directory %s: %w", dir, err)
	}
	caCert, caKey, err := loadKeyPair(cf.CACert, cf.CAKey)
	if errors.Is(err, os.ErrNotExist) {
		caCert, caKey, err = newCA()
		if err != nil {
			return cf, err
		}
		if err := writePEM(cf.CAKey, "EC PRIVATE KEY", mustMarshalKey(caKey), 0o600); err != nil {
			return cf, err
		}
		if err := writePEM(cf.CACert, "CERTIFICATE", caCert.Raw, 0o644); err != nil {
			return cf, err
		}
		cf.Created = true
		// A new CA invalidates any old server cert.
		_ = os.Remove(cf.Cert)
	} else if err != nil {
		return cf, fmt.Errorf("loading CA from %s: %w (delete %s to generate a new CA; clients must then trust the new ca.crt)", dir, err, dir)
	}

	srv, _, err := loadKeyPair(cf.Cert, cf.Key)
	if err == nil && srv.CheckSignatureFrom(caCert) == nil && covers(srv, hosts) && time.Until(srv.NotAfter) > renewBefore {
		return cf, nil
	}
	srvCert, srvKey, err := newServerCert(caCert, caKey, hosts)
	if err != nil {
		return cf, err
	}
	if err := writePEM(cf.Key, "EC PRIVATE KEY", mustMarshalKey(srvKey), 0o600); err != nil {
		return cf, err
	}
	if err := writePEM(cf.Cert, "CERTIFICATE", srvCert.Raw, 0o644); err != nil {
		return cf, err
	}
	return cf, nil
}

// covers reports whether cert is valid for every host.
func covers(cert *x509.Certificate, hosts []string) bool {
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
				return false
			}
		} else if !slices.Contains(cert.DNSNames, h) {
			return false
		}
	}
	return true
}

func newCA() (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating CA key: %w", err)
	}
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber:          randSerial(),
		Subject:               pkix.Name{CommonName: "airlock registry CA " + host, Organization: []string{"airlock"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("creating CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

func newServerCert(ca *x509.Certificate, caKey *ecdsa.PrivateKey, hosts []string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: randSerial(),
		Subject:      pkix.Name{CommonName: "airlock registry", Organization: []string{"airlock"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(serverValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	if len(tmpl.DNSNames) > 0 {
		tmpl.Subject.CommonName = tmpl.DNSNames[0]
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("creating server certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

func randSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return n
}

func mustMarshalKey(k *ecdsa.PrivateKey) []byte {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		panic(err) // only fails for unsupported curves; we use P-256
	}
	return der
}

// loadKeyPair reads a PEM certificate and its EC key. A missing file gives
// an error wrapping os.ErrNotExist.
func loadKeyPair(certFile, keyFile string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, nil, fmt.Errorf("parsing %s: %w", certFile, err)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, nil, fmt.Errorf("%s: not an ECDSA key", keyFile)
	}
	return cert, key, nil
}

// writePEM writes one PEM block atomically (temp file, fsync, rename).
func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	return atomicfile.Write(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode)
}
