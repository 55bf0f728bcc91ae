package redis

// MaxBatch is maxBatch, for the tests of coalescing.
const MaxBatch = maxBatch

// QueuedBuyers returns how many buys of a shard wait for a reserve call.
func (s *Store) QueuedBuyers(item int64, shard int) int {
	q := &s.keysOf(item, shard).queue
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.waiting)
}

// MaxCallsInFlight is how many reserve calls a store has in flight at most
// on a Redis of one primary.
const MaxCallsInFlight = maxCallsInFlight
