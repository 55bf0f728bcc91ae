package redis_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flashgate/flashgate/internal/redis"
	"github.com/flashgate/flashgate/internal/testenv"
)

func eventsStore(t *testing.T) *redis.Store {
	t.Helper()
	s, err := redis.Open(context.Background(), redis.Options{Addrs: []string{testenv.RedisAddr()}, Prefix: testenv.Prefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// eventsOf watches pub's order announcements from a store of its own, as
// another process of the same deployment does.
func eventsOf(t *testing.T, pub *redis.Store) *redis.OrderEvents {
	t.Helper()
	sub, err := redis.Open(context.Background(), redis.Options{Addrs: []string{testenv.RedisAddr()}, Prefix: pub.Prefix()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Close)
	events := redis.NewOrderEvents(sub)
	t.Cleanup(events.Close)
	return events
}

// notWoken checks that w stays asleep a while.
func notWoken(t *testing.T, w *redis.OrderWatch, what string) {
	t.Helper()
	select {
	case <-w.C:
		t.Fatal(what)
	case <-time.After(200 * time.Millisecond):
	}
}

// woken waits for a wake-up of w.
func woken(t *testing.T, w *redis.OrderWatch, what string) {
	t.Helper()
	select {
	case <-w.C:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: no wake-up in 5s", what)
	}
}

// drain empties w, waiting a little for stragglers.
func drain(w *redis.OrderWatch) {
	for {
		select {
		case <-w.C:
		case <-time.After(100 * time.Millisecond):
			return
		}
	}
}

func TestOrderEvents(t *testing.T) {
	ctx := context.Background()
	pub := eventsStore(t)
	events := eventsOf(t, pub)

	a := events.Watch("o1")
	woken(t, a, "subscription confirmed")
	b := events.Watch("o1")
	other := events.Watch("o2")
	drain(a)
	drain(b)
	drain(other)

	if err := pub.PublishOrders(ctx, "paid", "o1"); err != nil {
		t.Fatal(err)
	}
	woken(t, a, "first watcher")
	woken(t, b, "second watcher")
	notWoken(t, other, "a watcher of another order woke")

	// The last watcher of o1 goes, which unsubscribes, and a new one comes
	// at once: whatever the order of the two on the shared connection, the
	// new watcher hears the next message.
	a.Close()
	b.Close()
	c := events.Watch("o1")
	defer c.Close()
	woken(t, c, "new subscription confirmed")
	time.Sleep(200 * time.Millisecond) // let a late unsubscribe land
	drain(c)
	if err := pub.PublishOrders(ctx, "refunded", "o1"); err != nil {
		t.Fatal(err)
	}
	woken(t, c, "watcher after resubscription")
	other.Close()
}

// TestNewOrderEvents: a batch of written orders is one message on the
// new-orders channel, which wakes the watchers of the orders it lists, in
// another process, and no others; the subscription ends with the last
// watcher and comes back with the next.
func TestNewOrderEvents(t *testing.T) {
	ctx := context.Background()
	pub := eventsStore(t)
	events := eventsOf(t, pub)

	a := events.Watch("o1")
	woken(t, a, "subscriptions confirmed")
	c := events.Watch("o3")
	other := events.Watch("o2")
	time.Sleep(200 * time.Millisecond) // both confirmations of every watch
	drain(a)
	drain(c)
	drain(other)

	if err := pub.PublishNewOrders(ctx, "o1", "o9", "o3"); err != nil {
		t.Fatal(err)
	}
	woken(t, a, "first of the batch")
	woken(t, c, "last of the batch")
	notWoken(t, other, "a watcher of an order not in the batch woke")

	a.Close()
	c.Close()
	other.Close()
	d := events.Watch("o4")
	defer d.Close()
	woken(t, d, "new subscriptions confirmed")
	time.Sleep(200 * time.Millisecond) // let a late unsubscribe land
	drain(d)
	if err := pub.PublishNewOrders(ctx, "o4"); err != nil {
		t.Fatal(err)
	}
	woken(t, d, "watcher after resubscription")
}

// TestNewOrdersOnePublish: announcing a batch of written orders costs Redis
// one command, whatever the batch's size (counted on a redis-server of the
// test's own, which nothing else publishes to).
func TestNewOrdersOnePublish(t *testing.T) {
	ctx := context.Background()
	srv := testenv.StartRedisServer(t, nil)
	s, err := redis.Open(ctx, redis.Options{Addrs: []string{srv.Addr}, Prefix: "p"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ids := make([]string, 200)
	for i := range ids {
		ids[i] = "order-" + strconv.Itoa(i)
	}
	before := publishCalls(t, s)
	if err := s.PublishNewOrders(ctx, ids...); err != nil {
		t.Fatal(err)
	}
	if n := publishCalls(t, s) - before; n != 1 {
		t.Fatalf("%d PUBLISH commands for a batch of %d orders", n, len(ids))
	}
}

// publishCalls is the server's count of PUBLISH commands so far.
func publishCalls(t *testing.T, s *redis.Store) int64 {
	t.Helper()
	info, err := s.Client().Do(context.Background(), s.Client().B().Info().Section("commandstats").Build()).ToString()
	if err != nil {
		t.Fatal(err)
	}
	return commandCalls(info, "publish")
}

// commandCalls is the count of cmd's calls in the text of INFO
// commandstats, 0 when it has none.
func commandCalls(info, cmd string) int64 {
	for _, line := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_"+cmd+":calls="); ok {
			n, _ := strconv.ParseInt(rest[:strings.IndexByte(rest, ',')], 10, 64)
			return n
		}
	}
	return 0
}
