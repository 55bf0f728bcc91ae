// Package flashgate holds the domain of the flash-sale gateway: activities,
// items, orders, reservations and the error codes of the external contract.
// Every other package imports it; it imports nothing of the project.
package flashgate

import (
	"bytes"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"time"
)

// Activity is a sale window holding one or more items.
type Activity struct {
	ID          int64
	Name        string
	StartAt     time.Time
	EndAt       time.Time
	PublishedAt *time.Time
	// PublishAt is when a scheduled activity is to be published.
	PublishAt *time.Time
	// ArchivedAt is when the activity's Redis state was removed.
	ArchivedAt *time.Time
	Items      []Item
}

// Item is one product on sale in an activity. Its stock is split across
// Shards Redis shards when the activity is published.
type Item struct {
	ID          int64
	ActivityID  int64
	Name        string
	Price       Money
	Points      int64 // points price; the price in cents when not set
	Stock       int64
	Shards      int
	RequirePath bool
	// RequireCaptcha: the path token is handed out only against a solved
	// captcha (contract §12).
	RequireCaptcha bool
	StartAt        time.Time // the activity's window
	EndAt          time.Time
}

// ItemState is what a shopper sees of an item at a moment.
type ItemState string

// Item states of the contract.
const (
	StateUpcoming ItemState = "upcoming"
	StateActive   ItemState = "active"
	StateSoldOut  ItemState = "sold_out"
	StateEnded    ItemState = "ended"
)

// StateAt returns the item's state at now given whether its stock is gone.
func (it *Item) StateAt(now time.Time, soldOut bool) ItemState {
	switch {
	case !now.Before(it.EndAt):
		return StateEnded
	case now.Before(it.StartAt):
		return StateUpcoming
	case soldOut:
		return StateSoldOut
	}
	return StateActive
}

// NeedsPath reports whether a buy of the item needs the shopper's path
// token: when the item asks for one, and when it asks for a captcha, since
// the captcha guards the path and a buy that could skip the path would skip
// the captcha too.
func (it *Item) NeedsPath() bool { return it.RequirePath || it.RequireCaptcha }

// OrderStatus is the lifecycle of an order.
type OrderStatus string

// Order statuses. Pending is never stored: it is what a reservation whose row
// does not exist yet looks like to its owner.
const (
	OrderPending   OrderStatus = "pending"
	OrderUnpaid    OrderStatus = "unpaid"
	OrderPaid      OrderStatus = "paid"
	OrderCancelled OrderStatus = "cancelled"
	OrderRefunded  OrderStatus = "refunded"
)

// Order is a row of seckill_order, or a pending reservation.
type Order struct {
	ID        string
	ItemID    int64
	UserID    int64
	Amount    Money
	Status    OrderStatus
	CreatedAt time.Time
	PaidAt    *time.Time
}

// Money is an amount in cents. It prints and parses as a decimal string with
// two places, the contract's form ("19.90").
type Money int64

// String formats m with two decimal places.
func (m Money) String() string {
	return string(m.AppendText(nil))
}

// AppendText appends m's decimal form to b.
func (m Money) AppendText(b []byte) []byte {
	v := int64(m)
	if v < 0 {
		b = append(b, '-')
		v = -v
	}
	b = strconv.AppendInt(b, v/100, 10)
	b = append(b, '.', byte('0'+v%100/10), byte('0'+v%10))
	return b
}

// MarshalJSON writes m as a JSON string.
func (m Money) MarshalJSON() ([]byte, error) {
	b := append([]byte{'"'}, m.AppendText(nil)...)
	return append(b, '"'), nil
}

// ErrMoney is returned by ParseMoney for anything but a non-negative decimal
// with at most two places.
var ErrMoney = errors.New(`must be a decimal with at most two places, like "19.90"`)

// MaxMoney bounds prices to what DECIMAL(12,2) holds.
const MaxMoney Money = 9_999_999_999_99

// ParseMoney parses "19.9", "19.90" or "19" into cents.
func ParseMoney(s string) (Money, error) {
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || len(whole) > 10 || (hasDot && (frac == "" || len(frac) > 2)) {
		return 0, ErrMoney
	}
	var v int64
	for _, c := range whole {
		if c < '0' || c > '9' {
			return 0, ErrMoney
		}
		v = v*10 + int64(c-'0')
	}
	for i := 0; i < 2; i++ {
		v *= 10
		if i < len(frac) {
			c := frac[i]
			if c < '0' || c > '9' {
				return 0, ErrMoney
			}
			v += int64(c - '0')
		}
	}
	if Money(v) > MaxMoney {
		return 0, ErrMoney
	}
	return Money(v), nil
}

// Reservation is one unit taken from an item's stock in Redis for a user. It
// travels from the gateway's Lua script through the shard's outbox and Kafka
// to the worker, which turns it into an order row.
type Reservation struct {
	OrderID string
	ItemID  int64
	UserID  int64
	Amount  Money
	Shard   int
	At      time.Time // when the unit was taken, millisecond precision
}

// reservationVersion prefixes the wire form so that it can evolve.
const reservationVersion = "r1"

// AppendWire appends r's wire form, the Kafka message value and the outbox
// entry: "r1|order|item|user|cents|shard|unixms".
func (r *Reservation) AppendWire(b []byte) []byte {
	b = append(b, reservationVersion...)
	b = append(b, '|')
	b = append(b, r.OrderID...)
	b = append(b, '|')
	b = strconv.AppendInt(b, r.ItemID, 10)
	b = append(b, '|')
	b = strconv.AppendInt(b, r.UserID, 10)
	b = append(b, '|')
	b = strconv.AppendInt(b, int64(r.Amount), 10)
	b = append(b, '|')
	b = strconv.AppendInt(b, int64(r.Shard), 10)
	b = append(b, '|')
	b = strconv.AppendInt(b, r.At.UnixMilli(), 10)
	return b
}

// ParseReservation parses the wire form written by AppendWire.
func ParseReservation(b []byte) (Reservation, error) {
	var r Reservation
	f := strings.Split(string(b), "|")
	if len(f) != 7 || f[0] != reservationVersion || f[1] == "" {
		return r, fmt.Errorf("parse reservation %q: bad shape", b)
	}
	var n [5]int64
	for i, s := range f[2:] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 0 {
			return r, fmt.Errorf("parse reservation %q: field %d", b, i+2)
		}
		n[i] = v
	}
	r.OrderID = f[1]
	r.ItemID, r.UserID, r.Amount, r.Shard = n[0], n[1], Money(n[2]), int(n[3])
	r.At = time.UnixMilli(n[4]).UTC()
	if r.ItemID == 0 || r.UserID == 0 {
		return r, fmt.Errorf("parse reservation %q: zero id", b)
	}
	return r, nil
}

// An outbox entry holds the reservations that one reserve call took in a
// shard (lua/reserve.lua): its field is their order ids joined by spaces, its
// value their wire forms joined by newlines. The value is also the Kafka
// message that carries them, so that the worker that writes it writes all of
// them and then removes the entry with one HDEL of the field. An entry of one
// reservation is its order id and its wire form, as every entry was before
// 2026-11-30. Order ids hold neither spaces nor newlines (ours never do).

// ParseEntry parses an outbox entry's value, a Kafka message's: one wire form
// a line. A bad line fails the whole entry (EntryLines reads past it).
func ParseEntry(v []byte) ([]Reservation, error) {
	rs := make([]Reservation, 0, EntryLen(v))
	for r, err := range EntryLines(v) {
		if err != nil {
			return nil, err
		}
		rs = append(rs, r)
	}
	return rs, nil
}

// EntryLines parses an outbox entry's value line by line: each reservation,
// or the error of a line that is not one.
func EntryLines(v []byte) iter.Seq2[Reservation, error] {
	return func(yield func(Reservation, error) bool) {
		for line := range bytes.SplitSeq(v, []byte{'\n'}) {
			if !yield(ParseReservation(line)) {
				return
			}
		}
	}
}

// EntryLen returns how many reservations an outbox entry's value holds: its
// lines.
func EntryLen(v []byte) int { return 1 + bytes.Count(v, []byte{'\n'}) }

// EntryKey returns the Kafka key of an outbox entry's message, read from the
// order id of its first reservation: the id's process part, then its
// millisecond time in windows of 128 ms. The gateway and the relay key an
// entry alike, so that copies of it go to one partition. And the entries
// one process makes within a window share their key, so that a producer's
// write of them goes to one partition: kafka-go sends a write as one
// produce request a partition, and the embedded broker and the workers'
// readers pay for each (docs/performance.md, "One partition a window").
// An id that is not one of ours is its own key.
func EntryKey(firstOrderID string) []byte {
	ms, ok := OrderIDMilli(firstOrderID)
	if !ok {
		return []byte(firstOrderID)
	}
	key := make([]byte, 0, 24)
	key = append(key, firstOrderID[10:18]...) // 40 bits of process id
	key = append(key, '.')
	return strconv.AppendInt(key, ms>>entryWindowBits, 10)
}

// entryWindowBits sets EntryKey's window: 2^7 = 128 ms, several times the
// gateway producer's linger (20 ms), so that most of its writes fall within
// one window, and short enough that the partitions take turns many times a
// second.
const entryWindowBits = 7

// EntryField returns the outbox field of the entry that holds rs, in order.
func EntryField(rs []Reservation) string {
	if len(rs) == 1 {
		return rs[0].OrderID
	}
	ids := make([]string, len(rs))
	for i := range rs {
		ids[i] = rs[i].OrderID
	}
	return strings.Join(ids, " ")
}

// EntryIDs returns the order ids of an outbox field.
func EntryIDs(field string) []string { return strings.Split(field, " ") }

// EntryFirstID returns the first order id of an outbox field, which tells
// when the entry was made (its reservations were made within the moment
// its call waited: milliseconds apart).
func EntryFirstID(field string) string {
	first, _, _ := strings.Cut(field, " ")
	return first
}

// HomeShard returns the shard of an item with n shards that holds userID's
// stock share and duplicate mark. It must never change for a published item:
// the duplicate check relies on a user always landing on the same shard.
func HomeShard(userID int64, n int) int {
	// splitmix64 finaliser: sequential user ids spread evenly.
	x := uint64(userID)
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return int(x % uint64(n))
}
