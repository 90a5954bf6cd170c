package kubeapi

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/airlock-mirror/airlock/internal/registry"
)

// Server is a running kube-apiserver with its own etcd.
type Server struct {
	// URL is the secure endpoint, https://127.0.0.1:PORT.
	URL string
	// Admin is in system:masters (every permission). Viewer and Nobody are
	// authenticated users with no permission until a test binds a role to
	// User "viewer" (or "nobody").
	Admin, Viewer, Nobody *rest.Config
	// Kubeconfig is a kubeconfig file with one context per user, named
	// admin, viewer and nobody; the current context is admin.
	Kubeconfig string
	// CAData is the PEM certificate the server is verified with.
	CAData []byte

	grants int // ClusterRoles made by Grant, for unique names
}

// users of the static token file: token, name, uid, groups.
var users = []struct{ name, group string }{{"admin", "system:masters"}, {"viewer", ""}, {"nobody", ""}}

// Start runs etcd and kube-apiserver on random loopback ports, with data
// in t.TempDir(), and waits until the API server is ready. Both stop when
// the test ends. Nothing else of a cluster runs: no controllers, no
// scheduler, no kubelet; objects are what the test creates.
func Start(t testing.TB) *Server {
	t.Helper()
	apiserverBin, etcdBin := Binaries(t)
	dir := t.TempDir()
	etcdURL := startEtcd(t, etcdBin, dir)

	ca, certFile, keyFile := servingCert(t, dir)
	saKey := writeSAKey(t, dir)
	tokens := map[string]string{}
	var csv strings.Builder
	for i, u := range users {
		tokens[u.name] = randomToken(t)
		fmt.Fprintf(&csv, "%s,%s,uid-%d", tokens[u.name], u.name, i)
		if u.group != "" {
			fmt.Fprintf(&csv, ",%q", u.group)
		}
		csv.WriteString("\n")
	}
	tokenFile := filepath.Join(dir, "tokens.csv")
	must(t, os.WriteFile(tokenFile, []byte(csv.String()), 0o600))

	port := freePort(t)
	args := []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", port),
		"--tls-cert-file=" + certFile, "--tls-private-key-file=" + keyFile,
		"--token-auth-file=" + tokenFile, "--anonymous-auth=false",
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + saKey, "--service-account-signing-key-file=" + saKey,
		"--service-cluster-ip-range=10.0.0.0/24",
		// The kubernetes Service's endpoints would name the advertise
		// address, which may not be loopback; nothing here uses them.
		"--endpoint-reconciler-type=none",
		// No controller-manager creates the namespaces' default service
		// accounts, so pods could not be admitted with this plugin on.
		"--disable-admission-plugins=ServiceAccount",
		"--cert-dir=" + filepath.Join(dir, "certs"),
	}
	exited := startProcess(t, "kube-apiserver", apiserverBin, dir, args...)

	s := &Server{URL: fmt.Sprintf("https://127.0.0.1:%d", port), CAData: ca}
	cfg := func(user string) *rest.Config {
		return &rest.Config{Host: s.URL, BearerToken: tokens[user], TLSClientConfig: rest.TLSClientConfig{CAData: ca},
			QPS: 200, Burst: 400}
	}
	s.Admin, s.Viewer, s.Nobody = cfg("admin"), cfg("viewer"), cfg("nobody")
	s.Kubeconfig = writeKubeconfig(t, dir, s.URL, ca, tokens)
	waitReady(t, s, exited, filepath.Join(dir, "kube-apiserver.log"))
	return s
}

func startEtcd(t testing.TB, bin, dir string) string {
	t.Helper()
	client, peer := fmt.Sprintf("http://127.0.0.1:%d", freePort(t)), fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	exited := startProcess(t, "etcd", bin, dir,
		"--data-dir="+filepath.Join(dir, "etcd"), "--name=default",
		"--listen-client-urls="+client, "--advertise-client-urls="+client,
		"--listen-peer-urls="+peer, "--initial-advertise-peer-urls="+peer, "--initial-cluster=default="+peer,
		// A test's data need not survive a power cut.
		"--unsafe-no-fsync")
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(client + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return client
			}
		}
		select {
		case <-exited:
			t.Fatalf("etcd exited: %v\n%s", err, tail(filepath.Join(dir, "etcd.log")))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd not healthy after 30s: %v\n%s", err, tail(filepath.Join(dir, "etcd.log")))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startProcess runs bin with its output in DIR/NAME.log and stops it when
// the test ends. The channel is closed when the process exits: a server
// that failed to start is reported at once, not after a timeout.
func startProcess(t testing.TB, name, bin, dir string, args ...string) <-chan struct{} {
	t.Helper()
	log, err := os.Create(filepath.Join(dir, name+".log"))
	must(t, err)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		log.Close()
	})
	return exited
}

func waitReady(t testing.TB, s *Server, exited <-chan struct{}, logFile string) {
	t.Helper()
	client, err := rest.HTTPClientFor(s.Admin)
	must(t, err)
	deadline := time.Now().Add(90 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/readyz", nil)
		resp, err := client.Do(req)
		status := 0
		if err == nil {
			status = resp.StatusCode
			resp.Body.Close()
		}
		cancel()
		if status == http.StatusOK {
			return
		}
		select {
		case <-exited:
			t.Fatalf("kube-apiserver exited\n%s", tail(logFile))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("kube-apiserver not ready after 90s (status %d, %v)\n%s", status, err, tail(logFile))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// servingCert issues the API server's certificate for 127.0.0.1 from a
// fresh CA, the way `airlock registry serve` does for itself.
func servingCert(t testing.TB, dir string) (caPEM []byte, certFile, keyFile string) {
	t.Helper()
	cf, err := registry.EnsureCerts(filepath.Join(dir, "certs"), []string{"127.0.0.1", "localhost"})
	must(t, err)
	caPEM, err = os.ReadFile(cf.CACert)
	must(t, err)
	return caPEM, cf.Cert, cf.Key
}

// writeSAKey writes the key service-account tokens are signed with: the
// API server refuses to start without one, though no test uses them.
func writeSAKey(t testing.TB, dir string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	der, err := x509.MarshalECPrivateKey(key)
	must(t, err)
	p := filepath.Join(dir, "sa.key")
	must(t, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600))
	return p
}

func writeKubeconfig(t testing.TB, dir, url string, ca []byte, tokens map[string]string) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["kubeapi-test"] = &clientcmdapi.Cluster{Server: url, CertificateAuthorityData: ca}
	for _, u := range users {
		kc.AuthInfos[u.name] = &clientcmdapi.AuthInfo{Token: tokens[u.name]}
		kc.Contexts[u.name] = &clientcmdapi.Context{Cluster: "kubeapi-test", AuthInfo: u.name}
	}
	kc.CurrentContext = "admin"
	p := filepath.Join(dir, "kubeconfig")
	must(t, clientcmd.WriteToFile(*kc, p))
	return p
}

func randomToken(t testing.TB) string {
	b := make([]byte, 16)
	_, err := rand.Read(b)
	must(t, err)
	return fmt.Sprintf("%x", b)
}

// freePort asks the kernel for a free loopback port. Another process may
// take it before the server binds it; on a test machine that is rare
// enough, and the start then fails loudly rather than silently.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
