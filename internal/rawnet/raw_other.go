//go:build !linux

package rawnet

import "net"

// Wrap returns c: outside Linux, connections keep net's reads and writes.
func Wrap(c net.Conn) net.Conn { return c }
