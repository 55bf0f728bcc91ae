package rawnet_test

import (
	"net"
	"testing"

	"github.com/flashgate/flashgate/internal/rawnet"
)

func checkWrapped(t *testing.T, c net.Conn) {
	t.Helper()
	if _, ok := c.(*rawnet.Conn); !ok {
		t.Fatalf("a TCP connection was not wrapped on Linux: %T", c)
	}
}
