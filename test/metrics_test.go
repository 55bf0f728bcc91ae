package test

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/flashgate/flashgate/internal/config"
	"github.com/flashgate/flashgate/internal/testenv"
)

// scrape returns the samples of /metrics at addr, by series as written
// (name{labels}), labels in the order the registry writes them (sorted).
func scrape(t testing.TB, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// The payment routes are counted in the request metrics by route and code,
// and the payment outcomes in their own counters; every series exists at 0
// before its first event.
func TestPaymentRoutesAndOutcomesAreCounted(t *testing.T) {
	s := start(t, func(c *config.Config) { c.OrderTTL = 2 * time.Second })
	before := scrape(t, s.app.HTTPAddr)
	for _, series := range []string{
		`flashgate_gateway_requests_total{code="ok",route="pay"}`,
		`flashgate_gateway_requests_total{code="ok",route="refund"}`,
		`flashgate_gateway_requests_total{code="ok",route="ws"}`,
		`flashgate_gateway_requests_total{code="invalid",route="notify"}`,
		`flashgate_gateway_requests_total{code="ok",route="return"}`,
		`flashgate_gateway_requests_total{code="not_found",route="none"}`,
		`flashgate_payment_paid_total{channel="points"}`,
		`flashgate_payment_refunds_total{channel="points"}`,
		`flashgate_payment_notifies_total{result="refused"}`,
		`flashgate_payment_expired_total`,
		`flashgate_worker_errors_total{task="expire"}`,
		`flashgate_worker_reservations_total{result="guarded"}`,
	} {
		if v, ok := before[series]; !ok || v != 0 {
			t.Errorf("%s before any event: %v (present %v), want 0", series, v, ok)
		}
	}

	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": 3, "shards": 1, "points": 10})
	const user = 31
	s.points(user, 10)
	id := s.buyOrder(item, user)
	w := s.watch(id, user) // ws: ok
	defer w.conn.Close()
	if a := s.pay(id, user, map[string]string{"channel": "points"}); a.Status != 200 {
		t.Fatalf("points pay: %d %s", a.Status, a.Raw)
	}
	if a := s.pay(id, user, map[string]string{"channel": "bitcoin"}); a.Status != 422 {
		t.Fatalf("pay with bitcoin: %d %s", a.Status, a.Raw)
	}
	if a := s.refund(id, user); a.Status != 200 {
		t.Fatalf("refund: %d %s", a.Status, a.Raw)
	}
	if a := s.do("POST", s.gw+"/pay/alipay/notify", "", nil); a.Status != 200 {
		t.Fatalf("forged notify: %d %s", a.Status, a.Raw)
	}
	if _, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(s.gw, "http")+"/api/v1/orders/"+id+"/ws?token=bad", nil); err == nil || resp.StatusCode != 401 {
		t.Fatalf("websocket with a bad token: %v", err)
	}
	if a := s.do("GET", s.gw+"/no/such/path", "", nil); a.Status != 404 {
		t.Fatalf("unknown path: %d", a.Status)
	}
	expiring := s.buyOrder(item, user+1) // never paid: expires after 2s

	testenv.Eventually(t, 15*time.Second, func() error {
		after := scrape(t, s.app.HTTPAddr)
		for series, want := range map[string]float64{
			`flashgate_gateway_requests_total{code="ok",route="ws"}`:            1,
			`flashgate_gateway_requests_total{code="unauthorized",route="ws"}`:  1,
			`flashgate_gateway_requests_total{code="ok",route="pay"}`:           1,
			`flashgate_gateway_requests_total{code="invalid",route="pay"}`:      1,
			`flashgate_gateway_requests_total{code="ok",route="refund"}`:        1,
			`flashgate_gateway_requests_total{code="invalid",route="notify"}`:   1,
			`flashgate_gateway_requests_total{code="not_found",route="none"}`:   1,
			`flashgate_payment_paid_total{channel="points"}`:                    1,
			`flashgate_payment_refunds_total{channel="points"}`:                 1,
			`flashgate_payment_notifies_total{result="refused"}`:                1,
			`flashgate_payment_expired_total`:                                   1,
			`flashgate_gateway_requests_total{code="ok",route="buy"}`:           2,
			`flashgate_worker_reservations_total{result="inserted"}`:            2,
			`flashgate_payment_paid_total{channel="alipay"}`:                    0,
			`flashgate_gateway_requests_total{code="unauthorized",route="pay"}`: 0,
		} {
			if got := after[series] - before[series]; got != want {
				return fmt.Errorf("%s rose by %v, want %v (order %s)", series, got, want, expiring)
			}
		}
		return nil
	})
}

// A worker's listener answers /healthz and /readyz, and its metrics carry
// the worker series at 0 and the group lag.
func TestWorkerListener(t *testing.T) {
	cfg := testenv.Config(t)
	dev := testenv.Start(t, cfg) // migrates, runs a broker
	w := new(config.Config)
	*w = *cfg
	w.Role = config.RoleWorker
	w.WorkerAddr = "127.0.0.1:0"
	w.KafkaBrokers = dev.Brokers
	wa := testenv.Start(t, w)
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + wa.WorkerAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("worker %s: %d", path, resp.StatusCode)
		}
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		m := scrape(t, wa.WorkerAddr)
		for _, series := range []string{
			`flashgate_worker_errors_total{task="expire"}`, `flashgate_worker_errors_total{task="write"}`,
			`flashgate_worker_reservations_total{result="guarded"}`, `flashgate_worker_kafka_lag`,
		} {
			if v, ok := m[series]; !ok || v != 0 {
				return fmt.Errorf("%s = %v (present %v), want 0", series, v, ok)
			}
		}
		return nil
	})
}
