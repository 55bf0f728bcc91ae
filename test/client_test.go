package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashgate/flashgate/internal/app"
	"github.com/flashgate/flashgate/internal/config"
	"github.com/flashgate/flashgate/internal/paysim"
	"github.com/flashgate/flashgate/internal/testenv"
)

// stack is a flashgate started in-process for one test, with HTTP helpers:
// one dev process, or a fleet (see startFleet).
type stack struct {
	t     testing.TB
	app   *app.App // the process whose database, store and admin token the helpers use
	gw    string   // http://host:port of the (first) gateway
	gws   []string // every gateway: buys go to each in turn
	next  atomic.Uint64
	admin string
	http  *http.Client

	sim     *paysim.Sim // the Alipay sandbox, and its address
	simAddr string
}

// starter starts a stack for a test: start (one dev process on the
// machine's Redis) or a fleet on Redis Cluster. Test bodies that take one
// run on both.
type starter func(t testing.TB, mutate func(*config.Config)) *stack

func start(t testing.TB, mutate func(*config.Config)) *stack {
	t.Helper()
	cfg := testenv.Config(t)
	if mutate != nil {
		mutate(cfg)
	}
	a := testenv.Start(t, cfg)
	st := &stack{t: t, app: a, gw: "http://" + a.HTTPAddr, gws: []string{"http://" + a.HTTPAddr}, admin: "http://" + a.AdminAddr,
		sim: a.Paysim, simAddr: a.PaysimAddr,
		http: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}}
	// Runs before the stack's own cleanup: idle keep-alive connections
	// would hold its graceful shutdown.
	t.Cleanup(st.http.CloseIdleConnections)
	return st
}

// answer is a decoded response.
type answer struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    string
}

func (a answer) code() string { s, _ := a.Body["code"].(string); return s }

func (a answer) str(k string) string { s, _ := a.Body[k].(string); return s }

func (s *stack) do(method, url, token string, body any) answer {
	s.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.http.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	if err := json.Unmarshal(raw, &a.Body); err != nil && resp.Header.Get("Content-Type") == "application/json" {
		s.t.Fatalf("%s %s: bad JSON %q", method, url, raw)
	}
	return a
}

func (s *stack) adminDo(method, path string, body any) answer {
	s.t.Helper()
	return s.do(method, s.admin+path, s.app.Config.AdminToken, body)
}

func (s *stack) token(user int64) string {
	return s.app.Signer.Mint(user, time.Now().Add(time.Hour))
}

// sale creates and publishes an activity with one item and returns the
// item id. start and end are relative to now.
func (s *stack) sale(start, end time.Duration, item map[string]any) int64 {
	s.t.Helper()
	now := time.Now()
	a := s.adminDo("POST", "/admin/v1/activities", map[string]any{
		"name": "sale", "start_at": now.Add(start).Format(time.RFC3339Nano), "end_at": now.Add(end).Format(time.RFC3339Nano)})
	if a.Status != 201 {
		s.t.Fatalf("create activity: %d %s", a.Status, a.Raw)
	}
	act := int64(a.Body["id"].(float64))
	if item["name"] == nil {
		item["name"] = "item"
	}
	if item["price"] == nil {
		item["price"] = "9.90"
	}
	a = s.adminDo("POST", fmt.Sprintf("/admin/v1/activities/%d/items", act), item)
	if a.Status != 201 {
		s.t.Fatalf("add item: %d %s", a.Status, a.Raw)
	}
	id := int64(a.Body["id"].(float64))
	if a := s.adminDo("POST", fmt.Sprintf("/admin/v1/activities/%d/publish", act), nil); a.Status != 200 {
		s.t.Fatalf("publish: %d %s", a.Status, a.Raw)
	}
	return id
}

// buy sends a buy to the next gateway in turn.
func (s *stack) buy(item int64, token string) answer {
	s.t.Helper()
	gw := s.gw
	if len(s.gws) > 1 {
		gw = s.gws[(s.next.Add(1)-1)%uint64(len(s.gws))]
	}
	return s.do("POST", fmt.Sprintf("%s/api/v1/seckill/%d", gw, item), token, nil)
}

type stats struct {
	Stock, Remaining, Reserved, Orders, Unpaid, Paid, Cancelled, Refunded int64
}

func (s *stack) stats(item int64) stats {
	s.t.Helper()
	a := s.adminDo("GET", fmt.Sprintf("/admin/v1/items/%d/stats", item), nil)
	if a.Status != 200 {
		s.t.Fatalf("stats: %d %s", a.Status, a.Raw)
	}
	m := a.Body["stats"].(map[string]any)
	n := func(k string) int64 { return int64(m[k].(float64)) }
	return stats{n("stock"), n("remaining"), n("reserved"), n("orders"), n("unpaid"), n("paid"), n("cancelled"), n("refunded")}
}

// settle waits until nothing is reserved and invariant 1 holds: one read
// that does not add up may be a read racing the worker, so the test waits
// for a consistent one, and fails only if none comes.
func (s *stack) settle(item int64) stats {
	s.t.Helper()
	var st stats
	testenv.Eventually(s.t, 30*time.Second, func() error {
		st = s.stats(item)
		if st.Reserved != 0 {
			return fmt.Errorf("still %d reserved: %+v", st.Reserved, st)
		}
		if live := st.Unpaid + st.Paid; live+st.Reserved+st.Remaining != st.Stock {
			return fmt.Errorf("invariant 1: live %d + reserved %d + remaining %d != stock %d", live, st.Reserved, st.Remaining, st.Stock)
		}
		return nil
	})
	return st
}
