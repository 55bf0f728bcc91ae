package redis

import (
	"strconv"
	"sync"
	"testing"
)

// Readers index the slice of shard keys they got under the read lock after
// releasing it, so filling a shard must never write a slice already handed
// out. Under -race this failed when the slice was filled in place.
func TestKeysOfConcurrentFill(t *testing.T) {
	s := &Store{prefix: "fgrace"}
	const shards = 64
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < shards; i++ {
				shard := (i*7 + g*13) % shards
				k := s.keysOf(42, shard)
				want := "fgrace:{i42:" + strconv.Itoa(shard) + "}:stock"
				if k.stock != want {
					t.Errorf("shard %d: stock key %q, want %q", shard, k.stock, want)
				}
			}
		}(g)
	}
	wg.Wait()
	for i := 0; i < shards; i++ {
		if s.keysOf(42, i) != s.keysOf(42, i) {
			t.Fatalf("shard %d: keys built again after the cache was filled", i)
		}
	}
}
