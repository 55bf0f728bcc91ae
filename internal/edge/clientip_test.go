package edge_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/flashgate/flashgate/internal/edge"
)

func newResolver(t testing.TB, trusted ...string) *edge.IPResolver {
	t.Helper()
	r, err := edge.NewIPResolver(trusted)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestClientIP(t *testing.T) {
	r := newResolver(t, "10.0.0.0/8", "192.168.1.1", " fd00::/8 ")
	const proxy = "10.0.0.5"
	tests := []struct {
		name   string
		remote string
		xff    string
		want   string
	}{
		{"direct client, no header", "203.0.113.9", "", "203.0.113.9"},
		{"spoofed header from an untrusted peer", "203.0.113.9", "1.2.3.4", "203.0.113.9"},
		{"untrusted peer claiming a trusted hop", "203.0.113.9", "1.2.3.4, 10.0.0.1", "203.0.113.9"},
		{"trusted proxy, no header", proxy, "", proxy},
		{"trusted proxy", proxy, "198.51.100.7", "198.51.100.7"},
		{"client-written entries left of the client are ignored", proxy, "6.6.6.6, 198.51.100.7", "198.51.100.7"},
		{"chain of trusted proxies", proxy, "6.6.6.6, 198.51.100.7, 10.1.1.1, 192.168.1.1", "198.51.100.7"},
		{"every hop trusted: the leftmost", proxy, "10.9.9.9, 10.1.1.1", "10.9.9.9"},
		{"garbage", proxy, "garbage", proxy},
		{"unknown", proxy, "unknown", proxy},
		{"malformed hop stops the walk", proxy, "198.51.100.7, junk, 10.1.1.1", "10.1.1.1"},
		{"empty entry", proxy, "198.51.100.7,", proxy},
		{"only commas", proxy, ",,", proxy},
		{"blank header", proxy, "   ", proxy},
		{"address out of range", proxy, "1.2.3.256", proxy},
		{"zone is not accepted", proxy, "fe80::1%eth0", proxy},
		{"IPv4 with port", proxy, "198.51.100.7:5678", "198.51.100.7"},
		{"IPv6 in brackets with port", proxy, "[2001:db8::1]:443", "2001:db8::1"},
		{"IPv6 in brackets", proxy, "[2001:db8::1]", "2001:db8::1"},
		{"bad port", proxy, "198.51.100.7:http", proxy},
		{"unclosed bracket", proxy, "[2001:db8::1", proxy},
		{"IPv6", proxy, "2001:db8::1", "2001:db8::1"},
		{"IPv4-mapped hop is IPv4", proxy, "::ffff:198.51.100.7", "198.51.100.7"},
		{"IPv4-mapped trusted hop", proxy, "198.51.100.7, ::ffff:10.1.1.1", "198.51.100.7"},
		{"IPv4-mapped peer", "::ffff:10.0.0.5", "198.51.100.7", "198.51.100.7"},
		{"trusted IPv6 peer", "fd00::1", "198.51.100.7", "198.51.100.7"},
		{"spaces and tabs", proxy, " 6.6.6.6 ,\t198.51.100.7\t", "198.51.100.7"},
		{"too long", proxy, strings.Repeat("1", 100), proxy},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := r.ClientIP(netip.MustParseAddr(tc.remote), []byte(tc.xff))
			if got != netip.MustParseAddr(tc.want) {
				t.Errorf("ClientIP(%s, %q) = %s, want %s", tc.remote, tc.xff, got, tc.want)
			}
		})
	}
}

func TestClientIPWithoutTrustedProxies(t *testing.T) {
	remote := netip.MustParseAddr("203.0.113.9")
	for name, r := range map[string]*edge.IPResolver{
		"none trusted": newResolver(t),
		"nil":          nil,
	} {
		if got := r.ClientIP(remote, []byte("1.2.3.4")); got != remote {
			t.Errorf("%s: ClientIP = %s, want the peer %s", name, got, remote)
		}
	}
}

func TestNewIPResolverNamesBadEntry(t *testing.T) {
	for _, bad := range []string{"10.0.0.0/33", "not-an-ip", "", "10.0.0.1/8/8"} {
		_, err := edge.NewIPResolver([]string{"10.0.0.0/8", bad})
		if err == nil {
			t.Errorf("%q accepted", bad)
			continue
		}
		if !strings.Contains(err.Error(), `"`+bad+`"`) {
			t.Errorf("error %q does not name %q", err, bad)
		}
	}
}

func BenchmarkClientIP(b *testing.B) {
	r := newResolver(b, "10.0.0.0/8", "fd00::/8")
	proxy := netip.MustParseAddr("10.0.0.5")
	client := netip.MustParseAddr("203.0.113.9")
	for _, bc := range []struct {
		name   string
		remote netip.Addr
		xff    []byte
	}{
		{"direct", client, nil},
		{"spoofed", client, []byte("1.2.3.4")},
		{"proxied", proxy, []byte("6.6.6.6, 198.51.100.7, 10.1.1.1")},
		{"proxied-v6", proxy, []byte("2001:db8::1")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r.ClientIP(bc.remote, bc.xff)
			}
		})
	}
}
