// Package oldopm serves a legacy sqlite index database (index.db) with an
// OLD opm — one from before file-based catalogs, like the opm inside the
// OpenShift 4.6–4.10 catalog images whose databases airlock rewrites — and
// queries it over gRPC the way OLM's catalog operator does. A database that
// passes here is one those images can serve.
//
//	srv := oldopm.Serve(t, "index.db")
//	next, err := srv.BundleThatReplaces("etcdoperator.v0.9.0", "etcd", "alpha")
//
// The opm binary is built from the Go module proxy (cgo: old opm uses
// mattn/go-sqlite3) and cached under the user cache directory.
package oldopm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/operator-framework/operator-registry/pkg/api"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// Module and Version name the opm that is built.
//
// v1.16.1 is operator-registry as of OpenShift 4.7: purely sqlite, no
// declarative-config code at all (that arrived as `opm alpha` in v1.17), and
// the oldest release that builds with today's Go from the module proxy:
// v1.14.x and v1.15.x need vbom.ml/util, which the proxy no longer serves.
// It knows sqlite schema migrations up to 010 (operator-registry v1.65
// writes 013).
//
// `go install pkg@version` cannot build it: its go.mod has replace
// directives (a containerd fork, a docker/distribution pin), which `go
// install` refuses (and it also asks the proxy for the module's version
// list, which is not served). So the module is downloaded with `go mod
// download` and built inside a writable copy with -mod=mod, from its own
// go.mod and go.sum. The module zip holds no vendor tree (only
// vendor/modules.txt, which is left out). Like upstream's Makefile, the
// build uses -tags json1: without it sqlite has no JSON functions and the
// schema migrations opm runs at start-up fail ("no such function:
// json_remove").
const (
	Module  = "github.com/operator-framework/operator-registry"
	Version = "v1.16.1"
)

var buildMu sync.Mutex

// Binary returns the path of the old opm, building it on first use (about
// two minutes with a warm module cache, five with nothing cached, on two
// cores) and caching it in
// <user cache dir>/airlock-test-tools/<Version>/opm across runs. A failed
// build fails the test with the build's output. Only a missing C compiler
// outside CI skips; under CI=true it fails too.
func Binary(t testing.TB) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	bin := filepath.Join(cache, "airlock-test-tools", Version, "opm")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	// Test binaries of several packages run at once: one builds, the
	// others wait for it instead of building the same thing on two cores.
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(bin+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	cc := "gcc" // what cgo runs unless CC says otherwise
	if f := strings.Fields(os.Getenv("CC")); len(f) > 0 {
		cc = f[0]
	}
	if _, err := exec.LookPath(cc); err != nil {
		msg := "building opm " + Version + " needs cgo and a C compiler (Debian: apt-get install gcc libc6-dev): " + err.Error()
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	work := t.TempDir() // outside airlock's module: opm's own go.mod decides
	env := append(os.Environ(), "CGO_ENABLED=1", "GOFLAGS=", "GOWORK=off", "GOTOOLCHAIN=local")
	run := func(dir string, args ...string) []byte {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir, cmd.Env = dir, env
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("building opm %s: go %s (needs the Go module proxy and cgo): %v\n%s%s", Version, strings.Join(args, " "), err, out, stderr.String())
		}
		return out
	}
	var dl struct {
		Dir   string
		Error string
	}
	out := run(work, "mod", "download", "-json", Module+"@"+Version)
	if err := json.Unmarshal(out, &dl); err != nil || dl.Dir == "" {
		t.Fatalf("go mod download %s@%s: %v %s\n%s", Module, Version, err, dl.Error, out)
	}
	src := filepath.Join(work, "src")
	if err := copyTree(dl.Dir, src); err != nil {
		t.Fatalf("copying %s: %v", dl.Dir, err)
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	// Built beside the final path and renamed: another test process sees
	// either no binary or a whole one.
	tmp := filepath.Join(filepath.Dir(bin), fmt.Sprintf(".opm-%d", os.Getpid()))
	defer os.Remove(tmp)
	run(src, "build", "-mod=mod", "-trimpath", "-tags", "json1",
		"-ldflags", "-X "+Module+"/cmd/opm/version.opmVersion="+Version,
		"-o", tmp, "./cmd/opm")
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// copyTree copies a module directory (read-only in the module cache) into
// a writable one, leaving out vendor/.
func copyTree(from, to string) error {
	return filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		dst := filepath.Join(to, rel)
		switch {
		case d.IsDir() && rel == "vendor":
			return filepath.SkipDir
		case d.IsDir():
			return os.MkdirAll(dst, 0o755)
		case !d.Type().IsRegular():
			return nil
		}
		return copyFile(path, dst)
	})
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Server is a running `opm registry serve` and a gRPC client of it.
type Server struct {
	// Client speaks operator-registry's registry API, as OLM does.
	Client api.RegistryClient
	// Health is the standard gRPC health service opm registers.
	Health healthpb.HealthClient
	// Addr is where the server answers (127.0.0.1:port).
	Addr string
	// Database is the copy of the database that was handed to opm. opm
	// itself serves a private copy of this one, migrated to its schema.
	Database string
	// Dir is opm's working directory, where it puts that private copy.
	Dir string

	conn *grpc.ClientConn
	log  *syncBuffer
}

// Serve starts the old opm on a copy of dbPath on a free port, waits until
// it answers gRPC health checks, and stops it when the test ends. A server
// that does not come up fails the test with its log.
//
// What opm does on start: it copies --database into its working directory
// (Server.Dir, "db-*") and migrates that copy to its latest schema (010);
// the file it is given is not written to. It listens on every interface
// (":port"); the client talks to 127.0.0.1 only. Like in a catalog pod, it
// writes /etc/nsswitch.conf when that file is missing (Debian ships one).
func Serve(t testing.TB, dbPath string) *Server {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "index.db")
	if err := copyFile(dbPath, db); err != nil {
		t.Fatalf("copying %s: %v", dbPath, err)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		srv, err := start(t, bin, dir, db)
		if err == nil {
			return srv
		}
		lastErr = err
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	t.Fatalf("opm %s registry serve --database %s: %v", Version, dbPath, lastErr)
	return nil
}

var errPortTaken = errors.New("port taken")

func start(t testing.TB, bin, dir, db string) (*Server, error) {
	t.Helper()
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	// A copy left by an opm that failed to listen (it exits without
	// removing it).
	if stale, _ := filepath.Glob(filepath.Join(dir, "db-*")); len(stale) > 0 {
		for _, f := range stale {
			os.Remove(f)
		}
	}
	log := &syncBuffer{}
	cmd := exec.Command(bin, "registry", "serve",
		"--database", db,
		"--port", strconv.Itoa(port),
		"--termination-log", filepath.Join(dir, "termination.log"))
	// opm copies the database into its working directory ("db-*") before
	// migrating it.
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		select {
		case <-exited:
			return
		default:
		}
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		stop()
		return nil, err
	}
	srv := &Server{
		Client:   api.NewRegistryClient(conn),
		Health:   healthpb.NewHealthClient(conn),
		Addr:     addr,
		Database: db,
		Dir:      dir,
		conn:     conn,
		log:      log,
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-exited:
			conn.Close()
			if strings.Contains(log.String(), "address already in use") {
				return nil, fmt.Errorf("%w: %d", errPortTaken, port)
			}
			return nil, fmt.Errorf("opm exited before serving (%v); its log:\n%s", err, log.String())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := srv.Health.Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			break
		}
		if time.Now().After(deadline) {
			conn.Close()
			stop()
			return nil, fmt.Errorf("opm did not answer health checks on %s within a minute (last: %v, %v); its log:\n%s", addr, resp.GetStatus(), err, log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Cleanup(func() {
		conn.Close()
		stop()
		if t.Failed() {
			t.Logf("opm %s log:\n%s", Version, log.String())
		}
	})
	return srv, nil
}

// freePort asks the kernel for a port that is free right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Log is what opm printed so far.
func (s *Server) Log() string { return s.log.String() }

// callTimeout bounds each query: opm answers these from a small sqlite file.
const callTimeout = 30 * time.Second

// Packages lists the package names the server serves, sorted.
func (s *Server) Packages() ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	stream, err := s.Client.ListPackages(ctx, &api.ListPackageRequest{})
	if err != nil {
		return nil, err
	}
	var names []string
	for {
		p, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		names = append(names, p.GetName())
	}
	sort.Strings(names)
	return names, nil
}

// Package returns a package's default channel and its channels, each
// mapped to the CSV at its head.
func (s *Server) Package(name string) (defaultChannel string, channels map[string]string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	p, err := s.Client.GetPackage(ctx, &api.GetPackageRequest{Name: name})
	if err != nil {
		return "", nil, err
	}
	channels = map[string]string{}
	for _, c := range p.GetChannels() {
		channels[c.GetName()] = c.GetCsvName()
	}
	return p.GetDefaultChannelName(), channels, nil
}

// BundleRow is one bundle as the registry API describes it.
type BundleRow struct {
	CSVName     string
	PackageName string
	ChannelName string
	Version     string
	Replaces    string
	Skips       []string
	SkipRange   string
	BundlePath  string
}

func row(b *api.Bundle) BundleRow {
	return BundleRow{
		CSVName:     b.GetCsvName(),
		PackageName: b.GetPackageName(),
		ChannelName: b.GetChannelName(),
		Version:     b.GetVersion(),
		Replaces:    b.GetReplaces(),
		Skips:       b.GetSkips(),
		SkipRange:   b.GetSkipRange(),
		BundlePath:  b.GetBundlePath(),
	}
}

// Bundles lists every (bundle, channel) row of ListBundles, sorted by
// package, channel and CSV name.
func (s *Server) Bundles() ([]BundleRow, error) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	stream, err := s.Client.ListBundles(ctx, &api.ListBundlesRequest{})
	if err != nil {
		return nil, err
	}
	var rows []BundleRow
	for {
		b, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		rows = append(rows, row(b))
	}
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.PackageName != b.PackageName {
			return a.PackageName < b.PackageName
		}
		if a.ChannelName != b.ChannelName {
			return a.ChannelName < b.ChannelName
		}
		return a.CSVName < b.CSVName
	})
	return rows, nil
}

// BundleForChannel is the bundle at the head of a channel: what OLM
// installs for a subscription to it.
func (s *Server) BundleForChannel(pkg, channel string) (BundleRow, error) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	b, err := s.Client.GetBundleForChannel(ctx, &api.GetBundleInChannelRequest{PkgName: pkg, ChannelName: channel})
	if err != nil {
		return BundleRow{}, err
	}
	return row(b), nil
}

// BundleThatReplaces is the upgrade edge OLM follows: the bundle in a
// package's channel that replaces (or skips) the installed CSV. When there
// is none the error is the server's gRPC status: see IsNotFound.
func (s *Server) BundleThatReplaces(csv, pkg, channel string) (BundleRow, error) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	b, err := s.Client.GetBundleThatReplaces(ctx, &api.GetReplacementRequest{CsvName: csv, PkgName: pkg, ChannelName: channel})
	if err != nil {
		return BundleRow{}, err
	}
	return row(b), nil
}

// IsNotFound reports whether a query failed because the server has no such
// package, channel or bundle. This opm answers that with code Unknown and
// a message ("no entry found for etcd alpha", "package nope not found"),
// not NotFound; both are accepted. Transport failures (Unavailable,
// DeadlineExceeded) are not "not found".
func IsNotFound(err error) bool {
	st, ok := status.FromError(err)
	if !ok || err == nil {
		return false
	}
	switch st.Code() {
	case codes.NotFound:
		return true
	case codes.Unknown:
		return strings.Contains(st.Message(), "no entry found") || strings.HasSuffix(st.Message(), " not found")
	}
	return false
}

// syncBuffer collects a process's output for failure messages.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
