package redis

import (
	"context"
	"crypto/tls"
	"net"
	"time"

	"github.com/flashgate/flashgate/internal/rawnet"
)

func netDialer() net.Dialer {
	return net.Dialer{Timeout: 3 * time.Second, KeepAlive: time.Minute}
}

// dial connects to a Redis node with a connection whose reads and writes
// leave the runtime's monitor thread asleep (internal/rawnet), under TLS
// when cfg is set, as rueidis's own dial would (the server name from dst
// unless cfg names one; d's timeout bounds the handshake too).
func dial(ctx context.Context, dst string, d *net.Dialer, cfg *tls.Config) (net.Conn, error) {
	if cfg != nil && d.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.Timeout)
		defer cancel()
	}
	c, err := rawnet.Dial(ctx, d, "tcp", dst)
	if err != nil || cfg == nil {
		return c, err
	}
	if cfg.ServerName == "" {
		host, _, _ := net.SplitHostPort(dst)
		cfg = cfg.Clone()
		cfg.ServerName = host
	}
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return tc, nil
}
