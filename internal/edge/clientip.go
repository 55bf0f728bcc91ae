package edge

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"unsafe"
)

// maxHopLen is the longest textual address accepted in X-Forwarded-For:
// an IPv6 address with an embedded IPv4 suffix, in brackets, with a port.
const maxHopLen = len("[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535")

// IPResolver finds the client's address behind the reverse proxies the
// deployment trusts. A nil *IPResolver, like one with no trusted proxies,
// always answers the peer's own address.
type IPResolver struct {
	trusted []netip.Prefix
}

// NewIPResolver returns a resolver that trusts the proxies at the given
// addresses ("10.0.0.7", "::1") and networks ("10.0.0.0/8", "fd00::/8").
// An IPv4 proxy is written in IPv4 notation. The error names the first entry
// it cannot parse.
func NewIPResolver(trusted []string) (*IPResolver, error) {
	r := &IPResolver{trusted: make([]netip.Prefix, 0, len(trusted))}
	for _, entry := range trusted {
		s := strings.TrimSpace(entry)
		var p netip.Prefix
		if strings.Contains(s, "/") {
			var err error
			if p, err = netip.ParsePrefix(s); err != nil {
				return nil, fmt.Errorf("trusted proxy %q: %w", entry, err)
			}
			p = p.Masked()
		} else {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q: %w", entry, err)
			}
			a = canonAddr(a)
			p = netip.PrefixFrom(a, a.BitLen())
		}
		r.trusted = append(r.trusted, p)
	}
	return r, nil
}

// ClientIP returns the address of the client that sent a request: remote,
// the TCP peer, unless remote is a trusted proxy; then the X-Forwarded-For
// value xff is read from the right, each trusted hop is skipped, and the first
// untrusted address is the client. Addresses left of it were written by the
// client and are not believed. When an entry cannot be parsed (a name,
// "unknown", garbage) the walk stops and the last good hop is the answer, as
// is the leftmost hop when every hop is trusted. Entries may carry a port
// ("1.2.3.4:5678", "[2001:db8::1]:443"). When the request carries several
// X-Forwarded-For headers the caller joins them with commas, in order.
//
// The result is unmapped (IPv4 as IPv4) and has no zone. A fasthttp peer
// converts with netip.AddrFromSlice(ctx.RemoteIP()). ClientIP allocates
// nothing unless an entry looks like an address but is not one.
func (r *IPResolver) ClientIP(remote netip.Addr, xff []byte) netip.Addr {
	remote = canonAddr(remote)
	if r == nil || len(xff) == 0 || !r.isTrusted(remote) {
		return remote
	}
	hop := remote
	end := len(xff)
	for {
		comma := bytes.LastIndexByte(xff[:end], ',')
		addr, ok := parseHop(xff[comma+1 : end])
		if !ok {
			return hop
		}
		if !r.isTrusted(addr) {
			return addr
		}
		hop = addr
		if comma < 0 {
			return hop
		}
		end = comma
	}
}

// isTrusted reports whether addr is one of the trusted proxies. A linear
// scan: deployments trust a handful of networks.
func (r *IPResolver) isTrusted(addr netip.Addr) bool {
	for _, p := range r.trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// canonAddr drops what would make one host look like two: the IPv4-mapped
// IPv6 form and an IPv6 zone.
func canonAddr(a netip.Addr) netip.Addr {
	return a.Unmap().WithZone("")
}

// parseHop parses one X-Forwarded-For entry without allocating.
func parseHop(b []byte) (netip.Addr, bool) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || len(b) > maxHopLen {
		return netip.Addr{}, false
	}
	if b[0] == '[' { // [v6] or [v6]:port
		end := bytes.IndexByte(b, ']')
		if end < 0 || !isPortSuffix(b[end+1:]) {
			return netip.Addr{}, false
		}
		b = b[1:end]
	} else if i := bytes.IndexByte(b, ':'); i >= 0 && bytes.IndexByte(b[i+1:], ':') < 0 {
		// A single colon: IPv4 with a port. IPv6 has at least two.
		if !isPortSuffix(b[i:]) {
			return netip.Addr{}, false
		}
		b = b[:i]
	}
	if len(b) == 0 {
		return netip.Addr{}, false
	}
	for _, c := range b {
		if !isAddrByte(c) { // also rejects zones: '%' is not an address byte
			return netip.Addr{}, false
		}
	}
	// netip.ParseAddr takes a string and string(b) would be copied to the heap,
	// as ParseAddr's error keeps its input. The string does not outlive this
	// call: a parsed Addr holds no reference to its text, and the error that
	// does is dropped here.
	a, err := netip.ParseAddr(unsafe.String(&b[0], len(b)))
	if err != nil {
		return netip.Addr{}, false
	}
	return canonAddr(a), true
}

// isPortSuffix reports whether b is empty or a colon and one to five digits.
func isPortSuffix(b []byte) bool {
	if len(b) == 0 {
		return true
	}
	if b[0] != ':' || len(b) < 2 || len(b) > 6 {
		return false
	}
	for _, c := range b[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// isAddrByte reports whether c can appear in a textual IPv4 or IPv6 address.
func isAddrByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == '.' || c == ':'
}
