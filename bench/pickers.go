package bench

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// cyclePicker sends users round robin at the items on sale, again and
// again: after a user's first buy, the next ones are duplicates or sold out,
// as for real shoppers hammering the button. With fresh set, each user is
// sent once and the picker then runs dry.
type cyclePicker struct {
	seq   atomic.Int64
	toks  *tokens
	items []int // item indexes on sale
	fresh bool
}

func (p *cyclePicker) next(_ <-chan struct{}, s *shot) bool {
	k := p.seq.Add(1) - 1
	n, m := int64(p.toks.len()), int64(len(p.items))
	if p.fresh && k >= n*m {
		return false
	}
	u := int((k / m) % n)
	*s = shot{item: p.items[k%m], user: u, id: p.toks.user(u), tok: p.toks.value(u), kind: kindBuy}
	return true
}

func (p *cyclePicker) settle(*shot, code) time.Duration { return 0 }

func (p *cyclePicker) why() string { return "users exhausted" }

// fairPicker gives every user one buy, and sends again those answered
// "nothing happened" (429, 503, transport errors) until each has a final
// answer; it runs dry once all have one.
type fairPicker struct {
	toks    *tokens
	item    int
	seq     atomic.Int64
	settled atomic.Int64
	retry   chan int // users to send again; room for all, so never full
	done    chan struct{}
	once    sync.Once
}

func newFairPicker(toks *tokens, item int) *fairPicker {
	return &fairPicker{toks: toks, item: item, retry: make(chan int, toks.len()), done: make(chan struct{})}
}

func (p *fairPicker) next(stop <-chan struct{}, s *shot) bool {
	var u int
	select {
	case u = <-p.retry:
	default:
		if k := p.seq.Add(1) - 1; k < int64(p.toks.len()) {
			u = int(k)
			break
		}
		// Everyone has been sent once: wait for a retry or the end.
		select {
		case u = <-p.retry:
		case <-p.done:
			return false
		case <-stop:
			return false
		}
	}
	*s = shot{item: p.item, user: u, id: p.toks.user(u), tok: p.toks.value(u), kind: kindBuy}
	return true
}

func (p *fairPicker) settle(s *shot, c code) time.Duration {
	if retryable(c) {
		p.retry <- s.user
		if c == codeRateLimited {
			return 100 * time.Millisecond
		}
		return 10 * time.Millisecond
	}
	if p.settled.Add(1) == int64(p.toks.len()) {
		p.once.Do(func() { close(p.done) })
	}
	return 0
}

func (p *fairPicker) why() string { return "every user answered" }

// unanswered returns how many users have no final answer yet.
func (p *fairPicker) unanswered() int64 { return int64(p.toks.len()) - p.settled.Load() }

// mixedPicker mixes, out of every 20 requests, one with a bad token, one
// for an upcoming item, one for an ended item, one for an unknown item and
// one from a small set of users who buy the same item over and over; the
// rest are buys cycling over the items on sale.
type mixedPicker struct {
	seq, buys atomic.Int64
	toks      *tokens
	bad       [][]byte
	active    []int
	upcoming  int // item index, -1 for none
	ended     int
	unknown   int
}

func (p *mixedPicker) next(_ <-chan struct{}, s *shot) bool {
	k := p.seq.Add(1) - 1
	n := int64(p.toks.len())
	u := int(k % n)
	slot := k % 20
	switch {
	case slot == 0:
		*s = shot{item: p.active[0], user: -1, tok: p.bad[(k/20)%int64(len(p.bad))], kind: kindBadToken}
		return true
	case slot == 1 && p.upcoming >= 0:
		*s = shot{item: p.upcoming, kind: kindUpcoming}
	case slot == 2 && p.ended >= 0:
		*s = shot{item: p.ended, kind: kindEnded}
	case slot == 3:
		*s = shot{item: p.unknown, kind: kindUnknown}
	case slot == 4:
		u = int((k / 20) % min(n, 100))
		*s = shot{item: p.active[0], kind: kindRepeat}
	default:
		j := p.buys.Add(1) - 1
		m := int64(len(p.active))
		u = int((j / m) % n)
		*s = shot{item: p.active[j%m], kind: kindBuy}
	}
	s.user, s.id, s.tok = u, p.toks.user(u), p.toks.value(u)
	return true
}

func (p *mixedPicker) settle(*shot, code) time.Duration { return 0 }

func (p *mixedPicker) why() string { return "done" }

// itemPath is the buy path of an item.
func itemPath(id int64) string { return "/api/v1/seckill/" + strconv.FormatInt(id, 10) }
