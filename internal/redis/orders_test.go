package redis_test

import (
	"context"
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
	// Another process of the same deployment watches.
	sub, err := redis.Open(ctx, redis.Options{Addrs: []string{testenv.RedisAddr()}, Prefix: pub.Prefix()})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	events := redis.NewOrderEvents(sub)
	defer events.Close()

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
	select {
	case <-other.C:
		t.Fatal("a watcher of another order woke")
	case <-time.After(200 * time.Millisecond):
	}

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
