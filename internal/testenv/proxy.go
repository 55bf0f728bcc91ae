package testenv

import (
	"net"
	"sync"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// Proxy is a TCP proxy in front of a real service, for fault tests: Cut
// drops every connection and refuses new ones until Restore; Freeze holds
// every byte in both directions (a hung server) until Thaw; Mute forwards
// requests but drops the replies (a server that acts and then is not heard
// from) until Unmute.
type Proxy struct {
	target string
	ln     net.Listener
	mu     sync.Mutex
	cond   *sync.Cond // signalled when frozen or cut change
	cut    bool
	frozen bool
	muted  bool
	conns  map[net.Conn]bool
	wg     sync.WaitGroup
}

// NewProxy starts a proxy to target on a free loopback port; it stops when
// the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{target: target, ln: ln, conns: map[net.Conn]bool{}}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.Cut()
		p.wg.Wait()
	})
	return p
}

// Addr is the proxy's address.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut closes every connection and refuses new ones.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
	}
	p.cond.Broadcast()
}

// Freeze holds every byte in both directions until Thaw: connections stay
// open and nothing moves, as with a hung server.
func (p *Proxy) Freeze() {
	p.mu.Lock()
	p.frozen = true
	p.mu.Unlock()
}

// Thaw lets the bytes held by Freeze go on.
func (p *Proxy) Thaw() {
	p.mu.Lock()
	p.frozen = false
	p.cond.Broadcast()
	p.mu.Unlock()
}

// Mute forwards what clients send but drops what the server answers, until
// Unmute. A connection that lost replies is out of step: Cut it before
// Unmute, as the network that loses bytes loses the connection.
func (p *Proxy) Mute() {
	p.mu.Lock()
	p.muted = true
	p.mu.Unlock()
}

// Unmute forwards the server's answers again.
func (p *Proxy) Unmute() {
	p.mu.Lock()
	p.muted = false
	p.mu.Unlock()
}

// Restore lets connections through again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c], p.conns[up] = true, true
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(up, c, false)
		go p.pipe(c, up, true)
	}
}

// pipe copies src to dst; reply is true for the server-to-client direction.
func (p *Proxy) pipe(dst, src net.Conn, reply bool) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			for p.frozen && !p.cut {
				p.cond.Wait()
			}
			drop, cut := reply && p.muted, p.cut
			p.mu.Unlock()
			if cut {
				break
			}
			if !drop {
				if _, err := dst.Write(buf[:n]); err != nil {
					break
				}
			}
		}
		if err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// MySQLProxy starts a proxy in front of the machine's MySQL
// (MySQLServerDSN), for tests that cut or hang the database.
func MySQLProxy(t testing.TB) *Proxy {
	t.Helper()
	server, err := mysql.ParseDSN(MySQLServerDSN())
	if err != nil {
		t.Fatal(err)
	}
	return NewProxy(t, server.Addr)
}

// DSN is dsn through the proxy: the same user, database and parameters,
// the proxy's address.
func (p *Proxy) DSN(t testing.TB, dsn string) string {
	t.Helper()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Addr = p.Addr()
	return cfg.FormatDSN()
}
