//go:build unix

package gateway

import (
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
)

// readAheadSize is how much a connection reads when fasthttp asks it for
// the first byte of a request: a buy's request is about 300 bytes, and a
// longer one gets the rest through fasthttp's own buffer.
const readAheadSize = 4 << 10

// readAheadListener hands out connections whose small reads read ahead.
//
// With ReduceMemoryUsage (which keeps an idle keep-alive connection from
// holding fasthttp's 8 KiB read and 4 KiB write buffers: 88 MB RSS at
// 10,000 connections instead of 197 MB), fasthttp waits for each request
// by reading its first byte alone, then reads the rest into a fresh
// buffer: two read system calls per request where one does (2.9 reads per
// sold-out answer against the bare handler's 2.0, counting the one that
// finds nothing yet). A readAheadConn answers that one-byte read by waiting
// until the socket is readable, holding no buffer meanwhile, then reading
// up to readAheadSize into a pooled buffer, and answers fasthttp's next
// read, which comes at once, from it: one read per request, and an idle
// connection still holds nothing.
type readAheadListener struct {
	net.Listener
}

// readAheadBufs are the buffers of the reads ahead, held by a connection
// only from the moment its socket had data until fasthttp took it.
var readAheadBufs = sync.Pool{New: func() any { b := make([]byte, readAheadSize); return &b }}

func (l readAheadListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	tc, ok := c.(*net.TCPConn)
	if !ok {
		// Only plain TCP: fasthttp recognises a TLS connection by its type.
		return c, err
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return tc, nil
	}
	ra := &readAheadConn{TCPConn: tc, rc: rc}
	ra.fill = ra.readInto
	return ra, nil
}

// readAheadConn is a TCP connection whose reads of less than readAheadSize
// read ahead. It is read by one goroutine at a time, as a net.Conn is.
type readAheadConn struct {
	*net.TCPConn
	rc   syscall.RawConn
	fill func(fd uintptr) bool // readInto, bound once
	buf  *[]byte               // the bytes read ahead, (*buf)[r:w]; nil when none
	r, w int
	err  error // of the last readInto
}

func (c *readAheadConn) Read(p []byte) (int, error) {
	if c.buf == nil {
		if len(p) >= readAheadSize {
			return c.TCPConn.Read(p)
		}
		if err := c.rc.Read(c.fill); err != nil || c.err != nil {
			// A deadline, a closed or broken connection: the plain read
			// reports it as net does.
			c.err = nil
			return c.TCPConn.Read(p)
		}
		if c.buf == nil {
			return 0, io.EOF
		}
	}
	n := copy(p, (*c.buf)[c.r:c.w])
	if c.r += n; c.r == c.w {
		readAheadBufs.Put(c.buf)
		c.buf = nil
	}
	return n, nil
}

// readInto is the RawConn read function: false asks to be called again
// once the socket is readable. A buffer is taken only when there is data.
func (c *readAheadConn) readInto(fd uintptr) bool {
	b := readAheadBufs.Get().(*[]byte)
	for {
		n, err := syscall.Read(int(fd), *b)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EAGAIN):
			readAheadBufs.Put(b)
			return false
		case err != nil:
			readAheadBufs.Put(b)
			c.err = err
		case n == 0:
			readAheadBufs.Put(b) // end of stream
		default:
			c.buf, c.r, c.w = b, 0, n
		}
		return true
	}
}

// WriteTo copies what is read ahead, then the rest of the stream, to w. The
// embedded *net.TCPConn's WriteTo (which io.Copy prefers, and which may
// splice) would read the socket directly and skip the bytes read ahead.
func (c *readAheadConn) WriteTo(w io.Writer) (int64, error) {
	return io.Copy(w, struct{ io.Reader }{c})
}
