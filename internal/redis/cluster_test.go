package redis_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/flashgate/flashgate/internal/redis"
	"github.com/flashgate/flashgate/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func openCluster(t *testing.T) (*redis.Store, *testenv.Cluster) {
	t.Helper()
	cl := testenv.RedisCluster(t)
	s, err := redis.Open(context.Background(), redis.Options{Addrs: cl.Addrs, Prefix: testenv.PrefixOn(t, cl.Addrs)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, cl
}

// TestReserveDuringSlotMigration moves the slot of a shard by hand, step by
// step as `redis-cli --cluster reshard` does, with a buy in the middle:
// Redis answers the script TRYAGAIN while the shard's keys are split or
// partly missing, the store waits it out, and the buy then takes exactly one
// unit on the new owner. Reads in between follow ASK.
func TestReserveDuringSlotMigration(t *testing.T) {
	s, cl := openCluster(t)
	ctx := context.Background()
	const item = 41
	if _, err := s.Preload(ctx, item, 0, 5); err != nil {
		t.Fatal(err)
	}
	stock := s.Prefix() + ":{i41:0}:stock"
	c := s.Client()
	slot, err := c.Do(ctx, c.B().ClusterKeyslot().Key(stock).Build()).AsInt64()
	if err != nil {
		t.Fatal(err)
	}
	from, _, err := cl.Owner(int(slot))
	if err != nil {
		t.Fatal(err)
	}
	to := cl.Addrs[0]
	if to == from {
		to = cl.Addrs[1]
	}
	if err := cl.BeginMigration(int(slot), from, to); err != nil {
		t.Fatal(err)
	}
	ended := false
	t.Cleanup(func() {
		if !ended { // leave the shared cluster whole for the next test
			cl.MoveKeys(int(slot), from, to)
			cl.EndMigration(int(slot), to)
		}
	})
	// What Redis itself answers a script whose keys are partly missing in a
	// migrating slot; rueidis hands it back as is.
	probe := c.Do(ctx, c.B().Eval().Script("return 1").Numkeys(2).Key(stock, s.Prefix()+":{i41:0}:buyers").Build())
	if e, ok := rueidis.IsRedisErr(probe.Error()); !ok || !e.IsTryAgain() {
		t.Fatalf("a two-key script in a migrating slot: %v, want TRYAGAIN", probe.Error())
	}
	if err := cl.MoveKeys(int(slot), from, to); err != nil {
		t.Fatal(err)
	}
	if n, err := s.RemainingNow(ctx, item, 1); err != nil || n != 5 {
		t.Fatalf("stock read through ASK: %d %v", n, err)
	}

	done := make(chan redis.ReserveResult, 1)
	go func() { done <- reserve(t, s, item, 0, 7, "o1") }()
	select {
	case r := <-done:
		t.Fatalf("the buy ran while its slot was split: %+v", r)
	case <-time.After(200 * time.Millisecond):
	}
	if err := cl.EndMigration(int(slot), to); err != nil {
		t.Fatal(err)
	}
	ended = true
	select {
	case r := <-done:
		if r.Outcome != redis.Reserved || r.Left != 4 {
			t.Fatalf("the buy after the migration: %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the buy did not finish after the migration")
	}
	if n, err := s.RemainingNow(ctx, item, 1); err != nil || n != 4 {
		t.Fatalf("stock after one buy: %d %v", n, err)
	}
	if owner, _, _ := cl.Owner(int(slot)); owner != to {
		t.Fatalf("slot %d is on %s, want %s", slot, owner, to)
	}
	if got := reserve(t, s, item, 0, 7, "o1"); got.Outcome != redis.Reserved || got.Left != 4 {
		t.Fatalf("the same buy again: %+v", got)
	}
}
