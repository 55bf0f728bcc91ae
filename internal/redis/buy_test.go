package redis_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/flashgate/flashgate"
	"github.com/flashgate/flashgate/internal/redis"
	"github.com/flashgate/flashgate/internal/testenv"
)

// failAfterPipeline fails every single command once armed, and arms itself
// at the first pipeline: Buy rereads every shard in a pipeline before its
// last reserve, which then fails as on a timeout.
type failAfterPipeline struct {
	rueidis.Client
	armed atomic.Bool
}

func (c *failAfterPipeline) DoMulti(ctx context.Context, cmds ...rueidis.Completed) []rueidis.RedisResult {
	defer c.armed.Store(true)
	return c.Client.DoMulti(ctx, cmds...)
}

func (c *failAfterPipeline) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	if c.armed.Load() {
		dead, cancel := context.WithCancel(ctx)
		cancel()
		return c.Client.Do(dead, cmd)
	}
	return c.Client.Do(ctx, cmd)
}

// TestBuyNeverReportsAFailedReserveAsReserved: when the reserve that follows
// a reread of every shard fails (a timeout under load), the buy fails; it
// used to come back as Reserved with nothing taken, and the gateway answered
// 202 for a unit that did not exist (TestFleet under -race saw 166 202s for
// 60 units, the MySQL guard cancelling the extra orders).
func TestBuyNeverReportsAFailedReserveAsReserved(t *testing.T) {
	ctx := context.Background()
	plain := open(t)
	wrap := &failAfterPipeline{}
	s, err := redis.Open(ctx, redis.Options{Addrs: []string{testenv.RedisAddr()}, Prefix: plain.Prefix(),
		Wrap: func(c rueidis.Client) rueidis.Client { wrap.Client = c; return wrap }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	it := flashgate.Item{ID: 3, Shards: 2, Stock: 0, Price: 100, StartAt: time.Now().Add(-time.Second), EndAt: time.Now().Add(time.Hour)}
	if err := plain.LoadStock(ctx, []flashgate.Item{it}); err != nil {
		t.Fatal(err)
	}
	if err := plain.PutItems(ctx, []flashgate.Item{it}); err != nil {
		t.Fatal(err)
	}
	cached, err := s.Items().Get(ctx, it.ID, time.Now())
	if err != nil || cached.Missing {
		t.Fatalf("item: %v", err)
	}
	wrap.armed.Store(false) // the cache read above was a pipeline
	r := flashgate.Reservation{OrderID: "phantom", ItemID: it.ID, UserID: 9, Amount: 100, At: time.Now()}
	res, err := s.Buy(ctx, cached, &r, nil)
	if err == nil {
		t.Fatalf("buy whose last reserve failed: %+v with no error", res)
	}
	counts, cerr := plain.Counts(ctx, it.ID, it.Shards)
	if cerr != nil || len(counts[0].Outbox)+len(counts[1].Outbox) != 0 {
		t.Fatalf("outbox after the failed buy: %+v %v", counts, cerr)
	}
}
