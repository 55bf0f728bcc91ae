package test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashgate/flashgate/internal/app"
	"github.com/flashgate/flashgate/internal/config"
	"github.com/flashgate/flashgate/internal/logging"
	"github.com/flashgate/flashgate/internal/testenv"
)

// logBuffer collects JSON log lines.
type logBuffer struct {
	mu    sync.Mutex
	lines []map[string]any
	bad   []string
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, line := range strings.Split(strings.TrimSpace(string(p)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			b.bad = append(b.bad, line)
			continue
		}
		b.lines = append(b.lines, m)
	}
	return len(p), nil
}

// count returns the lines whose msg is msg and, if level is set, whose level
// is level.
func (b *logBuffer) count(msg, level string) (n int, lines []map[string]any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, l := range b.lines {
		if l["msg"] == msg && (level == "" || l["level"] == level) {
			n++
			lines = append(lines, l)
		}
	}
	return n, lines
}

// startLogged is start() with the logs in JSON into a logBuffer.
func startLogged(t *testing.T, mutate func(*config.Config)) (*stack, *logBuffer) {
	t.Helper()
	cfg := testenv.Config(t)
	mutate(cfg)
	logs := &logBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.Start(ctx, cfg, logging.New(logs, slog.LevelInfo, logging.JSON))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Wait(ctx) }()
	st := &stack{t: t, app: a, gw: "http://" + a.HTTPAddr, admin: "http://" + a.AdminAddr,
		http: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	t.Cleanup(func() {
		st.http.CloseIdleConnections()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("shut down with: %v", err)
		}
	})
	return st, logs
}

// During a Redis outage every buy fails; the log says so once, then as a
// count, instead of a WARN line per buy, and every line is JSON.
func TestRedisOutageDoesNotFloodTheLog(t *testing.T) {
	proxy := testenv.NewProxy(t, testenv.RedisAddr())
	s, logs := startLogged(t, func(c *config.Config) {
		c.RedisAddrs = []string{proxy.Addr()}
		c.LogRepeatEvery = time.Second
	})
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": 10, "shards": 2})
	proxy.Cut()
	cut := time.Now()
	const buys, shoppers = 200, 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	unavailable := 0
	for g := 0; g < shoppers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < buys/shoppers; i++ {
				a := s.buy(item, s.token(int64(1000+g*buys+i)))
				mu.Lock()
				if a.Status == 503 {
					unavailable++
				}
				mu.Unlock()
			}
		}(g)
	}
	wg.Wait()
	if unavailable != buys {
		t.Fatalf("%d of %d buys answered 503 while Redis was down", unavailable, buys)
	}
	// Only the buy path's warnings: one line, then counts, which add up to
	// the failed buys once the last window is flushed.
	warns := func() (lines int, events int) {
		for _, msg := range []string{"reserve", "read item state"} {
			n, ls := logs.count(msg, "WARN")
			lines += n
			for _, l := range ls {
				if r, ok := l["repeated"].(float64); ok {
					events += int(r)
				} else {
					events++
				}
			}
		}
		return lines, events
	}
	// Each of the two messages: its first line, then a line a second.
	elapsed := time.Since(cut)
	most := 2 * (2 + int(elapsed/time.Second))
	if lines, _ := warns(); lines == 0 || lines > most {
		t.Fatalf("%d WARN lines for %d failed buys in %v (at most %d expected)", lines, buys, elapsed, most)
	}
	proxy.Restore()
	testenv.Eventually(t, 30*time.Second, func() error {
		if _, events := warns(); events < buys {
			return fmt.Errorf("the counts add up to %d of %d failed buys so far", events, buys)
		}
		return nil
	})
	if lines, events := warns(); lines > most+2 || events != buys {
		t.Errorf("after the outage: %d lines for %d events (%d buys)", lines, events, buys)
	}
	if len(logs.bad) > 0 {
		t.Errorf("lines that are not JSON: %q", logs.bad)
	}
}

// FLASHGATE_ACCESS_LOG logs one line per request of the gateway and the
// admin API, without the query string (which may carry a path token).
func TestAccessLog(t *testing.T) {
	s, logs := startLogged(t, func(c *config.Config) { c.AccessLog = true })
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": 10, "shards": 2})
	s.do("POST", fmt.Sprintf("%s/api/v1/seckill/%d?path=secret-path-token", s.gw, item), s.token(5), nil)
	s.do("GET", s.gw+"/api/v1/items/999999", "", nil)
	testenv.Eventually(t, 5*time.Second, func() error {
		_, lines := logs.count("access", "INFO")
		seen := map[string]bool{}
		for _, l := range lines {
			seen[fmt.Sprintf("%v %v %v", l["method"], l["path"], l["status"])] = true
			if strings.Contains(fmt.Sprint(l), "secret-path-token") {
				t.Fatalf("the access log shows the query: %v", l)
			}
		}
		for _, want := range []string{
			fmt.Sprintf("POST /api/v1/seckill/%d 202", item),
			"GET /api/v1/items/999999 404",
			"POST /admin/v1/activities 201",
		} {
			if !seen[want] {
				return fmt.Errorf("no access line %q in %v", want, seen)
			}
		}
		return nil
	})

	// Off (the default), there is none.
	s2, logs2 := startLogged(t, func(c *config.Config) {})
	s2.do("GET", s2.gw+"/api/v1/items/999999", "", nil)
	if n, _ := logs2.count("access", ""); n != 0 {
		t.Fatalf("%d access lines with the access log off", n)
	}
}
