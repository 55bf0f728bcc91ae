package test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flashgate/flashgate/internal/app"
	"github.com/flashgate/flashgate/internal/config"
	"github.com/flashgate/flashgate/internal/kafka"
	"github.com/flashgate/flashgate/internal/mysql"
	"github.com/flashgate/flashgate/internal/paysim"
	"github.com/flashgate/flashgate/internal/testenv"
)

// fleet is what startFleet runs: separate role processes, in-process,
// sharing one Redis, one broker, one database and one Alipay sandbox.
type fleet struct {
	cluster  bool // on the test binary's Redis Cluster, else the machine's Redis
	gateways int
	workers  int
}

// startFleet returns a starter of a fleet: an admin, f.gateways gateways
// and f.workers workers, each its own app as separate processes would be.
// The stack's buys go to the gateways in turn; its other gateway calls
// (orders, payment) go to the first; its database, store and tokens are the
// admin's.
func startFleet(f fleet) starter {
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
var clusterFleet = startFleet(fleet{cluster: true, gateways: 2, workers: 2})

// TestOnCluster runs the sale, transfer, reconcile, expiry and payment tests
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
		{"NotifyRacesExpiry", testNotifyRacesExpiry},
		{"AlipayPayRefundAndPush", testAlipayPayRefundAndPush},
		{"PointsPayAndRefund", testPointsPayAndRefund},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.body(t, clusterFleet) })
	}
}
