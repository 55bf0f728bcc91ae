package redis

import (
	"net"
	"time"
)

func netDialer() net.Dialer {
	return net.Dialer{Timeout: 3 * time.Second, KeepAlive: time.Minute}
}
