package bench

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/flashgate/flashgate/internal/auth"
)

func ptr(v float64) *float64 { return &v }

// TestVerdicts checks each goal of issue 12 against runs that meet it,
// miss it, and do not measure it.
func TestVerdicts(t *testing.T) {
	cpu := []CPUCost{
		{Server: "redis", Measured: true, PerOrder: 16.7, CPUS: 4.3, Orders: 257000},
		{Server: "mariadb", Measured: true, PerOrder: 6, CPUS: 1.5, Orders: 257000},
	}
	cases := []struct {
		name string
		r    Report
		want []string // verdict lines, in the table's order
	}{
		{"soldout met", Report{Scenario: ScenarioSoldOut, Mode: "closed", CeilingRatio: ptr(0.92)},
			[]string{"goal soldout_ceiling_ratio ≥ 0.9: 0.92 — met"}},
		{"soldout missed", Report{Scenario: ScenarioSoldOut, Mode: "closed", CeilingRatio: ptr(0.76)},
			[]string{"goal soldout_ceiling_ratio ≥ 0.9: 0.76 — NOT MET"}},
		{"soldout without --calibrate measures nothing", Report{Scenario: ScenarioSoldOut, Mode: "closed"}, nil},
		{"buy closed loop", Report{Scenario: ScenarioBuy, Mode: "closed", CeilingRatio: ptr(0.5), CPU: cpu, DrainS: 3.7, DrainComplete: true, DurationS: 8},
			[]string{
				"goal buy_ceiling_ratio ≥ 0.5: 0.5 — met",
				"goal redis_cpu_per_order ≤ 5µs: 16.7µs — NOT MET",
				"goal mariadb_cpu_per_order ≤ 6µs: 6µs — met",
				"goal storm_settled ≤ 20s: 3.7s — met",
			}},
		{"storm not settled", Report{Scenario: ScenarioBuy, Mode: "closed", DrainS: 12, DrainComplete: false},
			[]string{"goal storm_settled ≤ 20s: 12s — NOT MET"}},
		{"buy open loop", Report{Scenario: ScenarioBuy, Mode: "open", LatencyMS: Latency{P99: 8.4}, CeilingRatio: ptr(0.2), DrainComplete: true},
			[]string{"goal p99_half_rate_open_loop ≤ 5ms: 8.4ms — NOT MET"}},
		{"cpu not measured", Report{Scenario: ScenarioHot, Mode: "closed", CPU: []CPUCost{{Server: "redis", Reason: "x"}}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, v := range verdicts(&c.r) {
				got = append(got, v.String())
			}
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}

// TestGoalsTable keeps issue 12's thresholds in the one table.
func TestGoalsTable(t *testing.T) {
	want := map[string]float64{
		"soldout_ceiling_ratio": 0.90, "buy_ceiling_ratio": 0.50, "redis_cpu_per_order": 5,
		"mariadb_cpu_per_order": 6, "storm_settled": 20, "p99_half_rate_open_loop": 5,
	}
	if len(goals) != len(want) {
		t.Fatalf("%d goals, want %d", len(goals), len(want))
	}
	for _, g := range goals {
		if th, ok := want[g.Name]; !ok || th != g.Threshold {
			t.Errorf("goal %s threshold %v, want %v", g.Name, g.Threshold, th)
		}
	}
}

// TestCalibrationRotatesLikeBuy holds the buys ceiling to "a bare handler
// fed the same rotating tokens": the calibration sends the buy run's
// tokens in the buy run's order, and keeps going after the buy run's
// users are spent.
func TestCalibrationRotatesLikeBuy(t *testing.T) {
	p := &plan{items: []int64{7}, onSale: []int{0}, tokens: mintTokens(auth.NewSigner([]byte("0123456789abcdef0123456789abcdef")), 100, 50, time.Now().Add(time.Hour))}
	buy, cal := buyPicker(p), calibrationPicker(p)
	var b, c shot
	for i := range 50 {
		if !buy.next(nil, &b) || !cal.next(nil, &c) {
			t.Fatalf("shot %d: a picker ran dry", i)
		}
		if b.user != c.user || !bytes.Equal(b.tok, c.tok) || b.item != c.item || b.id != int64(100+i) {
			t.Fatalf("shot %d: buy user %d, calibration user %d", i, b.user, c.user)
		}
	}
	if buy.next(nil, &b) {
		t.Error("buy sent a user twice")
	}
	if !cal.next(nil, &c) || c.user != 0 {
		t.Errorf("calibration stopped or did not start over: user %d", c.user)
	}
}
