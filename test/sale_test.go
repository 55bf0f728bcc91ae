// Package test holds flashgate's end-to-end tests: each starts the whole
// system in-process (gateway, admin, worker, embedded broker) on the
// machine's real Redis and MariaDB, and drives it over HTTP as the contract
// writes it.
package test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashgate/flashgate"
	"github.com/flashgate/flashgate/internal/config"
	"github.com/flashgate/flashgate/internal/kafka"
	"github.com/flashgate/flashgate/internal/redis"
	"github.com/flashgate/flashgate/internal/testenv"
)

type outcome struct {
	user   int64
	status int
	code   string
	order  string
}

// storm sends tries buys per user for users, from workers goroutines, and
// returns every answer.
func storm(s *stack, item int64, users []int64, tries, workers int) []outcome {
	type job struct{ user int64 }
	jobs := make(chan job)
	var mu sync.Mutex
	var out []outcome
	var wg sync.WaitGroup
	tokens := map[int64]string{}
	for _, u := range users {
		tokens[u] = s.token(u)
	}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				a := s.buy(item, tokens[j.user])
				mu.Lock()
				out = append(out, outcome{j.user, a.Status, a.code(), a.str("order_id")})
				mu.Unlock()
			}
		}()
	}
	for try := 0; try < tries; try++ {
		for _, u := range users {
			jobs <- job{u}
		}
	}
	close(jobs)
	wg.Wait()
	return out
}

// rows returns the order rows of an item: order id -> user.
func rows(t *testing.T, s *stack, item int64) map[string]int64 {
	t.Helper()
	var rs []struct {
		OrderID string `db:"order_id"`
		UserID  int64  `db:"user_id"`
		Status  string `db:"status"`
	}
	if err := s.app.DB.Select(&rs, "SELECT order_id, user_id, status FROM seckill_order WHERE item_id = ?", item); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, r := range rs {
		out[r.OrderID] = r.UserID
	}
	return out
}

func TestStormOnSmallStock(t *testing.T) { testStormOnSmallStock(t, start) }

func testStormOnSmallStock(t *testing.T, start starter) {
	s := start(t, nil)
	const stock, nusers, tries = 40, 1500, 3
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": stock, "shards": 8})
	users := make([]int64, nusers)
	for i := range users {
		users[i] = int64(1000 + i)
	}
	out := storm(s, item, users, tries, 48)

	accepted := map[int64]string{} // user -> order
	counts := map[string]int{}
	for _, o := range out {
		counts[o.code]++
		switch o.code {
		case "ok":
			if o.status != 202 || o.order == "" {
				t.Fatalf("accepted answer: %+v", o)
			}
			if prev, ok := accepted[o.user]; ok {
				t.Fatalf("user %d accepted twice: %s and %s", o.user, prev, o.order)
			}
			accepted[o.user] = o.order
		case "duplicate", "sold_out":
		default:
			t.Fatalf("unexpected answer %+v", o)
		}
	}
	for _, o := range out {
		if o.code == "duplicate" {
			if o.status != 409 || accepted[o.user] != o.order {
				t.Fatalf("duplicate answer %+v does not carry the user's order %q", o, accepted[o.user])
			}
		}
		if o.code == "sold_out" && o.status != 410 {
			t.Fatalf("sold out answer %+v", o)
		}
	}
	t.Logf("answers: %v", counts)
	if len(accepted) != stock {
		t.Fatalf("accepted %d, want exactly the stock %d", len(accepted), stock)
	}
	st := s.settle(item)
	if st.Remaining != 0 || st.Orders != stock || st.Unpaid != stock {
		t.Fatalf("stats after settling: %+v", st)
	}
	got := rows(t, s, item)
	if len(got) != stock {
		t.Fatalf("%d rows, want %d", len(got), stock)
	}
	for user, order := range accepted {
		if got[order] != user {
			t.Fatalf("accepted order %s of user %d: row has user %d", order, user, got[order])
		}
	}
	// Every gateway now answers sold out from memory.
	if a := s.buy(item, s.token(99)); a.Status != 410 || a.code() != "sold_out" {
		t.Fatalf("after the sale: %d %s", a.Status, a.Raw)
	}
	a := s.do("GET", fmt.Sprintf("%s/api/v1/items/%d", s.gw, item), "", nil)
	it := a.Body["item"].(map[string]any)
	if a.Status != 200 || it["state"] != "sold_out" || it["remaining"].(float64) != 0 || it["stock"].(float64) != stock {
		t.Fatalf("item after the sale: %s", a.Raw)
	}
}

func TestEveryUnitSellsOverSixteenShards(t *testing.T) { testEveryUnitSellsOverSixteenShards(t, start) }

func testEveryUnitSellsOverSixteenShards(t *testing.T, start starter) {
	s := start(t, nil)
	const stock = 160
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": stock, "shards": 16})
	users := make([]int64, stock)
	for i := range users {
		users[i] = int64(5000 + i*7)
	}
	out := storm(s, item, users, 1, 32)
	for _, o := range out {
		if o.code != "ok" {
			t.Fatalf("with as many buyers as units every buyer gets one: %+v", o)
		}
	}
	st := s.settle(item)
	if st.Remaining != 0 || st.Unpaid != stock {
		t.Fatalf("stats: %+v", st)
	}
	if a := s.buy(item, s.token(1)); a.code() != "sold_out" {
		t.Fatalf("one more buyer: %s", a.Raw)
	}
}

// TestRelayProducesLostReservation simulates a gateway that died after the
// script and before the produce: the relay turns the outbox entry into a row.
func TestRelayProducesLostReservation(t *testing.T) {
	s := start(t, nil)
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": 5, "shards": 2})
	ctx := context.Background()
	// A store of its own, as a gateway's before it announces (the app's
	// store hands every reserve call to the gateway's producer).
	store, err := redis.Open(ctx, redis.Options{Addrs: s.app.Config.RedisAddrs, Prefix: s.app.Config.RedisPrefix})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	it, err := store.Items().Get(ctx, item, time.Now())
	if err != nil || it.Missing {
		t.Fatalf("item: %v", err)
	}
	r := flashgate.Reservation{OrderID: flashgate.NewOrderIDs().New(item), ItemID: item, UserID: 77, Amount: 990, At: time.Now()}
	res, err := store.Buy(ctx, it, &r, nil) // the script ran; nothing is produced
	if err != nil || res.OrderID != r.OrderID {
		t.Fatalf("buy: %+v %v", res, err)
	}
	// The owner sees it pending meanwhile.
	if a := s.do("GET", s.gw+"/api/v1/orders/"+r.OrderID, s.token(77), nil); a.Status != 200 {
		t.Fatalf("pending order: %s", a.Raw)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		if got := rows(t, s, item); got[r.OrderID] != 77 {
			return fmt.Errorf("no row for %s yet", r.OrderID)
		}
		return nil
	})
	st := s.settle(item)
	if st.Unpaid != 1 || st.Remaining != 4 {
		t.Fatalf("stats: %+v", st)
	}
	// The relay keyed its message as the gateway keys the original
	// (flashgate.EntryKey), so that a copy goes to the original's partition.
	c := kafka.NewConsumer(kafka.ConsumerOptions{Brokers: s.app.Brokers, Topic: s.app.Config.KafkaTopic, Group: "relay-key"})
	defer c.Close()
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	wire := string(r.AppendWire(nil))
	for {
		msgs, err := c.FetchBatch(rctx, 100, 50*time.Millisecond)
		if err != nil {
			t.Fatalf("the relayed message was not read back: %v", err)
		}
		i := slices.IndexFunc(msgs, func(m kafka.Message) bool { return string(m.Value) == wire })
		if i < 0 {
			continue
		}
		if got, want := string(msgs[i].Key), string(flashgate.EntryKey(r.OrderID)); got != want {
			t.Fatalf("relayed with key %q, want %q", got, want)
		}
		break
	}
}

// TestReplayedMessageWritesOnce delivers the same reservation three times.
func TestReplayedMessageWritesOnce(t *testing.T) {
	s := start(t, nil)
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": 5, "shards": 1})
	a := s.buy(item, s.token(42))
	if a.Status != 202 {
		t.Fatalf("buy: %s", a.Raw)
	}
	order := a.str("order_id")
	s.settle(item)
	r := flashgate.Reservation{OrderID: order, ItemID: item, UserID: 42, Amount: 990, At: time.Now()}
	msg := kafka.Message{Key: []byte("42"), Value: r.AppendWire(nil)}
	if err := s.app.Producer.Write(context.Background(), msg, msg); err != nil {
		t.Fatal(err)
	}
	// A marker message after the replays: once its row exists, the replays
	// before it on the same partition have been consumed.
	marker := flashgate.Reservation{OrderID: flashgate.NewOrderIDs().New(item), ItemID: item, UserID: 42, Amount: 990, At: time.Now()}
	if err := s.app.Producer.Write(context.Background(), kafka.Message{Key: []byte("42"), Value: marker.AppendWire(nil)}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		if _, ok := rows(t, s, item)[marker.OrderID]; !ok {
			return fmt.Errorf("marker not consumed")
		}
		return nil
	})
	got := rows(t, s, item)
	if len(got) != 2 || got[order] != 42 {
		t.Fatalf("rows: %v", got)
	}
	st := s.stats(item)
	// The marker is a second live order of the same user: refused by the
	// database's one-live-order rule and stored cancelled.
	if st.Unpaid != 1 || st.Cancelled != 1 {
		t.Fatalf("stats: %+v", st)
	}
	var left int
	s.app.DB.Get(&left, "SELECT stock_left FROM seckill_item WHERE id = ?", item)
	if left != 4 {
		t.Fatalf("stock_left %d, want 4", left)
	}
}

// TestMessageOfACall: a Kafka message holds the reservations of one reserve
// call, one a line, and mirrors its outbox entry. The worker writes every
// good line, in transactions of at most FLASHGATE_WORKER_BATCH reservations,
// and then removes the entry; an entry with a line it cannot read keeps its
// other reservations written but stays in the outbox (the relay produces it
// again, and the bad line is counted malformed each time).
func TestMessageOfACall(t *testing.T) {
	s := start(t, func(c *config.Config) { c.WorkerBatch = 2 })
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": 10, "shards": 1})
	ctx := context.Background()
	before := scrape(t, s.app.HTTPAddr)
	ids := flashgate.NewOrderIDs()
	entry := func(users ...int64) ([]flashgate.Reservation, []string) {
		var rs []flashgate.Reservation
		var lines []string
		for _, u := range users {
			r := flashgate.Reservation{OrderID: ids.New(item), ItemID: item, UserID: u, Amount: 990, At: time.Now().Truncate(time.Millisecond)}
			rs = append(rs, r)
			lines = append(lines, string(r.AppendWire(nil)))
		}
		return rs, lines
	}
	whole, wholeLines := entry(101, 102, 103, 104, 105)
	part, partLines := entry(106, 107)
	partLines = append(partLines[:1], "r1|not a reservation", partLines[1])
	c := s.app.Store.Client()
	outbox := fmt.Sprintf("%s:{i%d:0}:outbox", s.app.Store.Prefix(), item)
	partField := part[0].OrderID + " not-an-id " + part[1].OrderID
	if err := c.Do(ctx, c.B().Hset().Key(outbox).FieldValue().
		FieldValue(flashgate.EntryField(whole), strings.Join(wholeLines, "\n")).
		FieldValue(partField, strings.Join(partLines, "\n")).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	msgs := []kafka.Message{
		{Key: []byte("101"), Value: []byte(strings.Join(wholeLines, "\n"))},
		{Key: []byte("106"), Value: []byte(strings.Join(partLines, "\n"))},
	}
	if err := s.app.Producer.Write(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		got := rows(t, s, item)
		for _, r := range append(whole, part...) {
			if got[r.OrderID] != r.UserID {
				return fmt.Errorf("no row for %s of user %d yet", r.OrderID, r.UserID)
			}
		}
		if n, err := c.Do(ctx, c.B().Hexists().Key(outbox).Field(flashgate.EntryField(whole)).Build()).AsInt64(); err != nil || n != 0 {
			return fmt.Errorf("the entry written whole is still in the outbox (%v)", err)
		}
		return nil
	})
	if n, err := c.Do(ctx, c.B().Hexists().Key(outbox).Field(partField).Build()).AsInt64(); err != nil || n != 1 {
		t.Fatalf("the entry with a bad line left the outbox: %d %v", n, err)
	}
	after := scrape(t, s.app.HTTPAddr)
	if n := after["flashgate_worker_batch_seconds_count"] - before["flashgate_worker_batch_seconds_count"]; n < 4 {
		t.Fatalf("%v transactions for 7 reservations at most 2 a transaction", n)
	}
	malformed := `flashgate_worker_reservations_total{result="malformed"}`
	if n := after[malformed] - before[malformed]; n < 1 {
		t.Fatalf("malformed lines counted: %v", n)
	}
}
