package bench

import (
	"runtime"
	"sync"
	"time"

	"github.com/flashgate/flashgate/internal/auth"
)

// tokens holds ready-made Authorization header values ("Bearer <jwt>") for
// users base, base+1, … in one byte arena: no pointers for the garbage
// collector to chase while the load runs, and nothing left to build in the
// request loop.
type tokens struct {
	base  int64
	arena []byte
	off   []uint32 // value i is arena[off[i]:off[i+1]]
}

// mintTokens signs n tokens for users base… on every core.
func mintTokens(signer *auth.Signer, base int64, n int, exp time.Time) *tokens {
	workers := min(runtime.GOMAXPROCS(0), max(1, n/1000))
	parts := make([][]byte, workers)
	lens := make([][]uint32, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := n*w/workers, n*(w+1)/workers
		wg.Go(func() {
			var buf []byte
			ls := make([]uint32, 0, hi-lo)
			for i := lo; i < hi; i++ {
				before := len(buf)
				buf = append(buf, "Bearer "...)
				buf = append(buf, signer.Mint(base+int64(i), exp)...)
				ls = append(ls, uint32(len(buf)-before))
			}
			parts[w], lens[w] = buf, ls
		})
	}
	wg.Wait()

	size := 0
	for _, p := range parts {
		size += len(p)
	}
	t := &tokens{base: base, arena: make([]byte, 0, size), off: make([]uint32, 1, n+1)}
	for w, p := range parts {
		t.arena = append(t.arena, p...)
		for _, l := range lens[w] {
			t.off = append(t.off, t.off[len(t.off)-1]+l)
		}
	}
	return t
}

// len returns how many tokens t holds.
func (t *tokens) len() int { return len(t.off) - 1 }

// value returns the header value of the i-th user.
func (t *tokens) value(i int) []byte { return t.arena[t.off[i]:t.off[i+1]] }

// user returns the id of the i-th user.
func (t *tokens) user(i int) int64 { return t.base + int64(i) }

// badTokens returns Authorization values the gateway must answer 401:
// missing, malformed, signed with another key, expired, another algorithm.
func badTokens(user int64) [][]byte {
	other := auth.NewSigner([]byte("not-the-flashgate-secret-at-all-0123456789"))
	return [][]byte{
		nil, // no Authorization header at all
		[]byte("Bearer not-a-token"),
		[]byte("Bearer " + other.Mint(user, time.Now().Add(time.Hour))),
		[]byte("Basic dXNlcjpwYXNz"),
		// alg "none" with the claims of a valid-looking user.
		[]byte("Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiIxIiwiZXhwIjo0MTAyNDQ0ODAwfQ."),
	}
}

// expiredToken returns a correctly signed token that expired an hour ago.
func expiredToken(signer *auth.Signer, user int64) []byte {
	return []byte("Bearer " + signer.Mint(user, time.Now().Add(-time.Hour)))
}
