// Package clitest runs the airlock command tree in-process for end-to-end
// tests: the same cobra commands as the binary, with buffers for streams.
// (Tests inside package cli cannot import it: that would be a cycle.)
package clitest

import (
	"bytes"
	"context"
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
