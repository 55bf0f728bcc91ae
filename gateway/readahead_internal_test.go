//go:build unix

package gateway

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// acceptPair returns a readAheadConn accepted on loopback and the client
// end of its connection; both are closed when the test ends.
func acceptPair(t testing.TB) (*readAheadConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	c, err := readAheadListener{ln}.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ra, ok := c.(*readAheadConn)
	if !ok {
		t.Fatalf("accepted a %T", c)
	}
	return ra, client.(*net.TCPConn)
}

// TestReadAheadConn: through a readAheadConn the stream reads back byte for
// byte whatever the sizes of the reads (one byte, then a large read, as
// fasthttp does; small reads across what was read ahead), a deadline still
// fails a read as a timeout, and the end of the stream is io.EOF.
func TestReadAheadConn(t *testing.T) {
	c, client := acceptPair(t)

	// Nothing to read yet: the deadline fails the read as net does.
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v", err)
	}
	c.SetReadDeadline(time.Time{})

	want := make([]byte, 3*readAheadSize+17)
	for i := range want {
		want[i] = byte(i * 7)
	}
	go func() {
		client.Write(want)
		client.CloseWrite()
	}()
	var got []byte
	for _, size := range []int{1, 8191, 1, 3, 100, 1 << 16} {
		buf := make([]byte, size)
		n, err := io.ReadAtLeast(c, buf, 1)
		if err != nil {
			t.Fatalf("read of %d: %v", size, err)
		}
		got = append(got, buf[:n]...)
	}
	rest, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, rest...)
	if !bytes.Equal(got, want) {
		t.Fatalf("read back %d bytes, not the %d written", len(got), len(want))
	}
	if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("after the end: %d %v", n, err)
	}
}

// TestReadAheadConnWriteTo: io.Copy from a readAheadConn (which uses its
// WriteTo) yields the bytes read ahead before the rest of the stream.
func TestReadAheadConnWriteTo(t *testing.T) {
	c, client := acceptPair(t)
	want := []byte("GET / HTTP/1.1\r\n\r\nand what follows the request")
	if _, err := client.Write(want); err != nil {
		t.Fatal(err)
	}
	client.CloseWrite()
	first := make([]byte, 1) // fasthttp's one-byte read: the rest is read ahead
	if _, err := io.ReadFull(c, first); err != nil {
		t.Fatal(err)
	}
	var rest bytes.Buffer
	if _, err := io.Copy(&rest, c); err != nil {
		t.Fatal(err)
	}
	if got := append(first, rest.Bytes()...); !bytes.Equal(got, want) {
		t.Fatalf("read back %q, want %q", got, want)
	}
}

// timedOut runs op and checks that it fails as a timeout, not before
// notBefore has passed (and not much after: within limit).
func timedOut(t *testing.T, what string, notBefore time.Time, limit time.Duration, op func() error) {
	t.Helper()
	start := time.Now()
	err := op()
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%s: %v, want a timeout", what, err)
	}
	if now := time.Now(); now.Before(notBefore) {
		t.Fatalf("%s: timed out %v before the deadline asked for", what, notBefore.Sub(now))
	}
	if d := time.Since(start); d > limit {
		t.Fatalf("%s: timed out after %v, the deadline asked for was within %v", what, d, limit)
	}
}

// TestReadAheadConnDeadlines: the socket's deadlines move lazily, but a
// read or a write times out exactly when the last deadline asked for says:
// not at an earlier one that was moved later, at once when one is moved
// earlier, never once cleared.
func TestReadAheadConnDeadlines(t *testing.T) {
	t.Run("read, moved later", func(t *testing.T) {
		c, _ := acceptPair(t)
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		later := time.Now().Add(300 * time.Millisecond)
		c.SetReadDeadline(later)
		timedOut(t, "read", later, 5*time.Second, func() error { _, err := c.Read(make([]byte, 1)); return err })
		// A timeout that was asked for stays: the next read fails at once.
		timedOut(t, "read again", later, time.Second, func() error { _, err := c.Read(make([]byte, 1)); return err })
	})
	t.Run("read, moved earlier", func(t *testing.T) {
		c, _ := acceptPair(t)
		c.SetReadDeadline(time.Now().Add(time.Minute))
		soon := time.Now().Add(50 * time.Millisecond)
		c.SetReadDeadline(soon)
		timedOut(t, "read", soon, 5*time.Second, func() error { _, err := c.Read(make([]byte, 1)); return err })
	})
	t.Run("read, large, moved later", func(t *testing.T) {
		c, _ := acceptPair(t)
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		later := time.Now().Add(300 * time.Millisecond)
		c.SetReadDeadline(later)
		timedOut(t, "read", later, 5*time.Second, func() error { _, err := c.Read(make([]byte, 2*readAheadSize)); return err })
	})
	t.Run("read, cleared", func(t *testing.T) {
		c, client := acceptPair(t)
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		c.SetReadDeadline(time.Time{})
		go func() {
			time.Sleep(300 * time.Millisecond)
			client.Write([]byte("x"))
		}()
		b := make([]byte, 1)
		if _, err := c.Read(b); err != nil || b[0] != 'x' {
			t.Fatalf("read with no deadline: %q %v", b, err)
		}
	})
	t.Run("read after a request, idle", func(t *testing.T) {
		// fasthttp's order: the read timeout for a request, then the idle
		// timeout while it waits for the next one, which comes late.
		c, client := acceptPair(t)
		client.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := io.ReadFull(c, make([]byte, 18)); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(time.Minute))
		go func() {
			time.Sleep(500 * time.Millisecond) // past the read deadline
			client.Write([]byte("y"))
		}()
		b := make([]byte, 1)
		if _, err := c.Read(b); err != nil || b[0] != 'y' {
			t.Fatalf("read within the idle deadline: %q %v", b, err)
		}
	})
	t.Run("write, moved later", func(t *testing.T) {
		c, _ := acceptPair(t) // the client never reads: writes fill the buffers
		c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		later := time.Now().Add(300 * time.Millisecond)
		c.SetWriteDeadline(later)
		big := make([]byte, 64<<20)
		var n int
		timedOut(t, "write", later, 5*time.Second, func() error {
			var err error
			n, err = c.Write(big)
			return err
		})
		if n == 0 || n == len(big) {
			t.Fatalf("wrote %d of %d bytes before the timeout", n, len(big))
		}
	})
	t.Run("write, moved earlier", func(t *testing.T) {
		c, _ := acceptPair(t)
		c.SetWriteDeadline(time.Now().Add(time.Minute))
		soon := time.Now().Add(50 * time.Millisecond)
		c.SetWriteDeadline(soon)
		timedOut(t, "write", soon, 5*time.Second, func() error { _, err := c.Write(make([]byte, 64<<20)); return err })
	})
	t.Run("handed over", func(t *testing.T) {
		// After SetDeadline (fasthttp's hijack), a WebSocket's goroutines
		// set deadlines concurrently, and one stops the other's read.
		c, client := acceptPair(t)
		c.SetReadDeadline(time.Now().Add(time.Minute))
		c.SetDeadline(time.Time{})
		ready, read := make(chan struct{}), make(chan error)
		go func() {
			c.SetReadDeadline(time.Now().Add(time.Minute))
			close(ready)
			_, err := c.Read(make([]byte, 1))
			read <- err
		}()
		go io.Copy(io.Discard, client)
		<-ready // the reader's own deadline is set: ours below comes after it
		for range 100 {
			c.SetWriteDeadline(time.Now().Add(time.Minute))
			if _, err := c.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
		}
		stop := time.Now()
		c.SetReadDeadline(stop)
		timedOut(t, "read stopped by another goroutine", stop, 5*time.Second, func() error { return <-read })
	})
}

// BenchmarkRequestDeadlines: the deadlines fasthttp sets for each request
// of a keep-alive connection (idle, read, write), on the socket itself
// against on a readAheadConn.
func BenchmarkRequestDeadlines(b *testing.B) {
	c, _ := acceptPair(b)
	perRequest := func(b *testing.B, c net.Conn) {
		for b.Loop() {
			c.SetReadDeadline(time.Now().Add(60 * time.Second))
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		}
	}
	b.Run("socket", func(b *testing.B) { perRequest(b, c.TCPConn) })
	b.Run("readAheadConn", func(b *testing.B) { perRequest(b, c) })
}
