package bench

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// markdown renders the report as a Markdown summary.
func (r *Report) markdown() []byte {
	var b bytes.Buffer
	result := "PASS"
	if !r.Passed {
		result = "FAIL"
	}
	fmt.Fprintf(&b, "# flashgate bench: %s (%s)\n\n", r.Scenario, result)
	fmt.Fprintf(&b, "Started %s against `%s`, %s loop", r.StartedAt.Format("2006-01-02 15:04:05 MST"), r.Settings.Target, r.Mode)
	if r.Mode == "open" {
		fmt.Fprintf(&b, " at %d req/s (%d in flight at most)", r.Settings.Rate, r.Settings.Concurrency)
	} else {
		fmt.Fprintf(&b, " with %d workers", r.Settings.Concurrency)
	}
	fmt.Fprintf(&b, ", %d connections, %s (warmup %s), %d users, stock %d per item; stopped by %s. Go %s, GOMAXPROCS %d.\n\n",
		r.Settings.Connections, r.Settings.Duration, r.Settings.Warmup, r.Settings.Users, r.Settings.Stock, r.StopReason,
		r.Settings.GoVersion, r.Settings.GOMAXPROCS)

	b.WriteString("## Load\n\n| metric | value |\n| --- | ---: |\n")
	row := func(k, v string) { fmt.Fprintf(&b, "| %s | %s |\n", k, v) }
	row("requests", fmt.Sprint(r.Requests))
	row("duration", fmt.Sprintf("%.3f s", r.DurationS))
	row("throughput", fmt.Sprintf("%.1f req/s", r.ThroughputRPS))
	if r.CeilingRPS != nil {
		row("ceiling (bare fasthttp, closed loop)", fmt.Sprintf("%.1f req/s", *r.CeilingRPS))
	}
	if r.CeilingRatio != nil {
		row("ceiling ratio", fmt.Sprintf("%.4f", *r.CeilingRatio))
	}
	if r.MaxSendLagMS != nil {
		row("worst send lag behind schedule", fmt.Sprintf("%.3f ms", *r.MaxSendLagMS))
	}
	row("setup", fmt.Sprintf("%.3f s", r.SetupS))
	row("drain", fmt.Sprintf("%.3f s (settled: %v)", r.DrainS, r.DrainComplete))

	b.WriteString("\n## Latency (ms)\n\n| p50 | p90 | p99 | p99.9 | max | mean |\n| ---: | ---: | ---: | ---: | ---: | ---: |\n")
	l := r.LatencyMS
	fmt.Fprintf(&b, "| %.3f | %.3f | %.3f | %.3f | %.3f | %.3f |\n", l.P50, l.P90, l.P99, l.P999, l.Max, l.Mean)
	if r.Calibration != nil {
		c := r.Calibration.LatencyMS
		fmt.Fprintf(&b, "\nCalibration (bare handler): %.1f req/s; p50 %.3f, p99 %.3f, max %.3f ms.\n", r.Calibration.ThroughputRPS, c.P50, c.P99, c.Max)
	}

	b.WriteString("\n## Answers\n\n| code | count | share |\n| --- | ---: | ---: |\n")
	for _, e := range sortedCounts(r.Status) {
		fmt.Fprintf(&b, "| %s | %d | %.2f%% |\n", e.Name, e.Count, 100*float64(e.Count)/float64(max(r.Requests, 1)))
	}
	b.WriteString("\n| HTTP status | count |\n| --- | ---: |\n")
	for _, e := range sortedCounts(r.HTTPStatus) {
		fmt.Fprintf(&b, "| %s | %d |\n", e.Name, e.Count)
	}
	if len(r.Kinds) > 0 {
		b.WriteString("\n| request kind | answers |\n| --- | --- |\n")
		for _, k := range slices.Sorted(maps.Keys(r.Kinds)) {
			var parts []string
			for _, e := range sortedCounts(r.Kinds[k]) {
				parts = append(parts, fmt.Sprintf("%s %d", e.Name, e.Count))
			}
			fmt.Fprintf(&b, "| %s | %s |\n", k, strings.Join(parts, ", "))
		}
	}
	if len(r.Errors) > 0 {
		b.WriteString("\nTransport errors, for example:\n\n")
		for _, e := range r.Errors {
			fmt.Fprintf(&b, "- `%s`\n", e)
		}
	}

	inv := r.Invariants
	b.WriteString("\n## Invariants\n\n")
	if r.Error != "" {
		fmt.Fprintf(&b, "**Not checked:** %s\n", r.Error)
		return b.Bytes()
	}
	if inv.Verified {
		b.WriteString("Orders read from `seckill_order`.\n\n")
	} else {
		b.WriteString("Admin stats only (`--verify=false`): `lost` was not checked.\n\n")
	}
	b.WriteString("| item | stock | accepted | orders | reserved | remaining | oversold | duplicate users | lost | unbalanced |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	fmt.Fprintf(&b, "| all | %d | %d | %d | %d | %d | %d | %d | %d | %d |\n", inv.Stock, inv.Accepted, inv.Orders, inv.Reserved, inv.Remaining, inv.Oversold, inv.DuplicateUsers, inv.Lost, inv.Unbalanced)
	for _, it := range inv.Items {
		fmt.Fprintf(&b, "| %d | %d | %d | %d | %d | %d | %d | %d | %d | %d |\n", it.ItemID, it.Stock, it.Accepted, it.Orders, it.Reserved, it.Remaining, it.Oversold, it.DuplicateUsers, it.Lost, it.Unbalanced)
	}
	for _, br := range inv.Broken {
		fmt.Fprintf(&b, "\n**Broken:** %s\n", br)
	}
	if len(r.Checks) > 0 {
		b.WriteString("\n| check | result | detail |\n| --- | --- | --- |\n")
		for _, c := range r.Checks {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", c.Name, c.Result, c.Detail)
		}
	}

	if len(r.CPU) > 0 || len(r.Verdicts) > 0 {
		b.WriteString("\n## Cost and goals (issue 12)\n\n")
		for _, c := range r.CPU {
			if c.Measured {
				fmt.Fprintf(&b, "- %s: **%.1f µs CPU per persisted order** (%.3f CPU-s ÷ %d orders; %s; %s)", c.Server, c.PerOrder, c.CPUS, c.Orders, c.Source, c.Note)
				if c.NetPerOrder != nil {
					fmt.Fprintf(&b, "; %.1f µs net of its idle %.0f ms/s", *c.NetPerOrder, *c.IdleCPUPerS*1000)
				}
				b.WriteString("\n")
			} else {
				fmt.Fprintf(&b, "- %s: CPU per order not measured: %s\n", c.Server, c.Reason)
			}
		}
		if len(r.Verdicts) > 0 {
			b.WriteString("\n")
		}
		for _, v := range r.Verdicts {
			fmt.Fprintf(&b, "- `%s`", v)
			if v.Note != "" {
				fmt.Fprintf(&b, " (%s)", v.Note)
			}
			b.WriteString("\n")
		}
	}

	if len(r.Timeline) > 0 {
		b.WriteString("\n## Timeline\n\n| s | requests | ok | errors | p50 ms | p99 ms | max ms |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, s := range r.Timeline {
			fmt.Fprintf(&b, "| %d | %d | %d | %d | %.3f | %.3f | %.3f |\n", s.T, s.Requests, s.OK, s.Errors, s.P50MS, s.P99MS, s.MaxMS)
		}
	}
	return b.Bytes()
}
