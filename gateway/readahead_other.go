//go:build !unix

package gateway

import "net"

// readAheadListener reads ahead on unix only (readahead.go); elsewhere it
// is the listener itself.
type readAheadListener struct {
	net.Listener
}
