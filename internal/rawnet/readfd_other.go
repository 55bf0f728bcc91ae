//go:build unix && !linux

package rawnet

import "syscall"

// ReadFD reads fd into b, for the read function of a RawConn:
// syscall.EAGAIN when the socket has nothing yet.
func ReadFD(fd uintptr, b []byte) (int, error) { return syscall.Read(int(fd), b) }
