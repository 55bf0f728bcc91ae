package admin

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/flashgate/flashgate"
	"github.com/flashgate/flashgate/internal/redis"
)

// The live view's one data endpoint (docs/pages.md):
//
//	GET /admin/v1/items/{id}/live[?seconds=60]
//
// It costs three reads whatever the fleet's size and the item's shards:
// every shard's remaining units in one pipelined Redis round trip, the
// fleet's answers per second by code in another (gateways count in memory
// and add their counts to Redis once a second), and the item's orders by
// status in one MySQL query (plus the item's row).

// liveCodes are the answer codes the live view always shows, with zeros.
var liveCodes = []flashgate.Code{flashgate.OK, flashgate.Duplicate, flashgate.SoldOut, flashgate.RateLimited, flashgate.Unavailable}

// Live is the answer of the live endpoint.
type Live struct {
	ItemID    int64           `json:"item_id"`
	Name      string          `json:"name"`
	Price     flashgate.Money `json:"price"`
	Stock     int64           `json:"stock"`
	StartAt   time.Time       `json:"start_at"`
	EndAt     time.Time       `json:"end_at"`
	At        time.Time       `json:"at"`
	Remaining int64           `json:"remaining"`
	Shards    []LiveShard     `json:"shards"`
	Answers   LiveAnswers     `json:"answers"`
	Orders    LiveOrders      `json:"orders"`
}

// LiveShard is one stock shard.
type LiveShard struct {
	Shard     int   `json:"shard"`
	Remaining int64 `json:"remaining"`
	// InTransfer counts units taken from this shard for another one and not
	// yet settled: still the item's, in neither shard's stock.
	InTransfer int64 `json:"in_transfer"`
}

// LiveAnswers are the buy answers of the whole fleet for each second from
// From to To (unix seconds, inclusive): Codes[code][i] is the count of
// second From+i.
type LiveAnswers struct {
	From  int64              `json:"from"`
	To    int64              `json:"to"`
	Codes map[string][]int64 `json:"codes"`
}

// LiveOrders counts the item's order rows by status.
type LiveOrders struct {
	Unpaid    int64 `json:"unpaid"`
	Paid      int64 `json:"paid"`
	Cancelled int64 `json:"cancelled"`
	Refunded  int64 `json:"refunded"`
}

func (s *Server) live(w http.ResponseWriter, r *http.Request) {
	id, ok := pathIDBody(w, r, nil)
	if !ok {
		return
	}
	seconds := int64(60)
	var err error
	if v := r.URL.Query().Get("seconds"); v != "" {
		if seconds, err = strconv.ParseInt(v, 10, 64); err != nil || seconds < 1 || seconds > redis.AnswerKeep-5 {
			WriteError(w, invalid(400, "seconds: must be from 1 to %d", redis.AnswerKeep-5))
			return
		}
	}
	l, err := s.ItemLive(r.Context(), id, seconds)
	if err != nil {
		s.fail(w, "item live view", err)
		return
	}
	WriteJSON(w, 200, map[string]any{"code": "ok", "live": l})
}

// ItemLive reads the live view of an item over the last seconds seconds.
// The last second shown is the one before the present: gateways add a
// second's counts just after it ends.
func (s *Server) ItemLive(ctx context.Context, id, seconds int64) (*Live, error) {
	it, err := s.db.Item(ctx, id)
	if err != nil {
		return nil, err
	}
	now := s.now()
	l := &Live{ItemID: it.ID, Name: it.Name, Price: it.Price, Stock: it.Stock, StartAt: it.StartAt, EndAt: it.EndAt,
		At: now.UTC().Truncate(time.Millisecond), Shards: make([]LiveShard, it.Shards)}
	stock, transit, err := s.store.ShardRemaining(ctx, id, it.Shards)
	if err != nil {
		return nil, flashgate.Errorf(flashgate.Unavailable, "redis unavailable")
	}
	for i := range l.Shards {
		l.Shards[i] = LiveShard{Shard: i, Remaining: stock[i], InTransfer: transit[i]}
		l.Remaining += stock[i] + transit[i]
	}
	to := now.Unix() - 1
	from := to - seconds + 1
	buckets, err := s.store.Answers(ctx, id, from, to)
	if err != nil {
		return nil, flashgate.Errorf(flashgate.Unavailable, "redis unavailable")
	}
	l.Answers = LiveAnswers{From: from, To: to, Codes: map[string][]int64{}}
	series := func(code string) []int64 {
		v := l.Answers.Codes[code]
		if v == nil {
			v = make([]int64, seconds)
			l.Answers.Codes[code] = v
		}
		return v
	}
	for _, c := range liveCodes {
		series(string(c))
	}
	for i, b := range buckets {
		for code, n := range b {
			series(code)[i] = n
		}
	}
	counts, err := s.db.ItemOrderCounts(ctx, id)
	if err != nil {
		return nil, err
	}
	l.Orders = LiveOrders{Unpaid: counts.Unpaid, Paid: counts.Paid, Cancelled: counts.Cancelled, Refunded: counts.Refunded}
	return l, nil
}
