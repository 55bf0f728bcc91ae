package test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashgate/flashgate"
	"github.com/flashgate/flashgate/internal/app"
	"github.com/flashgate/flashgate/internal/config"
	"github.com/flashgate/flashgate/internal/kafka"
	"github.com/flashgate/flashgate/internal/mysql"
	"github.com/flashgate/flashgate/internal/paysim"
	"github.com/flashgate/flashgate/internal/testenv"
)

// roles is what fleetOf runs: separate role processes, in-process,
// sharing one Redis, one broker, one database and one Alipay sandbox.
type roles struct {
	cluster  bool // on the test binary's Redis Cluster, else the machine's Redis
	gateways int
	workers  int
}

// fleetOf returns a starter of a fleet: an admin, f.gateways gateways
// and f.workers workers, each its own app as separate processes would be.
// The stack's buys go to the gateways in turn; its other gateway calls
// (orders, payment) go to the first; its database, store and tokens are the
// admin's.
func fleetOf(f roles) starter {
	return func(t testing.TB, mutate func(*config.Config)) *stack {
		t.Helper()
		var base *config.Config
		if f.cluster {
			base = testenv.ClusterConfig(t)
		} else {
			base = testenv.Config(t)
		}
		base.AuthSecret = strings.Repeat("f", 40)
		base.AdminToken = strings.Repeat("a", 20)
		if mutate != nil {
			mutate(base)
		}
		broker, err := kafka.StartBroker(base.KafkaTopic, base.KafkaPartitions)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(broker.Close)
		base.KafkaBrokers = broker.Addrs()
		if err := mysql.Migrate(context.Background(), base.MySQLDSN); err != nil {
			t.Fatal(err)
		}
		sim, simAddr := startSandbox(t, base)

		role := func(r string) *app.App {
			c := *base
			c.Role = r
			return testenv.Start(t, &c)
		}
		adm := role(config.RoleAdmin)
		if n := len(adm.Store.Client().Nodes()); f.cluster && n != 3 {
			t.Fatalf("the fleet's Redis client sees %d nodes, want the cluster's 3 masters", n)
		}
		s := &stack{t: t, app: adm, admin: "http://" + adm.AdminAddr, sim: sim, simAddr: simAddr,
			http: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}}
		for range f.gateways {
			s.gws = append(s.gws, "http://"+role(config.RoleGateway).HTTPAddr)
		}
		s.gw = s.gws[0]
		for range f.workers {
			role(config.RoleWorker)
		}
		// Runs before the apps' own cleanups: idle keep-alive connections
		// would hold their graceful shutdown.
		t.Cleanup(s.http.CloseIdleConnections)
		return s
	}
}

// startSandbox runs an Alipay sandbox for a fleet until the test ends and
// points base at it, as an operator points a fleet at Alipay: dev's own
// sandbox lives in the dev process only.
func startSandbox(t testing.TB, base *config.Config) (*paysim.Sim, string) {
	t.Helper()
	key, err := paysim.GenerateMerchantKey()
	if err != nil {
		t.Fatal(err)
	}
	sim, err := paysim.New(paysim.Config{AppID: app.DevAlipayAppID, MerchantPublicKey: &key.PublicKey, Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); sim.Run(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })

	priv, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(sim.AlipayPublicKey())
	if err != nil {
		t.Fatal(err)
	}
	base.AlipayGateway = "http://" + ln.Addr().String() + paysim.GatewayPath
	base.AlipayAppID = app.DevAlipayAppID
	base.AlipayPrivateKey = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: priv}))
	base.AlipayPublicKey = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
	return sim, ln.Addr().String()
}

// clusterFleet is the fleet of the cluster tests: two gateways and two
// workers on Redis Cluster.
var clusterFleet = fleetOf(roles{cluster: true, gateways: 2, workers: 2})

// TestOnCluster runs the sale, transfer, reconcile, expiry and refund tests
// unchanged on a fleet of two gateways and two workers sharing a 3-master
// Redis Cluster, one broker and one database.
func TestOnCluster(t *testing.T) {
	for _, tc := range []struct {
		name string
		body func(*testing.T, starter)
	}{
		{"StormOnSmallStock", testStormOnSmallStock},
		{"EveryUnitSellsOverSixteenShards", testEveryUnitSellsOverSixteenShards},
		{"ReconcilerFinishesTransfers", testReconcilerFinishesTransfers},
		{"ReconcilerClearsStaleSoldOut", testReconcilerClearsStaleSoldOut},
		{"UnpaidOrdersExpire", testUnpaidOrdersExpire},
		{"AlipayPayRefundAndPush", testAlipayPayRefundAndPush},
		{"PointsPayAndRefund", testPointsPayAndRefund},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.body(t, clusterFleet) })
	}
}

// scriptCalls reads, from every master, how many scripts it has run
// (EVALSHA and EVAL, from INFO commandstats).
func scriptCalls(t *testing.T, s *stack) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for addr, node := range s.app.Store.Client().Nodes() {
		info, err := node.Do(context.Background(), node.B().Info().Section("commandstats").Build()).ToString()
		if err != nil {
			t.Fatalf("info commandstats of %s: %v", addr, err)
		}
		for _, line := range strings.Split(info, "\n") {
			name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
			if !ok || (name != "cmdstat_evalsha" && name != "cmdstat_eval") {
				continue
			}
			calls, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
			n, err := strconv.ParseInt(calls, 10, 64)
			if err != nil {
				t.Fatalf("%s of %s: %q", name, addr, line)
			}
			out[addr] += n
		}
	}
	return out
}

// shardOwners maps each shard of an item to the master that serves it.
func shardOwners(t *testing.T, s *stack, cl *testenv.Cluster, item int64, shards int) (slots []int, owners []string) {
	t.Helper()
	c := s.app.Store.Client()
	for sh := range shards {
		key := fmt.Sprintf("%s:{i%d:%d}:stock", s.app.Config.RedisPrefix, item, sh)
		slot, err := c.Do(context.Background(), c.B().ClusterKeyslot().Key(key).Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		owner, _, err := cl.Owner(int(slot))
		if err != nil {
			t.Fatal(err)
		}
		slots, owners = append(slots, int(slot)), append(owners, owner)
	}
	return slots, owners
}

// TestHotItemSpreadsOverMasters: the 64 shards of a hot item live on all
// three masters, and a storm on it makes each master run about a third of
// the scripts (within 25% of the mean): no master is the item's hot spot.
func TestHotItemSpreadsOverMasters(t *testing.T) {
	s := clusterFleet(t, nil)
	cl := testenv.RedisCluster(t)
	const shards, perShard, nusers = 64, 100, 3000
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": shards * perShard, "shards": shards})

	_, owners := shardOwners(t, s, cl, item, shards)
	held := map[string]int{}
	for _, o := range owners {
		held[o]++
	}
	stockOn := map[string]int64{}
	c := s.app.Store.Client()
	for sh, o := range owners {
		n, err := c.Do(context.Background(), c.B().Get().Key(fmt.Sprintf("%s:{i%d:%d}:stock", s.app.Config.RedisPrefix, item, sh)).Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		stockOn[o] += n
	}
	t.Logf("shards per master %v, units per master %v", held, stockOn)
	for _, a := range cl.Addrs {
		if held[a] == 0 {
			t.Fatalf("master %s holds none of the item's shards: %v", a, held)
		}
	}

	users := make([]int64, nusers)
	for i := range users {
		users[i] = int64(100_000 + i)
	}
	before := scriptCalls(t, s)
	out := storm(s, item, users, 1, 32)
	for _, o := range out {
		if o.status != 202 {
			t.Fatalf("with stock for everyone every buy is taken: %+v", o)
		}
	}
	s.settle(item) // the workers' settle scripts run on the same shards
	after := scriptCalls(t, s)

	var total int64
	calls := map[string]int64{}
	for _, a := range cl.Addrs {
		calls[a] = after[a] - before[a]
		total += calls[a]
	}
	mean := float64(total) / float64(len(cl.Addrs))
	t.Logf("script calls per master during the storm: %v (mean %.0f)", calls, mean)
	if total < nusers {
		t.Fatalf("%d script calls for %d buys", total, nusers)
	}
	for a, n := range calls {
		if dev := (float64(n) - mean) / mean; dev > 0.25 || dev < -0.25 {
			t.Errorf("master %s ran %d scripts, %+.0f%% from the mean %.0f", a, n, 100*dev, mean)
		}
	}
}

// TestReshardDuringStorm moves slots holding shards of a hot item from one
// master to another with `redis-cli --cluster reshard` while shoppers buy it
// through two gateways: no unit is lost or sold twice, no shopper gets two,
// every 202 becomes a row, and the stock adds up.
func TestReshardDuringStorm(t *testing.T) {
	s := clusterFleet(t, nil)
	cl := testenv.RedisCluster(t)
	const shards, stock = 64, 64 * 2000 // enough not to sell out before the reshard ends
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": stock, "shards": shards})

	// redis-cli moves the source's lowest slots first: move enough of them
	// to carry at least three of the item's shards.
	from, to := cl.Addrs[0], cl.Addrs[1]
	slots, owners := shardOwners(t, s, cl, item, shards)
	var hot []int
	for sh, o := range owners {
		if o == from {
			hot = append(hot, slots[sh])
		}
	}
	slices.Sort(hot)
	if len(hot) < 3 {
		t.Fatalf("master %s holds %d shards of the item", from, len(hot))
	}
	owned, err := cl.Slots(from)
	if err != nil {
		t.Fatal(err)
	}
	move := slices.Index(owned, hot[2]) + 1
	moved := hot[:3]
	// Most shoppers have their home shard in a moving slot, so that buys
	// meet each migration, which lasts milliseconds.
	movedShard := map[int]bool{}
	for sh, slot := range slots {
		if slices.Contains(moved, slot) {
			movedShard[sh] = true
		}
	}
	t.Logf("moving %d slots (%d-%d) with shards in slots %v from %s to %s", move, owned[0], hot[2], moved, from, to)

	ctx := context.Background()
	reshard := make(chan error, 1)
	go func() { reshard <- cl.Reshard(ctx, from, to, move) }()
	t.Cleanup(func() { // give the slots back for the other tests
		if err := cl.Reshard(ctx, to, from, move); err != nil {
			t.Errorf("moving the slots back: %v", err)
		}
	})

	// Shoppers, new ones and some trying again, until the reshard is done.
	var mu sync.Mutex
	accepted := map[int64]string{}
	unsure := map[int64]bool{} // answered 503: nothing known to be taken
	counts := map[int]int{}
	var nextUser atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 24 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				u := nextUser.Add(1)
				for i%4 != 3 && !movedShard[flashgate.HomeShard(u, shards)] {
					u = nextUser.Add(1)
				}
				if i%5 == 4 {
					u = 1 + u/2 // someone who tried before
				}
				a := s.buy(item, s.token(u))
				mu.Lock()
				counts[a.Status]++
				switch a.Status {
				case 202:
					if prev, ok := accepted[u]; ok {
						mu.Unlock()
						t.Errorf("user %d accepted twice: %s and %s", u, prev, a.str("order_id"))
						return
					}
					accepted[u] = a.str("order_id")
				case 409, 410:
				case 503:
					unsure[u] = true
				default:
					mu.Unlock()
					t.Errorf("user %d: %d %s", u, a.Status, a.Raw)
					return
				}
				mu.Unlock()
			}
		})
	}
	if err := <-reshard; err != nil {
		close(stop)
		wg.Wait()
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	t.Logf("answers during the reshard: %v; %d accepted", counts, len(accepted))
	if counts[503] > 0 {
		// A buy that meets a migrating slot waits for it (TRYAGAIN) and
		// follows the keys (ASK, MOVED): a reshard is not an outage.
		t.Errorf("%d buys answered 503 during the reshard", counts[503])
	}
	for _, slot := range moved {
		if owner, _, _ := cl.Owner(slot); owner != to {
			t.Fatalf("slot %d is still on %s", slot, owner)
		}
	}
	if len(accepted) == 0 || len(accepted) > stock {
		t.Fatalf("accepted %d of %d units", len(accepted), stock)
	}

	st := s.settle(item) // checks remaining + reserved + live == stock
	got := rows(t, s, item)
	for user, order := range accepted {
		if got[order] != user {
			t.Fatalf("accepted order %s of user %d: row has %d", order, user, got[order])
		}
	}
	byUser := map[int64]int{}
	for order, user := range got {
		byUser[user]++
		if byUser[user] > 1 {
			t.Fatalf("user %d has two orders", user)
		}
		if accepted[user] != order && !unsure[user] {
			t.Fatalf("order %s of user %d was never answered 202", order, user)
		}
	}
	if int64(len(got)) != st.Unpaid || st.Remaining+st.Unpaid != stock {
		t.Fatalf("%d rows, stats %+v", len(got), st)
	}
	remaining, err := s.app.Store.RemainingNow(ctx, item, shards)
	if err != nil || remaining != st.Remaining {
		t.Fatalf("remaining in the shards %d (%v), stats say %d", remaining, err, st.Remaining)
	}
}
