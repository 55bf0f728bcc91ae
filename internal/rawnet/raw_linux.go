package rawnet

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// Conn is a TCP connection whose Read and Write make raw system calls. Its
// other methods are the *net.TCPConn's. As a net.Conn it is safe for
// concurrent use.
type Conn struct {
	*net.TCPConn
	rc syscall.RawConn

	rmu  sync.Mutex // one Read at a time: the fields below are its
	rbuf []byte
	rn   int
	rerr error
	rfn  func(fd uintptr) bool // readFn, bound once

	wmu  sync.Mutex // one Write at a time
	wbuf []byte
	wn   int
	werr error
	wfn  func(fd uintptr) bool // writeFn, bound once
}

// Wrap returns c as a *Conn when it is a *net.TCPConn, and c otherwise.
func Wrap(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	r := &Conn{TCPConn: tc, rc: rc}
	r.rfn, r.wfn = r.readFn, r.writeFn
	return r
}

func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rmu.Lock()
	c.rbuf, c.rn, c.rerr = p, 0, nil
	err := c.rc.Read(c.rfn)
	n, rerr := c.rn, c.rerr
	c.rbuf = nil
	c.rmu.Unlock()
	if err == nil {
		err = rerr
	}
	if err != nil {
		return n, c.opError("read", err)
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// readFn is the RawConn's read function: false asks to be called again
// once the socket is readable.
func (c *Conn) readFn(fd uintptr) bool {
	for {
		n, e := raw(syscall.SYS_READ, fd, c.rbuf)
		switch e {
		case 0:
			c.rn = n
			return true
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			c.rerr = os.NewSyscallError("read", e)
			return true
		}
	}
}

func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	c.wbuf, c.wn, c.werr = p, 0, nil
	err := c.rc.Write(c.wfn)
	n, werr := c.wn, c.werr
	c.wbuf = nil
	c.wmu.Unlock()
	if err == nil {
		err = werr
	}
	if err != nil {
		return n, c.opError("write", err)
	}
	return n, nil
}

// writeFn is the RawConn's write function: it writes until everything is
// written, or asks (false) to be called again once the socket is writable.
func (c *Conn) writeFn(fd uintptr) bool {
	for c.wn < len(c.wbuf) {
		n, e := raw(syscall.SYS_WRITE, fd, c.wbuf[c.wn:])
		switch e {
		case 0:
			c.wn += n
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			c.werr = os.NewSyscallError("write", e)
			return true
		}
	}
	return true
}

// opError is err as net reports a read or write error. The RawConn reports
// its own (a deadline, a closed connection) as a *net.OpError of its own
// whose Err is what net's Read and Write would have wrapped.
func (c *Conn) opError(op string, err error) error {
	if oe, ok := err.(*net.OpError); ok {
		err = oe.Err
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// ReadFD reads fd into b with one raw read(2), for the read function of a
// RawConn: syscall.EAGAIN when the socket has nothing yet.
func ReadFD(fd uintptr, b []byte) (int, error) {
	n, e := raw(syscall.SYS_READ, fd, b)
	if e != 0 {
		return 0, e
	}
	return n, nil
}

// raw makes a read or write system call on fd without entering the
// runtime's system-call state. It is only for non-blocking sockets: such a
// call returns at once with what the socket's buffers allow, so holding the
// processor meanwhile costs nothing another thread could have used.
func raw(trap, fd uintptr, b []byte) (int, syscall.Errno) {
	if len(b) == 0 {
		return 0, 0
	}
	n, _, e := syscall.RawSyscall(trap, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}
