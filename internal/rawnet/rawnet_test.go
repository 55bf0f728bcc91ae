package rawnet_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/flashgate/flashgate/internal/rawnet"
)

// pair returns a wrapped connection dialed over loopback and the accepted
// end, unwrapped; both are closed when the test ends.
func pair(t *testing.T) (net.Conn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := rawnet.Dial(context.Background(), &net.Dialer{}, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	p, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return c, p.(*net.TCPConn)
}

// TestStream: what one end writes the other reads byte for byte, both
// ways, through writes far larger than the socket's buffers (the write
// waits for the socket to drain) and reads of every size; the end of the
// stream reads as io.EOF.
func TestStream(t *testing.T) {
	c, peer := pair(t)
	// A lost or short write would leave a reader waiting: fail instead.
	c.SetDeadline(time.Now().Add(20 * time.Second))
	peer.SetDeadline(time.Now().Add(20 * time.Second))
	want := make([]byte, 16<<20+3)
	for i := range want {
		want[i] = byte(i*7 + i>>11)
	}

	var wg sync.WaitGroup
	wg.Add(2)
	var fromPeer []byte
	var peerErr error
	go func() { // the peer echoes nothing: it reads all, then writes all back
		defer wg.Done()
		fromPeer, peerErr = io.ReadAll(io.LimitReader(peer, int64(len(want))))
		if peerErr == nil {
			_, peerErr = peer.Write(fromPeer)
		}
		peer.CloseWrite()
	}()
	var n int
	var werr error
	go func() {
		defer wg.Done()
		n, werr = c.Write(want)
	}()
	got, rerr := readAllSizes(c)
	wg.Wait()
	if werr != nil || n != len(want) {
		t.Fatalf("write: %d of %d bytes, %v", n, len(want), werr)
	}
	if peerErr != nil || !bytes.Equal(fromPeer, want) {
		t.Fatalf("the peer read %d bytes (equal: %v), %v", len(fromPeer), bytes.Equal(fromPeer, want), peerErr)
	}
	if rerr != nil || !bytes.Equal(got, want) {
		t.Fatalf("read back %d of %d bytes (equal: %v), %v", len(got), len(want), bytes.Equal(got, want), rerr)
	}
	if m, err := c.Read(make([]byte, 8)); m != 0 || err != io.EOF {
		t.Fatalf("read at the end of the stream: %d, %v; want 0, io.EOF", m, err)
	}
	if m, err := c.Read(nil); m != 0 || err != nil {
		t.Fatalf("empty read: %d, %v", m, err)
	}
}

// readAllSizes reads c to its end with reads of 1, 2, 3, … 4096 bytes in
// turn.
func readAllSizes(c net.Conn) ([]byte, error) {
	var out []byte
	buf := make([]byte, 4096)
	for size := 1; ; size = size%4096 + 1 {
		n, err := c.Read(buf[:size])
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// TestDeadlines: a read with nothing to read and a write the peer never
// drains fail at their deadlines as net's do (a *net.OpError that is
// os.ErrDeadlineExceeded and a timeout), the write having written part.
func TestDeadlines(t *testing.T) {
	c, _ := pair(t)
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := c.Read(make([]byte, 1))
	wantTimeout(t, "read", err)

	// Made before the deadline is set: making 64 MiB under the race
	// detector on a loaded machine once took the whole 100 ms, and the
	// write then found its deadline passed before writing anything.
	big := make([]byte, 64<<20)
	c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	n, err := c.Write(big)
	wantTimeout(t, "write", err)
	if n == 0 || n == len(big) {
		t.Fatalf("wrote %d of %d bytes before the deadline", n, len(big))
	}
}

func wantTimeout(t *testing.T, op string, err error) {
	t.Helper()
	var oe *net.OpError
	var ne net.Error
	if !errors.As(err, &oe) || oe.Op != op || !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("%s past the deadline: %#v (%v); want a *net.OpError %q, os.ErrDeadlineExceeded, a timeout", op, err, err, op)
	}
	if _, nested := oe.Err.(*net.OpError); nested {
		t.Fatalf("%s: a *net.OpError in a *net.OpError: %v", op, err)
	}
}

// TestClosedAndReset: after Close, reads and writes fail with
// net.ErrClosed; writing to a peer that is gone fails with a system call
// error in net's form.
func TestClosedAndReset(t *testing.T) {
	c, peer := pair(t)
	peer.SetLinger(0) // its close resets the connection
	peer.Close()
	var err error
	for range 100 { // the reset arrives after a write or two
		if _, err = c.Write([]byte("ping")); err != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	var oe *net.OpError
	var se *os.SyscallError
	if !errors.As(err, &oe) || oe.Op != "write" || !errors.As(err, &se) {
		t.Fatalf("write to a reset connection: %#v (%v); want a *net.OpError holding an *os.SyscallError", err, err)
	}

	c.Close()
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
}

// TestConcurrent: with four goroutines writing and two reading at once,
// every byte written comes back once (run it with -race).
func TestConcurrent(t *testing.T) {
	c, peer := pair(t)
	go io.Copy(peer, peer) // echo
	const writers, each, size = 4, 200, 512
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := bytes.Repeat([]byte{byte('a' + w)}, size)
			for range each {
				if _, err := c.Write(msg); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	counts := make(map[byte]int)
	var mu sync.Mutex
	total := writers * each * size
	var read int
	c.SetReadDeadline(time.Now().Add(10 * time.Second)) // lost bytes fail the counts below
	var rwg sync.WaitGroup
	for range 2 {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			buf := make([]byte, 1000)
			for {
				mu.Lock()
				done := read >= total
				mu.Unlock()
				if done {
					return
				}
				n, err := c.Read(buf)
				mu.Lock()
				for _, b := range buf[:n] {
					counts[b]++
				}
				read += n
				if read >= total {
					c.SetReadDeadline(time.Now()) // the other reader waits: stop it
				}
				mu.Unlock()
				if err != nil {
					if !errors.Is(err, os.ErrDeadlineExceeded) {
						t.Error(err)
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	rwg.Wait()
	for w := range writers {
		if got := counts[byte('a'+w)]; got != each*size {
			t.Errorf("writer %d: %d bytes echoed, want %d", w, got, each*size)
		}
	}
}

// TestListener: accepted TCP connections are wrapped; what is not TCP is
// passed through.
func TestListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rl := rawnet.Listener{Listener: ln}
	defer rl.Close()
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			c.Write([]byte("hello"))
			c.Close()
		}
	}()
	c, err := rl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// On Linux the connection is wrapped; elsewhere it comes back as it was.
	if _, plain := c.(*net.TCPConn); plain == (runtime.GOOS == "linux") {
		t.Fatalf("accepted a %T on %s", c, runtime.GOOS)
	}
	if b, err := io.ReadAll(c); err != nil || string(b) != "hello" {
		t.Fatalf("read %q, %v", b, err)
	}

	p, q := net.Pipe()
	defer q.Close()
	if got := rawnet.Wrap(p); got != p {
		t.Fatalf("a pipe was wrapped: %T", got)
	}
}
