package bench

import (
	"fmt"
	"io"
)

// goal is one line of issue 12's table: a figure a run may measure and the
// bound it must keep.
type goal struct {
	Name      string
	AtLeast   bool    // true: the figure must be ≥ Threshold; false: ≤
	Threshold float64 // in Unit
	Unit      string  // "" (a ratio), "µs", "s", "ms"
	// measure returns the run's figure and a note on how it was taken, or
	// ok false when this run does not measure the goal.
	measure func(r *Report) (v float64, note string, ok bool)
}

// goals is issue 12's table, the one place its thresholds live.
var goals = []goal{
	{Name: "soldout_ceiling_ratio", AtLeast: true, Threshold: 0.90, measure: func(r *Report) (float64, string, bool) {
		if r.Scenario != ScenarioSoldOut || r.CeilingRatio == nil || r.Mode != "closed" {
			return 0, "", false
		}
		return *r.CeilingRatio, "sold-out answers ÷ bare handler, same generator; a quiet machine is assumed", true
	}},
	{Name: "buy_ceiling_ratio", AtLeast: true, Threshold: 0.50, measure: func(r *Report) (float64, string, bool) {
		if r.Scenario != ScenarioBuy || r.CeilingRatio == nil || r.Mode != "closed" {
			return 0, "", false
		}
		return *r.CeilingRatio, "buys ÷ bare handler fed the same rotating tokens", true
	}},
	{Name: "redis_cpu_per_order", Threshold: 5, Unit: "µs", measure: cpuGoal("redis")},
	{Name: "mariadb_cpu_per_order", Threshold: 6, Unit: "µs", measure: cpuGoal("mariadb")},
	{Name: "storm_settled", Threshold: 20, Unit: "s", measure: func(r *Report) (float64, string, bool) {
		if r.Scenario != ScenarioBuy || r.Mode != "closed" || r.Error != "" {
			return 0, "", false
		}
		if !r.DrainComplete {
			return r.DrainS, "NOT settled within --drain-timeout", true
		}
		return r.DrainS, fmt.Sprintf("every 202 a row after a %.0f s storm", r.DurationS), true
	}},
	{Name: "p99_half_rate_open_loop", Threshold: 5, Unit: "ms", measure: func(r *Report) (float64, string, bool) {
		if r.Scenario != ScenarioBuy || r.Mode != "open" {
			return 0, "", false
		}
		return r.LatencyMS.P99, fmt.Sprintf("at %d req/s: the goal holds at half the maximum buy rate of a closed-loop run", r.Settings.Rate), true
	}},
}

// cpuGoal measures a server's CPU per order, when it was measured.
func cpuGoal(server string) func(r *Report) (float64, string, bool) {
	return func(r *Report) (float64, string, bool) {
		for _, c := range r.CPU {
			if c.Server == server && c.Measured {
				return c.PerOrder, fmt.Sprintf("%.3f CPU-s over %d orders", c.CPUS, c.Orders), true
			}
		}
		return 0, "", false
	}
}

// Verdict is how a run stands against one goal of issue 12.
type Verdict struct {
	Goal      string  `json:"goal"`
	Bound     string  `json:"bound"` // e.g. "≤ 5µs"
	Value     float64 `json:"value"`
	Unit      string  `json:"unit,omitempty"`
	Met       bool    `json:"met"`
	Note      string  `json:"note,omitempty"`
	Threshold float64 `json:"threshold"`
}

// verdicts judges r against every goal it measures.
func verdicts(r *Report) []Verdict {
	var out []Verdict
	for _, g := range goals {
		v, note, ok := g.measure(r)
		if !ok {
			continue
		}
		met := v <= g.Threshold
		op := "≤"
		if g.AtLeast {
			met, op = v >= g.Threshold, "≥"
		}
		if g.Name == "storm_settled" && !r.DrainComplete {
			met = false
		}
		out = append(out, Verdict{Goal: g.Name, Bound: fmt.Sprintf("%s %s%s", op, trimFloat(g.Threshold), g.Unit),
			Value: v, Unit: g.Unit, Met: met, Note: note, Threshold: g.Threshold})
	}
	return out
}

// String is the verdict line: "goal redis_cpu_per_order ≤ 5µs: 16.7µs — NOT MET".
func (v Verdict) String() string {
	state := "met"
	if !v.Met {
		state = "NOT MET"
	}
	return fmt.Sprintf("goal %s %s: %s%s — %s", v.Goal, v.Bound, trimFloat(v.Value), v.Unit, state)
}

// trimFloat prints v with up to three decimals and no trailing zeros.
func trimFloat(v float64) string {
	s := fmt.Sprintf("%.3f", v)
	for s[len(s)-1] == '0' {
		s = s[:len(s)-1]
	}
	if s[len(s)-1] == '.' {
		s = s[:len(s)-1]
	}
	return s
}

// writeCPUAndVerdicts prints the CPU lines and the verdict lines of the
// summary.
func (r *Report) writeCPUAndVerdicts(w io.Writer) {
	for _, c := range r.CPU {
		if c.Measured {
			net := ""
			if c.NetPerOrder != nil {
				net = fmt.Sprintf(", %.1f µs net of its idle %.0f ms/s", *c.NetPerOrder, *c.IdleCPUPerS*1000)
			}
			fmt.Fprintf(w, "  cpu        %s %.1f µs per persisted order%s (%.3f CPU-s ÷ %d orders; %s; %s)\n", c.Server, c.PerOrder, net, c.CPUS, c.Orders, c.Source, c.Note)
		} else {
			fmt.Fprintf(w, "  cpu        %s per order not measured: %s\n", c.Server, c.Reason)
		}
	}
	for _, v := range r.Verdicts {
		fmt.Fprintf(w, "  %s", v)
		if v.Note != "" {
			fmt.Fprintf(w, " (%s)", v.Note)
		}
		fmt.Fprintln(w)
	}
}
