package test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashgate/flashgate/internal/app"
	"github.com/flashgate/flashgate/internal/config"
	"github.com/flashgate/flashgate/internal/testenv"
)

// waitFleet waits until every gateway of s enforces its share of a fleet of
// n: the contract lets a fleet take up to 5 seconds after a gateway joins.
func waitFleet(t *testing.T, s *stack, n int) {
	t.Helper()
	want := fmt.Sprintf("flashgate_gateway_fleet_size %d\n", n)
	testenv.Eventually(t, 5*time.Second, func() error {
		for _, gw := range s.gws {
			resp, err := s.http.Get(gw + "/metrics")
			if err != nil {
				return err
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(b), want) {
				return fmt.Errorf("%s does not report a fleet of %d yet", gw, n)
			}
		}
		return nil
	})
}

// hammer sends buys for d, as fast as workers goroutines can, each to the
// next gateway in turn (a load balancer spreading one client over the
// fleet), with token(i) for the i-th request. It returns how many were let
// through (any answer but 429) and over how long.
func hammer(t *testing.T, s *stack, item int64, d time.Duration, workers int, token func(i int) string) (passed, limited int, took time.Duration) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	begin := time.Now()
	deadline := begin.Add(d)
	n := 0
	for range workers {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				mu.Lock()
				i := n
				n++
				mu.Unlock()
				a := s.buy(item, token(i))
				mu.Lock()
				switch a.Status {
				case 429:
					limited++
				case 202, 409, 410:
					passed++
				default:
					t.Errorf("request %d: %d %s", i, a.Status, a.Raw)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return passed, limited, time.Since(begin)
}

// TestLimitsHoldForTheFleet: with 2 and then 3 gateways, a shopper whose
// requests are spread over every gateway, and an address sending for many
// shoppers, get through at most 1.25 × the rate over the time they send,
// plus the burst: each gateway enforces its share of the limit, learned
// from the fleet's heartbeats, not the whole limit.
func TestLimitsHoldForTheFleet(t *testing.T) {
	const rate = 6 // FLASHGATE_USER_RATE and FLASHGATE_IP_RATE, burst the same
	const load = 2 * time.Second
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("user/%d gateways", n), func(t *testing.T) {
			s := fleetOf(roles{gateways: n, workers: 1})(t, rates(fmt.Sprint(rate), "0"))
			waitFleet(t, s, n)
			item := s.sale(-time.Second, time.Hour, map[string]any{"stock": 1000, "shards": 2})
			tok := s.token(77)
			passed, limited, took := hammer(t, s, item, load, 4, func(int) string { return tok })
			bound := 1.25*rate*took.Seconds() + rate
			t.Logf("one shopper over %d gateways: %d through, %d limited in %v (bound %.1f)", n, passed, limited, took, bound)
			if float64(passed) > bound {
				t.Fatalf("%d buys of one shopper got through %d gateways in %v: over 1.25 × %d/s + %d = %.1f", passed, n, took, rate, rate, bound)
			}
			if passed < rate/2 || limited == 0 {
				t.Fatalf("%d through, %d limited: the shopper must get through, and be limited", passed, limited)
			}
		})
	}
	t.Run("ip/3 gateways", func(t *testing.T) {
		s := fleetOf(roles{gateways: 3, workers: 1})(t, rates("0", fmt.Sprint(rate)))
		waitFleet(t, s, 3)
		item := s.sale(-time.Second, time.Hour, map[string]any{"stock": 100000, "shards": 4})
		tokens := make([]string, 20000)
		for i := range tokens {
			tokens[i] = s.token(int64(1000 + i))
		}
		passed, limited, took := hammer(t, s, item, load, 4, func(i int) string { return tokens[i%len(tokens)] })
		bound := 1.25*rate*took.Seconds() + rate
		t.Logf("one address over 3 gateways: %d through, %d limited in %v (bound %.1f)", passed, limited, took, bound)
		if float64(passed) > bound || passed < rate/2 || limited == 0 {
			t.Fatalf("%d buys from one address got through 3 gateways in %v, %d limited: bound %.1f", passed, took, limited, bound)
		}
	})
}

// TestFleetShareFollowsGateways: a gateway that joins is counted by every
// gateway, and one that stops leaves at once, each within the 5 seconds the
// contract allows.
func TestFleetShareFollowsGateways(t *testing.T) {
	s := fleetOf(roles{gateways: 2})(t, rates("4", "0"))
	waitFleet(t, s, 2)

	cfg := *s.app.Config
	cfg.Role, cfg.HTTPAddr = config.RoleGateway, "127.0.0.1:0"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	third, err := app.Start(ctx, &cfg, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- third.Wait(ctx) }()
	s.gws = append(s.gws, "http://"+third.HTTPAddr)
	waitFleet(t, s, 3)

	s.http.CloseIdleConnections() // the third gateway drains them on shutdown
	cancel()
	if err := <-stopped; err != nil {
		t.Fatalf("third gateway: %v", err)
	}
	s.gws = s.gws[:2]
	waitFleet(t, s, 2)
}
