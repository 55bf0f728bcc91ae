//go:build !linux

package rawnet_test

import (
	"net"
	"testing"
)

func checkWrapped(t *testing.T, c net.Conn) {
	t.Helper()
	if _, ok := c.(*net.TCPConn); !ok {
		t.Fatalf("a TCP connection came back as %T", c)
	}
}
