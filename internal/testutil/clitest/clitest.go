// Package clitest runs the airlock command tree in-process for end-to-end
// tests: the same cobra commands as the binary, with buffers for streams.
// (Tests inside package cli cannot import it: that would be a cycle.)
package clitest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlock-mirror/airlock/internal/cli"
)

// Run runs `airlock ARGS...` with empty stdin and a 3-minute limit and
// returns what it printed to stdout and stderr and the command's error.
func Run(t testing.TB, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := cli.NewRootCommand(cli.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	err = root.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

// Main runs a test package with its own blob-location cache
// (AIRLOCK_BLOB_CACHE, the default of --blob-cache) in a temporary
// directory, removed afterwards: tests never read or write the user's
// cache, whether they run the commands in-process or the built binary.
// (Not XDG_CACHE_HOME: the Go build cache and the test tools built from the
// module proxy live there and must survive.) Use it as
//
//	func TestMain(m *testing.M) { os.Exit(clitest.Main(m)) }
func Main(m *testing.M) int {
	dir, err := os.MkdirTemp("", "airlock-test-cache-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "clitest:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	os.Setenv(cli.BlobCacheEnv, filepath.Join(dir, "blob-locations.json"))
	return m.Run()
}
