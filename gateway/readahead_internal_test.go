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

// TestReadAheadConn: through a readAheadConn the stream reads back byte for
// byte whatever the sizes of the reads (one byte, then a large read, as
// fasthttp does; small reads across what was read ahead), a deadline still
// fails a read as a timeout, and the end of the stream is io.EOF.
func TestReadAheadConn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ral := readAheadListener{ln}
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c, err := ral.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*readAheadConn); !ok {
		t.Fatalf("accepted a %T", c)
	}

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
		client.(*net.TCPConn).CloseWrite()
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c, err := readAheadListener{ln}.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want := []byte("GET / HTTP/1.1\r\n\r\nand what follows the request")
	if _, err := client.Write(want); err != nil {
		t.Fatal(err)
	}
	client.(*net.TCPConn).CloseWrite()
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
