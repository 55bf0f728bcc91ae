package gateway

import "testing"

// The counters of an item are indexed by codeIndex; the flush names them by
// allCodes: the two must agree.
func TestCodeIndexMatchesAllCodes(t *testing.T) {
	if len(allCodes) != numCodes {
		t.Fatalf("%d codes, numCodes %d", len(allCodes), numCodes)
	}
	for i, c := range allCodes {
		if got := codeIndex(c); got != i {
			t.Errorf("codeIndex(%s) = %d, want %d", c, got, i)
		}
	}
}
