//go:build race

package gateway_test

// The race detector makes sync.Pool drop items, so allocation counts differ.
const raceEnabled = true
