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

// CallsPerNode is how many reserve calls a store has in flight at most for
// each Redis node.
const CallsPerNode = callsPerNode
