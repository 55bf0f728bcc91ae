package flashgate

import (
	"crypto/rand"
	"encoding/binary"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// OrderIDs generates order ids: 26 characters of Crockford base32 holding a
// 48-bit millisecond timestamp, a 40-bit random process id and a 40-bit
// counter (so ids sort by time and two processes never collide unless they
// draw the same 40-bit id), then "-" and the item id, so that the owner of a
// pending order can find its reservation without any index.
type OrderIDs struct {
	node uint64
	seq  atomic.Uint64
}

// NewOrderIDs returns a generator with a fresh random process id.
func NewOrderIDs() *OrderIDs {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand: " + err.Error()) // never fails on Linux
	}
	g := &OrderIDs{node: binary.BigEndian.Uint64(b[:8]) & (1<<40 - 1)}
	g.seq.Store(binary.BigEndian.Uint64(b[8:]) & (1<<39 - 1))
	return g
}

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// Append appends a new id for itemID at time now to b.
func (g *OrderIDs) Append(b []byte, itemID int64, now time.Time) []byte {
	ms := uint64(now.UnixMilli()) & (1<<48 - 1)
	seq := g.seq.Add(1) & (1<<40 - 1)
	hi := ms<<16 | g.node>>24          // 64 bits: 48 time + 16 node
	lo := (g.node&(1<<24-1))<<40 | seq // 64 bits: 24 node + 40 seq
	// 128 bits as 26 base32 digits (the first holds 3 bits).
	var d [26]byte
	for i := 25; i >= 0; i-- {
		d[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	b = append(b, d[:]...)
	b = append(b, '-')
	return strconv.AppendInt(b, itemID, 10)
}

// OrderIDsBefore returns the shortest string that sorts after every order id
// created before t and at or before every id created at t or later: the 10
// characters of the id's time part (48 bits of milliseconds, the first
// character holding 3). An id's age is read from it without parsing: the
// outbox relay (internal/redis, Store.Stale) and the expiry sweep
// (internal/mysql) compare ids with it.
func OrderIDsBefore(t time.Time) string {
	ms := uint64(t.UnixMilli()) & (1<<48 - 1)
	var d [10]byte
	for i := 9; i >= 0; i-- {
		d[i] = crockford[ms&31]
		ms >>= 5
	}
	return string(d[:])
}

// OrderIDMilli returns the creation millisecond written into the first 10
// characters of one of our order ids (the part OrderIDsBefore returns), or
// false when id is not one of ours.
func OrderIDMilli(id string) (int64, bool) {
	if _, ok := OrderItem(id); !ok {
		return 0, false
	}
	var ms int64
	for i := 0; i < 10; i++ {
		d := strings.IndexByte(crockford, id[i])
		if d < 0 || i == 0 && d > 7 { // the first digit holds 3 bits
			return 0, false
		}
		ms = ms<<5 | int64(d)
	}
	return ms, true
}

// New returns a new id for itemID.
func (g *OrderIDs) New(itemID int64) string {
	return string(g.Append(make([]byte, 0, 48), itemID, time.Now()))
}

// OrderItem returns the item id written into an order id, or false when id
// is not one of ours.
func OrderItem(id string) (int64, bool) {
	if len(id) < 28 || len(id) > 64 || id[26] != '-' {
		return 0, false
	}
	for i := 0; i < 26; i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z') {
			return 0, false
		}
	}
	// A positive decimal as Append writes it: no sign, no leading zero.
	// (Checked here rather than by formatting v again, which allocated for
	// an item id of three digits or more on every reserve call's Kafka key:
	// EntryKey reads the id through OrderIDMilli.)
	if d := id[27]; d < '1' || d > '9' {
		return 0, false
	}
	v, err := strconv.ParseInt(id[27:], 10, 64)
	if err != nil {
		return 0, false
	}
	return v, true
}
