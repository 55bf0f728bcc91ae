package bench

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Report is the outcome of a bench run, as written by --report (JSON),
// --markdown and --html. Counts and latencies cover the measured part of
// the run (after the warmup).
type Report struct {
	Scenario  string    `json:"scenario"`
	Mode      string    `json:"mode"` // "closed" or "open" loop
	StartedAt time.Time `json:"started_at"`
	Settings  Settings  `json:"settings"`
	Items     []Item    `json:"items"`

	Requests       int64   `json:"requests"`
	WarmupRequests int64   `json:"warmup_requests"`
	DurationS      float64 `json:"duration_s"`
	ThroughputRPS  float64 `json:"throughput_rps"`
	// LatencyMS is measured from the send (closed loop) or from when the
	// request was due (open loop) to the end of the answer.
	LatencyMS           Latency    `json:"latency_ms"`
	LatencyDistribution []Quantile `json:"latency_distribution"`
	// Status counts answers by their contract code, plus "transport_error"
	// (no answer), "no_code" and "other".
	Status map[string]int64 `json:"status"`
	// HTTPStatus counts answers by HTTP status.
	HTTPStatus map[string]int64 `json:"http_status"`
	// Kinds counts answers by what the request tested, then by code, for
	// the scenarios that mix expectations (warmup included).
	Kinds map[string]map[string]int64 `json:"kinds,omitempty"`
	// Errors samples the transport errors.
	Errors []string `json:"errors,omitempty"`
	// StopReason says what ended the load: "duration", "users exhausted",
	// "every user answered" or "interrupted".
	StopReason string `json:"stop_reason"`
	// MaxSendLagMS is, in open loop, the worst delay between when a request
	// was due and when a worker sent it: large means the generator, not
	// only the target, fell behind the rate.
	MaxSendLagMS *float64 `json:"max_send_lag_ms,omitempty"`
	Timeline     []Second `json:"timeline"`

	CeilingRPS   *float64     `json:"ceiling_rps,omitempty"`
	CeilingRatio *float64     `json:"ceiling_ratio,omitempty"`
	Calibration  *Calibration `json:"calibration,omitempty"`

	// CPU is each server's CPU per persisted order, or why it was not
	// measured (--cpu).
	CPU []CPUCost `json:"cpu,omitempty"`
	// Verdicts judge the run against the goals of issue 12 it measures.
	Verdicts []Verdict `json:"verdicts,omitempty"`

	SetupS        float64     `json:"setup_s"`
	DrainS        float64     `json:"drain_s"`
	DrainComplete bool        `json:"drain_complete"`
	Stats         []ItemStats `json:"stats"`
	Invariants    Invariants  `json:"invariants"`
	// Checks are the scenario's own promises (every unit of fair sells, no
	// 202 after sold out, no 202 for an item not on sale).
	Checks []Check `json:"checks,omitempty"`
	// Passed is true when every invariant and check holds.
	Passed bool `json:"passed"`
	// Error says why the invariants could not be checked, if they could
	// not (the admin stats or MySQL unreachable).
	Error string `json:"error,omitempty"`
}

// Settings records how the run was set up.
type Settings struct {
	Target      string `json:"target"`
	Admin       string `json:"admin"`
	Concurrency int    `json:"concurrency"`
	Connections int    `json:"connections"`
	Rate        int    `json:"rate,omitempty"`
	Duration    string `json:"duration"`
	Warmup      string `json:"warmup"`
	Timeout     string `json:"timeout"`
	Users       int    `json:"users"`
	UserBase    int64  `json:"user_base"`
	Stock       int    `json:"stock"`
	Shards      int    `json:"shards,omitempty"`
	ItemID      int64  `json:"item,omitempty"`
	Verify      bool   `json:"verify"`
	Calibrate   bool   `json:"calibrate"`
	GOMAXPROCS  int    `json:"gomaxprocs"`
	NumCPU      int    `json:"num_cpu"`
	GoVersion   string `json:"go_version"`
}

// Item is an item the load targeted.
type Item struct {
	ID   int64  `json:"id"`
	Role string `json:"role"`
}

// Latency holds percentiles in milliseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// Quantile is one point of the latency distribution.
type Quantile struct {
	Percentile float64 `json:"percentile"`
	MS         float64 `json:"ms"`
}

// Second is one second of the measured run, counted when answers arrived.
type Second struct {
	T        int     `json:"t"`
	Requests int64   `json:"requests"`
	OK       int64   `json:"ok"`
	Errors   int64   `json:"errors"` // transport errors and HTTP 5xx
	P50MS    float64 `json:"p50_ms"`
	P99MS    float64 `json:"p99_ms"`
	MaxMS    float64 `json:"max_ms"`
}

// Calibration is the run against the bare in-process handler.
type Calibration struct {
	Mode          string  `json:"mode"`
	DurationS     float64 `json:"duration_s"`
	Requests      int64   `json:"requests"`
	ThroughputRPS float64 `json:"throughput_rps"`
	LatencyMS     Latency `json:"latency_ms"`
}

// Check is one of the scenario's promises.
type Check struct {
	Name   string `json:"name"`
	Result string `json:"result"` // "pass", "fail" or "skip"
	Detail string `json:"detail,omitempty"`
}

func millis(us int64) float64 { return math.Round(float64(us)) / 1000 }

// latencyOf reads the percentiles of a histogram in microseconds.
func latencyOf(h *hdrhistogram.Histogram) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	return Latency{
		P50:  millis(h.ValueAtPercentile(50)),
		P90:  millis(h.ValueAtPercentile(90)),
		P99:  millis(h.ValueAtPercentile(99)),
		P999: millis(h.ValueAtPercentile(99.9)),
		Max:  millis(h.Max()),
		Mean: math.Round(h.Mean()) / 1000,
	}
}

// distributionOf samples the latency distribution evenly on the "nines"
// scale (90%, 99%, 99.9%…), as far as the sample count supports it.
func distributionOf(h *hdrhistogram.Histogram) []Quantile {
	n := h.TotalCount()
	if n == 0 {
		return nil
	}
	top := min(6, math.Log10(float64(n)))
	var out []Quantile
	for x := 0.0; x <= top+1e-9; x += 0.1 {
		p := 100 * (1 - math.Pow(10, -x))
		out = append(out, Quantile{Percentile: math.Round(p*10000) / 10000, MS: millis(h.ValueAtPercentile(p))})
	}
	return append(out, Quantile{Percentile: 100, MS: millis(h.Max())})
}

// newReport assembles the load's part of the report.
func newReport(cfg *params, p *plan, res *loadResult, startedAt time.Time) *Report {
	r := &Report{
		Scenario:  cfg.Scenario,
		Mode:      cfg.mode(),
		StartedAt: startedAt.UTC(),
		Settings: Settings{
			Target: cfg.Target, Admin: cfg.Admin,
			Concurrency: cfg.Concurrency, Connections: cfg.Connections, Rate: cfg.Rate,
			Duration: cfg.Duration.String(), Warmup: cfg.Warmup.String(), Timeout: cfg.Timeout.String(),
			Users: cfg.Users, UserBase: cfg.UserBase, Stock: cfg.Stock, Shards: cfg.Shards, ItemID: cfg.ItemID,
			Verify: cfg.Verify, Calibrate: cfg.Calibrate,
			GOMAXPROCS: runtime.GOMAXPROCS(0), NumCPU: runtime.NumCPU(), GoVersion: runtime.Version(),
		},
		Requests:            res.requests,
		WarmupRequests:      res.warmupReqs,
		DurationS:           round3(res.elapsed.Seconds()),
		ThroughputRPS:       round1(float64(res.requests) / res.elapsed.Seconds()),
		LatencyMS:           latencyOf(res.hist),
		LatencyDistribution: distributionOf(res.hist),
		Status:              map[string]int64{},
		HTTPStatus:          map[string]int64{},
		Errors:              res.errSamples,
		StopReason:          res.stopReason,
		SetupS:              round3(p.setupDur.Seconds()),
	}
	for i, id := range p.items {
		r.Items = append(r.Items, Item{ID: id, Role: p.names[i]})
	}
	for c, n := range res.codes {
		if n > 0 {
			r.Status[code(c).String()] = n
		}
	}
	for s, n := range res.statuses {
		r.HTTPStatus[strconv.Itoa(s)] = n
	}
	if cfg.Scenario == ScenarioMixed {
		r.Kinds = map[string]map[string]int64{}
		for k := range res.kinds {
			m := map[string]int64{}
			for c, n := range res.kinds[k] {
				if n > 0 {
					m[code(c).String()] = n
				}
			}
			if len(m) > 0 {
				r.Kinds[kind(k).String()] = m
			}
		}
	}
	if !cfg.closedLoop() {
		lag := round3(float64(res.maxLag.Microseconds()) / 1000)
		r.MaxSendLagMS = &lag
	}
	for i, s := range res.timeline {
		sec := Second{T: i, Requests: s.requests, OK: s.ok, Errors: s.errors}
		if s.hist != nil {
			sec.P50MS = millis(s.hist.ValueAtPercentile(50))
			sec.P99MS = millis(s.hist.ValueAtPercentile(99))
			sec.MaxMS = millis(s.hist.Max())
		}
		r.Timeline = append(r.Timeline, sec)
	}
	return r
}

// setCalibration records the ceiling measured by --calibrate.
func (r *Report) setCalibration(res *loadResult) {
	c := &Calibration{
		Mode:          "closed",
		DurationS:     round3(res.elapsed.Seconds()),
		Requests:      res.requests,
		ThroughputRPS: round1(float64(res.requests) / res.elapsed.Seconds()),
		LatencyMS:     latencyOf(res.hist),
	}
	r.Calibration = c
	ceiling := c.ThroughputRPS
	r.CeilingRPS = &ceiling
	if ceiling > 0 {
		ratio := math.Round(r.ThroughputRPS/ceiling*10000) / 10000
		r.CeilingRatio = &ratio
	}
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }
func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// writeJSON writes the report to path.
func (r *Report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	return writeFile(path, append(b, '\n'))
}

func writeFile(path string, b []byte) error {
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// countEntry is one entry of a count map.
type countEntry struct {
	Name  string
	Count int64
}

// sortedCounts returns a count map's entries, largest first.
func sortedCounts(m map[string]int64) []countEntry {
	out := make([]countEntry, 0, len(m))
	for k, v := range m {
		out = append(out, countEntry{k, v})
	}
	slices.SortFunc(out, func(a, b countEntry) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// writeSummary prints the few lines a human reads after a run.
func (r *Report) writeSummary(w io.Writer) {
	loop := fmt.Sprintf("closed loop, %d workers", r.Settings.Concurrency)
	if r.Mode == "open" {
		loop = fmt.Sprintf("open loop at %d req/s, %d in flight at most", r.Settings.Rate, r.Settings.Concurrency)
	}
	fmt.Fprintf(w, "flashgate bench: scenario %s, %s, %d connections, stopped by %s\n", r.Scenario, loop, r.Settings.Connections, r.StopReason)
	fmt.Fprintf(w, "  requests   %d in %.2fs = %.0f req/s", r.Requests, r.DurationS, r.ThroughputRPS)
	if r.CeilingRPS != nil && r.CeilingRatio != nil {
		fmt.Fprintf(w, " (ceiling %.0f req/s, ratio %.3f)", *r.CeilingRPS, *r.CeilingRatio)
	}
	fmt.Fprintln(w)
	l := r.LatencyMS
	fmt.Fprintf(w, "  latency ms p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n", l.P50, l.P90, l.P99, l.P999, l.Max)
	var parts []string
	for _, e := range sortedCounts(r.Status) {
		parts = append(parts, fmt.Sprintf("%s %d", e.Name, e.Count))
	}
	fmt.Fprintf(w, "  status     %s\n", strings.Join(parts, ", "))
	if n := r.Status[codeRateLimited.String()]; n > r.Requests/2 {
		fmt.Fprintf(w, "  hint       %d of %d answers were rate_limited: run the gateway with FLASHGATE_IP_RATE=0 (and FLASHGATE_USER_RATE=0) to measure the sale, not the limiter\n", n, r.Requests)
	}
	if n := r.Status[codeTransport.String()]; n > 0 && len(r.Errors) > 0 {
		fmt.Fprintf(w, "  errors     %d without an answer, e.g. %s\n", n, r.Errors[0])
	}
	if r.Error != "" {
		fmt.Fprintf(w, "  invariants NOT CHECKED: %s\n  result     FAIL\n", r.Error)
		return
	}
	inv := r.Invariants
	verified := "from seckill_order"
	if !inv.Verified {
		verified = "from admin stats only (--verify=false): lost not checked"
	}
	fmt.Fprintf(w, "  invariants stock %d, accepted %d, orders %d, reserved %d, remaining %d, oversold %d, duplicate_users %d, lost %d (%s; drained in %.2fs%s)\n",
		inv.Stock, inv.Accepted, inv.Orders, inv.Reserved, inv.Remaining, inv.Oversold, inv.DuplicateUsers, inv.Lost,
		verified, r.DrainS, unsettled(r.DrainComplete))
	for _, c := range r.Checks {
		fmt.Fprintf(w, "  check      %s: %s", c.Name, c.Result)
		if c.Detail != "" {
			fmt.Fprintf(w, " (%s)", c.Detail)
		}
		fmt.Fprintln(w)
	}
	for _, b := range inv.Broken {
		fmt.Fprintf(w, "  BROKEN     %s\n", b)
	}
	r.writeCPUAndVerdicts(w)
	if r.Passed {
		fmt.Fprintln(w, "  result     PASS")
	} else {
		fmt.Fprintln(w, "  result     FAIL")
	}
}

func unsettled(complete bool) string {
	if complete {
		return ""
	}
	return ", NOT settled"
}
