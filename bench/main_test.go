package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flashgate/flashgate/bench"
)

// args returns the flags that point the harness at f, plus extra.
func (f *fakeSystem) args(extra ...string) []string {
	return append([]string{
		"--target", f.gateway.URL,
		"--admin", f.admin.URL,
		"--auth-secret", testSecret,
		"--admin-token", testAdminToken,
		"--concurrency", "8",
		"--drain-interval", "20ms",
		"--drain-timeout", "5s",
		"--timeout", "5s",
	}, extra...)
}

// noEnv keeps the machine's FLASHGATE_* variables out of the tests.
func noEnv(string) string { return "" }

// run calls bench.Run against f with the fake as the order source.
func (f *fakeSystem) run(t *testing.T, extra ...string) (*bench.Report, string, error) {
	t.Helper()
	var out bytes.Buffer
	r, err := bench.Run(context.Background(), f.args(extra...), bench.Options{Stdout: &out, Getenv: noEnv, Orders: f})
	return r, out.String(), err
}

// readReport decodes a JSON report both ways: into a map, to check the
// contract's field names, and into the struct.
func readReport(t *testing.T, path string) (map[string]any, bench.Report) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	var r bench.Report
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return raw, r
}

// checkContractFields fails unless the JSON report has every field that
// CONTRACT §10 names.
func checkContractFields(t *testing.T, raw map[string]any) {
	t.Helper()
	for _, k := range []string{"requests", "duration_s", "throughput_rps", "latency_ms", "status", "invariants"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("report lacks %q", k)
		}
	}
	lat, _ := raw["latency_ms"].(map[string]any)
	for _, k := range []string{"p50", "p90", "p99", "p999", "max"} {
		if _, ok := lat[k]; !ok {
			t.Errorf("latency_ms lacks %q", k)
		}
	}
	inv, _ := raw["invariants"].(map[string]any)
	for _, k := range []string{"stock", "accepted", "orders", "oversold", "duplicate_users", "lost"} {
		if _, ok := inv[k]; !ok {
			t.Errorf("invariants lacks %q", k)
		}
	}
}

// checkLatencyOrder fails unless the percentiles are ordered and positive.
func checkLatencyOrder(t *testing.T, l bench.Latency) {
	t.Helper()
	if !(l.P50 > 0 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
		t.Errorf("latency percentiles out of order: %+v", l)
	}
}

func TestMainClosedLoopHot(t *testing.T) {
	f := newFake(t, nil)
	dir := t.TempDir()
	report, md, page := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.md"), filepath.Join(dir, "r.html")
	var out, errOut bytes.Buffer
	err := bench.Main(context.Background(), f.args(
		"--scenario", "hot", "--users", "300", "--stock", "40", "--duration", "1s", "--verify=false",
		"--report", report, "--markdown", md, "--html", page,
	), &out, &errOut)
	if err != nil {
		t.Fatalf("Main: %v\n%s", err, out.String())
	}
	raw, r := readReport(t, report)
	checkContractFields(t, raw)
	checkLatencyOrder(t, r.LatencyMS)
	if r.Requests < 40 || r.DurationS < 0.9 || r.ThroughputRPS <= 0 {
		t.Errorf("requests %d in %gs at %g/s: want a real run", r.Requests, r.DurationS, r.ThroughputRPS)
	}
	var sum int64
	for _, n := range r.Status {
		sum += n
	}
	if sum != r.Requests {
		t.Errorf("status counts sum to %d, want requests %d", sum, r.Requests)
	}
	if r.Status["ok"] != 40 || r.Status["sold_out"] == 0 || r.HTTPStatus["202"] != 40 || r.HTTPStatus["410"] != r.Status["sold_out"] {
		t.Errorf("status %v, http %v: want 40 ok and the rest sold out or duplicate", r.Status, r.HTTPStatus)
	}
	inv := r.Invariants
	if inv.Verified || inv.Stock != 40 || inv.Accepted != 40 || inv.Orders != 40 || inv.Oversold != 0 || inv.DuplicateUsers != 0 || inv.Lost != 0 || !r.Passed {
		t.Errorf("invariants %+v, passed %v", inv, r.Passed)
	}
	if !r.DrainComplete || r.StopReason != "duration" || len(r.Timeline) == 0 {
		t.Errorf("drain complete %v, stop %q, timeline %d seconds", r.DrainComplete, r.StopReason, len(r.Timeline))
	}
	if errOut.Len() != 0 {
		t.Errorf("progress written to a non-terminal: %q", errOut.String())
	}
	if !strings.Contains(out.String(), "PASS") || !strings.Contains(out.String(), "req/s") {
		t.Errorf("summary:\n%s", out.String())
	}

	mdText, err := os.ReadFile(md)
	if err != nil || !bytes.Contains(mdText, []byte("# flashgate bench: hot (PASS)")) || !bytes.Contains(mdText, []byte("| sold_out |")) {
		t.Errorf("markdown (%v):\n%s", err, mdText)
	}
	pageText, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<svg", "Latency by percentile", "Answers per second", "Answers by code", "polyline"} {
		if !bytes.Contains(pageText, []byte(want)) {
			t.Errorf("html report lacks %q", want)
		}
	}
	for _, banned := range []string{"<script src", "<link", "https://", "@import"} {
		if bytes.Contains(pageText, []byte(banned)) {
			t.Errorf("html report is not self-contained: has %q", banned)
		}
	}
}

func TestMainOpenLoop(t *testing.T) {
	f := newFake(t, nil)
	report := filepath.Join(t.TempDir(), "r.json")
	var out bytes.Buffer
	err := bench.Main(context.Background(), f.args(
		"--scenario", "hot", "--users", "100", "--stock", "20", "--rate", "200", "--duration", "1s",
		"--warmup", "200ms", "--verify=false", "--report", report,
	), &out, &out)
	if err != nil {
		t.Fatalf("Main: %v\n%s", err, out.String())
	}
	raw, r := readReport(t, report)
	checkContractFields(t, raw)
	checkLatencyOrder(t, r.LatencyMS)
	// 200/s for 1s measured after a 200ms warmup: the schedule, give or
	// take the requests in flight at the edges.
	if r.Mode != "open" || r.Requests < 170 || r.Requests > 210 || r.WarmupRequests < 30 || r.WarmupRequests > 50 {
		t.Errorf("mode %s: %d requests and %d in warmup, want about 200 and 40", r.Mode, r.Requests, r.WarmupRequests)
	}
	if r.MaxSendLagMS == nil {
		t.Error("open loop report lacks max_send_lag_ms")
	}
	// Orders taken in the warmup count for the invariants.
	if r.Invariants.Accepted != 20 || r.Invariants.Orders != 20 || !r.Passed {
		t.Errorf("invariants %+v", r.Invariants)
	}
}

func TestRunVerifiesOrders(t *testing.T) {
	f := newFake(t, nil)
	r, out, err := f.run(t, "--scenario", "hot", "--users", "200", "--stock", "30", "--shards", "4", "--duration", "500ms")
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out)
	}
	inv := r.Invariants
	if !inv.Verified || inv.Accepted != 30 || inv.Orders != 30 || inv.Lost != 0 || inv.Unbalanced != 0 || !r.Passed {
		t.Errorf("invariants %+v\n%s", inv, out)
	}
	if len(r.Stats) != 1 || r.Stats[0].Stock != 30 || r.Stats[0].Remaining != 0 || r.Stats[0].Reserved != 0 {
		t.Errorf("stats %+v", r.Stats)
	}
}

func TestRunFair(t *testing.T) {
	f := newFake(t, nil)
	r, out, err := f.run(t, "--scenario", "fair", "--stock", "150", "--duration", "20s")
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out)
	}
	if r.StopReason != "every user answered" || r.Requests != 150 || r.Status["ok"] != 150 {
		t.Errorf("stop %q, %d requests, status %v: want each of 150 users once", r.StopReason, r.Requests, r.Status)
	}
	if r.Invariants.Orders != 150 || !r.Passed || len(r.Checks) != 3 {
		t.Errorf("invariants %+v, checks %+v", r.Invariants, r.Checks)
	}
}

func TestRunSoldOut(t *testing.T) {
	f := newFake(t, nil)
	r, out, err := f.run(t, "--scenario", "soldout", "--stock", "15", "--users", "100", "--duration", "500ms")
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out)
	}
	if r.Requests == 0 || r.Status["sold_out"] != r.Requests {
		t.Errorf("status %v over %d requests: want all sold_out", r.Status, r.Requests)
	}
	// The pre-sale's 202s are checked with the rest.
	if r.Invariants.Accepted != 15 || r.Invariants.Orders != 15 || r.Invariants.Lost != 0 || !r.Passed {
		t.Errorf("invariants %+v, checks %+v", r.Invariants, r.Checks)
	}
}

func TestRunBuy(t *testing.T) {
	f := newFake(t, nil)
	r, out, err := f.run(t, "--scenario", "buy", "--users", "120", "--duration", "20s")
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out)
	}
	if r.StopReason != "users exhausted" || r.Status["ok"] != 120 || r.Requests != 120 {
		t.Errorf("stop %q, status %v", r.StopReason, r.Status)
	}
	if r.Invariants.Stock != 120 || r.Invariants.Orders != 120 || !r.Passed {
		t.Errorf("invariants %+v", r.Invariants)
	}
	// The machine's Redis is read through INFO cpu: measured over the
	// run's 120 orders, with its verdict line.
	if len(r.CPU) != 2 || r.CPU[0].Server != "redis" || !r.CPU[0].Measured || r.CPU[0].Orders != 120 {
		t.Errorf("cpu %+v", r.CPU)
	}
	if !strings.Contains(out, "goal redis_cpu_per_order ≤ 5µs: ") || !strings.Contains(out, "goal storm_settled ≤ 20s: ") {
		t.Errorf("no verdict lines in the summary:\n%s", out)
	}
}

func TestRunMixed(t *testing.T) {
	if testing.Short() {
		t.Skip("waits ~3s for an item's sale to end")
	}
	f := newFake(t, nil)
	r, out, err := f.run(t, "--scenario", "mixed", "--items", "2", "--stock", "25", "--users", "150", "--duration", "700ms")
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out)
	}
	want := map[string]string{"bad_token": "unauthorized", "upcoming": "not_started", "ended": "ended", "unknown_item": "not_found"}
	for k, c := range want {
		m := r.Kinds[k]
		if len(m) != 1 || m[c] == 0 {
			t.Errorf("kind %s answered %v, want only %s", k, m, c)
		}
	}
	if r.Kinds["repeat"]["duplicate"] == 0 {
		t.Errorf("repeat buyers answered %v, want duplicates", r.Kinds["repeat"])
	}
	if r.Invariants.Stock != 50 || r.Invariants.Orders != 50 || len(r.Invariants.Items) != 2 || !r.Passed {
		t.Errorf("invariants %+v", r.Invariants)
	}
}

func TestRunCalibrate(t *testing.T) {
	f := newFake(t, nil)
	r, out, err := f.run(t, "--scenario", "hot", "--users", "100", "--stock", "10", "--duration", "500ms",
		"--calibrate", "--calibrate-duration", "300ms")
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out)
	}
	if r.CeilingRPS == nil || *r.CeilingRPS <= 0 || r.CeilingRatio == nil || *r.CeilingRatio <= 0 || r.Calibration == nil {
		t.Fatalf("calibration not reported: %+v", r.Calibration)
	}
	// The calibration's 202s are not orders.
	if r.Invariants.Accepted != 10 || !r.Passed {
		t.Errorf("invariants %+v", r.Invariants)
	}
	if !strings.Contains(out, "ceiling") {
		t.Errorf("summary lacks the ceiling:\n%s", out)
	}
}

// TestRunCPUProfile writes the generator's CPU profile of the measured load.
func TestRunCPUProfile(t *testing.T) {
	f := newFake(t, nil)
	prof := filepath.Join(t.TempDir(), "cpu.prof")
	r, out, err := f.run(t, "--scenario", "hot", "--users", "100", "--stock", "10", "--rate", "500", "--duration", "300ms", "--cpuprofile", prof)
	if err != nil || !r.Passed {
		t.Fatalf("Run: %v\n%s", err, out)
	}
	st, err := os.Stat(prof)
	if err != nil || st.Size() == 0 {
		t.Errorf("profile %v, %v", st, err)
	}
}

func TestRunDetectsBrokenInvariants(t *testing.T) {
	cases := []struct {
		name         string
		bugs         func(*fakeSystem)
		users, stock string
		check        func(bench.Invariants) bool
	}{
		{"oversold", func(f *fakeSystem) { f.oversell = true }, "20", "10", func(i bench.Invariants) bool { return i.Oversold > 0 }},
		{"duplicate users", func(f *fakeSystem) { f.ignoreDup = true }, "5", "10", func(i bench.Invariants) bool { return i.DuplicateUsers > 0 }},
		{"lost", func(f *fakeSystem) { f.loseEvery = 3 }, "20", "10", func(i bench.Invariants) bool { return i.Lost > 0 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFake(t, c.bugs)
			report := filepath.Join(t.TempDir(), "r.json")
			r, out, err := f.run(t, "--scenario", "hot", "--users", c.users, "--stock", c.stock, "--duration", "300ms", "--report", report)
			if !errors.Is(err, bench.ErrInvariant) {
				t.Fatalf("Run: %v, want ErrInvariant\n%s", err, out)
			}
			if r == nil || r.Passed || !c.check(r.Invariants) || len(r.Invariants.Broken) == 0 {
				t.Fatalf("invariants %+v", r.Invariants)
			}
			if _, err := os.Stat(report); err != nil {
				t.Errorf("report not written before failing: %v", err)
			}
			if !strings.Contains(out, "FAIL") {
				t.Errorf("summary:\n%s", out)
			}
		})
	}
}

func TestMainHelp(t *testing.T) {
	var out bytes.Buffer
	if err := bench.Main(context.Background(), []string{"--help"}, &out, &out); err != nil {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"Usage: flashgate bench", "-scenario", "-rate", "-calibrate", "FLASHGATE_AUTH_SECRET"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage lacks %q", want)
		}
	}
}

func TestMainBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--scenario", "nope"},
		{"--duration", "0s"},
		{"--target", "ftp://x"},
		{"--scenario", "fair", "--users", "3", "--stock", "4"},
		{"stray"},
		{"--setup-only"},
		{"--tokens-file", "t.txt"},
		{"--redis-addr", "no-port"},
	} {
		err := bench.Main(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{})
		if !errors.Is(err, bench.ErrUsage) {
			t.Errorf("%v: got %v, want a usage error", args, err)
		}
	}
}

// brokenOrders is an order source that cannot be read.
type brokenOrders struct{}

func (brokenOrders) Orders(context.Context, []int64) ([]bench.Order, error) {
	return nil, errors.New("mysql is down")
}

func TestRunWritesReportWhenVerifyFails(t *testing.T) {
	f := newFake(t, nil)
	dir := t.TempDir()
	report, page := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.html")
	var out bytes.Buffer
	r, err := bench.Run(context.Background(), f.args("--users", "20", "--stock", "5", "--duration", "200ms", "--report", report, "--html", page),
		bench.Options{Stdout: &out, Getenv: noEnv, Orders: brokenOrders{}})
	if err == nil || errors.Is(err, bench.ErrInvariant) || !strings.Contains(err.Error(), "mysql is down") {
		t.Fatalf("Run: %v", err)
	}
	_, written := readReport(t, report)
	if r.Passed || written.Error == "" || written.Requests == 0 {
		t.Errorf("report: passed %v, error %q, %d requests", written.Passed, written.Error, written.Requests)
	}
	if b, err := os.ReadFile(page); err != nil || !bytes.Contains(b, []byte("Not checked")) {
		t.Errorf("html report (%v) does not say the check failed", err)
	}
	if !strings.Contains(out.String(), "NOT CHECKED") {
		t.Errorf("summary:\n%s", out.String())
	}
}

// TestRunSetupOnly writes the buy run's tokens, one a line in the order the
// buy scenario sends them, and prints the item's path, without any load.
func TestRunSetupOnly(t *testing.T) {
	f := newFake(t, nil)
	file := filepath.Join(t.TempDir(), "tokens.txt")
	r, out, err := f.run(t, "--scenario", "buy", "--users", "30", "--setup-only", "--tokens-file", file)
	if err != nil || r != nil {
		t.Fatalf("Run: %v, %v\n%s", r, err, out)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 30 || !strings.HasPrefix(lines[0], "Bearer ey") || lines[0] == lines[1] {
		t.Errorf("%d token lines, first %q", len(lines), lines[0])
	}
	if !strings.Contains(out, "path /api/v1/seckill/") || !strings.Contains(out, "tokens 30 ") {
		t.Errorf("output %q", out)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.seq != 0 {
		t.Errorf("%d buys accepted during --setup-only", f.seq)
	}
}

// TestServeBare serves the calibration handler until the context ends.
func TestServeBare(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bench.Main(ctx, []string{"--serve-bare", addr}, io.Discard, io.Discard) }()
	var resp *http.Response
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err = http.Post("http://"+addr+"/api/v1/seckill/1", "", nil)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("status %d, want 202", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Main: %v", err)
	}
}
