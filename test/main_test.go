package test

import (
	"os"
	"testing"

	"github.com/flashgate/flashgate/internal/testenv"
)

// TestMain stops the Redis Cluster that the cluster tests start, once every
// test of the package is done.
func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
