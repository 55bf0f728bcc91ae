// Package rawnet reads and writes TCP connections without telling Go's
// scheduler about each system call.
//
// A read or write through net enters the runtime's system-call state
// (entersyscall). On a socket, which net keeps non-blocking, the call never
// waits, but the state costs a process that answers many small requests on
// a small machine:
//   - each entry wakes the runtime's monitor thread (sysmon) when it slept
//     because every processor was idle, and sends it back to looking every
//     20 µs, each look a sleep and a wake of its own thread;
//   - a call that outlasts one such look (a loopback write, which delivers
//     to its reader and wakes it, can) has its processor handed to another
//     thread, which must be woken for it.
//
// A Conn makes the same read and write system calls with syscall.RawSyscall
// inside its connection's RawConn, so that waiting for the socket, deadlines
// and closing work exactly as in net. The monitor sleeps only when no system
// call of the process enters that state, so every busy connection of a
// process goes through here: the shoppers' (gateway), Redis's, Kafka's
// (clients and the embedded broker) and MySQL's. Under TLS, the TLS client
// or server is layered over a wrapped connection. On flashgate's 2-core
// machine this took the `dev` process's context switches a buy down by
// 40 % (docs/performance.md, "Reads and writes that leave the runtime's
// monitor asleep").
//
// One difference shows under the race detector only: net's reads and writes
// tell it that what one goroutine wrote to a socket happens before another
// goroutine of the same process reads it from the other end, and these do
// not. A test that orders its goroutines' memory only through a connection
// to itself would then be reported as racy; flashgate's tests order theirs
// otherwise (go test -race ./... passes).
//
// Elsewhere than Linux, Wrap returns the connection as it is.
package rawnet

import (
	"context"
	"net"
)

// DialContext dials address with a zero net.Dialer (its timeout the
// context's) and wraps the connection: the dial function kafka-go and the
// MySQL driver take.
func DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return Dial(ctx, &net.Dialer{}, network, address)
}

// Dial dials address with d and wraps the connection.
func Dial(ctx context.Context, d *net.Dialer, network, address string) (net.Conn, error) {
	c, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return Wrap(c), nil
}

// Listener wraps the connections its Listener accepts.
type Listener struct{ net.Listener }

func (l Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return Wrap(c), nil
}
