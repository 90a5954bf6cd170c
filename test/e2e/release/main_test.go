package release_test

import (
	"os"
	"testing"

	"github.com/airlock-mirror/airlock/internal/testutil/clitest"
)

// TestMain gives the package its own user cache directory (see clitest.Main).
func TestMain(m *testing.M) { os.Exit(clitest.Main(m)) }
