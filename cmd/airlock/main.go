// Command airlock mirrors container content into disconnected registries.
package main

import (
	"os"

	"github.com/airlock-mirror/airlock/internal/cli"
)

func main() { os.Exit(cli.Execute()) }
