//go:build unix

package gateway

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/flashgate/flashgate/internal/rawnet"
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
	ra := &readAheadConn{TCPConn: tc, rc: rc, raw: rawnet.Wrap(tc)}
	ra.fill = ra.readInto
	return ra, nil
}

// readAheadConn is a TCP connection whose reads of less than readAheadSize
// read ahead, and whose deadlines move only when they must. It is used by
// one goroutine at a time (fasthttp's serveConn: read, handle, write), and
// its deadlines are set by that goroutine.
//
// Deadlines: fasthttp moves the read deadline twice a request (to the idle
// timeout while it waits for the next request, then to the read timeout)
// and the write deadline once, and each move rearms a runtime timer: 3 % of
// the gateway's CPU on the sold-out path. Here a deadline asked for is only
// recorded when it is later than the one on the socket, and put on the
// socket when it is earlier (or the socket has none). A socket deadline
// that fires before the one asked for is then moved to it and the read or
// write goes on, so every read and write fails exactly as late as asked:
// a busy keep-alive connection rearms its timers about once a read
// timeout, not three times a request.
//
// Its reads and writes are rawnet's: they leave the runtime's monitor
// thread asleep (internal/rawnet).
type readAheadConn struct {
	*net.TCPConn
	rc   syscall.RawConn
	raw  net.Conn              // the socket's reads and writes: rawnet's
	fill func(fd uintptr) bool // readInto, bound once
	buf  *[]byte               // the bytes read ahead, (*buf)[r:w]; nil when none
	r, w int
	err  error // of the last readInto

	rd, wd       deadline // asked for
	rdSet, wdSet deadline // on the socket: never later than asked
	direct       bool     // deadlines straight to the socket (SetDeadline)
}

// deadline is a connection deadline; the zero value is none.
type deadline = time.Time

func (c *readAheadConn) Read(p []byte) (int, error) {
	for {
		n, err := c.read(p)
		if err == nil || !c.rearm(err, &c.rd, &c.rdSet, c.TCPConn.SetReadDeadline) {
			return n, err
		}
	}
}

func (c *readAheadConn) read(p []byte) (int, error) {
	if c.buf == nil {
		if len(p) >= readAheadSize {
			return c.raw.Read(p)
		}
		if err := c.rc.Read(c.fill); err != nil || c.err != nil {
			// A deadline, a closed or broken connection: the plain read
			// reports it as net does.
			c.err = nil
			return c.raw.Read(p)
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
		n, err := rawnet.ReadFD(fd, *b)
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

func (c *readAheadConn) Write(p []byte) (int, error) {
	n, err := c.raw.Write(p)
	for err != nil && c.rearm(err, &c.wd, &c.wdSet, c.TCPConn.SetWriteDeadline) {
		var m int
		m, err = c.raw.Write(p[n:])
		n += m
	}
	return n, err
}

// ReadFrom (io.Copy to the connection, which may use sendfile) puts the
// write deadline asked for on the socket first: it writes around Write.
func (c *readAheadConn) ReadFrom(r io.Reader) (int64, error) {
	if !c.direct {
		if err := c.put(c.wd, &c.wdSet, c.TCPConn.SetWriteDeadline); err != nil {
			return 0, err
		}
	}
	return c.TCPConn.ReadFrom(r)
}

// SetDeadline is how fasthttp hands a connection over, just before a hijack
// (a WebSocket, whose reader and writer goroutines then set deadlines of
// their own, concurrently, and one of them may stop the other's read with
// one): from then on every deadline goes straight to the socket.
func (c *readAheadConn) SetDeadline(t time.Time) error {
	c.direct = true
	return c.TCPConn.SetDeadline(t)
}

func (c *readAheadConn) SetReadDeadline(t time.Time) error {
	if c.direct {
		return c.TCPConn.SetReadDeadline(t)
	}
	return c.ask(t, &c.rd, &c.rdSet, c.TCPConn.SetReadDeadline)
}

func (c *readAheadConn) SetWriteDeadline(t time.Time) error {
	if c.direct {
		return c.TCPConn.SetWriteDeadline(t)
	}
	return c.ask(t, &c.wd, &c.wdSet, c.TCPConn.SetWriteDeadline)
}

// ask records t as the deadline asked for, and puts it on the socket only
// when the socket's would come later (or the socket has none).
func (c *readAheadConn) ask(t time.Time, asked, set *deadline, apply func(time.Time) error) error {
	*asked = t
	if t.IsZero() || (!set.IsZero() && !t.Before(*set)) {
		return nil
	}
	return c.put(t, set, apply)
}

// put puts deadline t on the socket.
func (c *readAheadConn) put(t time.Time, set *deadline, apply func(time.Time) error) error {
	if t.Equal(*set) {
		return nil
	}
	if err := apply(t); err != nil {
		return err
	}
	*set = t
	return nil
}

// rearm reports whether err is the socket's deadline firing before the one
// asked for; then it has put the asked one on the socket, to try again.
func (c *readAheadConn) rearm(err error, asked, set *deadline, apply func(time.Time) error) bool {
	if c.direct || !errors.Is(err, os.ErrDeadlineExceeded) || set.Equal(*asked) {
		return false
	}
	if !asked.IsZero() && !time.Now().Before(*asked) {
		return false
	}
	return c.put(*asked, set, apply) == nil
}

// WriteTo copies what is read ahead, then the rest of the stream, to w. The
// embedded *net.TCPConn's WriteTo (which io.Copy prefers, and which may
// splice) would read the socket directly and skip the bytes read ahead.
func (c *readAheadConn) WriteTo(w io.Writer) (int64, error) {
	return io.Copy(w, struct{ io.Reader }{c})
}
