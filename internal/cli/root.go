// Package cli holds airlock's cobra commands. Each command follows the
// kubectl pattern: an Options struct filled from flags, then Complete (fill
// defaults and derived values), Validate (reject bad input with a message
// that says what to do), and Run. Commands are thin: the work lives in the
// concept packages (engine, catalog, release, registry, ...).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// IOStreams are the standard streams a command reads and writes; tests
// replace them with buffers.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
}

// GlobalOptions are the flags every command shares.
type GlobalOptions struct {
	LogLevel string
	Logger   *slog.Logger
}

// NewRootCommand builds the airlock command tree.
func NewRootCommand(streams IOStreams) *cobra.Command {
	g := &GlobalOptions{}
	root := &cobra.Command{
		Use:   "airlock",
		Short: "Mirror container images, operator catalogs and OpenShift releases into disconnected registries",
		Long: `airlock moves container content into disconnected (air-gapped) OpenShift and
Kubernetes environments: it mirrors images, OLM operator catalogs and OpenShift
release payloads between registries and local disk, serves an embedded mirror
registry, and writes the cluster resources that point a cluster at the mirror.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(g.LogLevel)); err != nil {
				return fmt.Errorf("--log-level %q: want debug, info, warn or error", g.LogLevel)
			}
			g.Logger = slog.New(slog.NewTextHandler(streams.ErrOut, &slog.HandlerOptions{Level: lvl}))
			slog.SetDefault(g.Logger)
			return nil
		},
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	root.PersistentFlags().StringVar(&g.LogLevel, "log-level", "info", "log level: debug, info, warn or error")

	// Subcommands, one constructor per file.
	root.AddCommand(newVersionCommand(streams))
	root.AddCommand(newReleaseCommand(streams))
	root.AddCommand(newRegistryCommand(streams))
	root.AddCommand(newLoginCommand(streams))
	root.AddCommand(newLogoutCommand(streams))
	root.AddCommand(newImageCommand(streams))
	root.AddCommand(newVerifyCommand(streams))
	root.AddCommand(newCatalogCommand(streams))
	root.AddCommand(newHistoryCommand(streams))
	root.AddCommand(newSyncCommand(streams))
	root.AddCommand(newDeleteCommand(streams))
	root.AddCommand(newMirrorCommand(streams))
	root.AddCommand(newConfigCommand(streams))
	root.AddCommand(newPlanCommand(streams))
	root.AddCommand(newSignaturesCommand(streams))
	root.AddCommand(newArchiveCommand(streams))
	root.AddCommand(newClusterCommand(streams))

	return root
}

// Version is set at build time with -ldflags "-X .../internal/cli.Version=...".
var Version = "dev"

func newVersionCommand(streams IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the airlock version",
		Example: "  airlock version",
		Args:    cobra.NoArgs,
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Fprintln(streams.Out, Version)
		},
	}
}

// Execute runs airlock with os.Args and returns the process exit code.
// SIGINT/SIGTERM cancel the command's context so runs stop cleanly and
// leave nothing half-written.
func Execute() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := NewRootCommand(IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "error:", strings.TrimSpace(err.Error()))
		var ec interface{ ExitCode() int }
		if errors.As(err, &ec) {
			return ec.ExitCode()
		}
		return 1
	}
	return 0
}
