package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"html/template"
	"math"
	"strings"
)

// The HTML report is one file with its charts drawn as inline SVG: it opens
// offline, from a CI artifact or a mail attachment, with nothing to fetch.

const chartW, chartH = 720.0, 260.0
const padL, padR, padT, padB = 64.0, 16.0, 28.0, 40.0

// series is one line of a chart.
type series struct {
	name  string
	color string
	pts   [][2]float64
}

// tick is one labelled mark of an axis.
type tick struct {
	at    float64
	label string
}

// svgFrame opens an SVG with a title and axes scaled to xMax and yMax.
func svgFrame(b *strings.Builder, title string, xTicks []tick, xMax, yMax float64, yUnit string) (sx, sy func(float64) float64) {
	sx = func(x float64) float64 { return padL + x/xMax*(chartW-padL-padR) }
	sy = func(y float64) float64 { return chartH - padB - y/yMax*(chartH-padT-padB) }
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %g %g" width="%g" height="%g" role="img">`, chartW, chartH, chartW, chartH)
	fmt.Fprintf(b, `<title>%s</title><text x="%g" y="18" class="t">%s</text>`, html.EscapeString(title), padL, html.EscapeString(title))
	for i := 0; i <= 4; i++ {
		y := yMax * float64(i) / 4
		fmt.Fprintf(b, `<line x1="%g" x2="%g" y1="%.1f" y2="%.1f" class="g"/>`, padL, chartW-padR, sy(y), sy(y))
		fmt.Fprintf(b, `<text x="%g" y="%.1f" class="yl">%s</text>`, padL-6, sy(y)+4, html.EscapeString(fmtAxis(y)+yUnit))
	}
	for _, t := range xTicks {
		fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%g" y2="%g" class="a"/>`, sx(t.at), sx(t.at), chartH-padB, chartH-padB+4)
		fmt.Fprintf(b, `<text x="%.1f" y="%g" class="xl">%s</text>`, sx(t.at), chartH-padB+18, html.EscapeString(t.label))
	}
	fmt.Fprintf(b, `<line x1="%g" x2="%g" y1="%g" y2="%g" class="a"/>`, padL, chartW-padR, chartH-padB, chartH-padB)
	fmt.Fprintf(b, `<line x1="%g" x2="%g" y1="%g" y2="%g" class="a"/>`, padL, padL, padT, chartH-padB)
	return sx, sy
}

// legend draws the names of the series in their colors.
func legend(b *strings.Builder, names, colors []string) {
	x := chartW - padR
	for i := len(names) - 1; i >= 0; i-- {
		x -= float64(len(names[i]))*7 + 22
		fmt.Fprintf(b, `<rect x="%.1f" y="8" width="10" height="10" fill="%s"/><text x="%.1f" y="17" class="lg">%s</text>`, x, colors[i], x+14, html.EscapeString(names[i]))
	}
}

// lineChart draws series over a shared x axis.
func lineChart(title string, ss []series, xTicks []tick, xMax float64, yUnit string) template.HTML {
	yMax := 0.0
	for _, s := range ss {
		for _, p := range s.pts {
			yMax = max(yMax, p[1])
		}
	}
	yMax = niceCeil(yMax)
	var b strings.Builder
	sx, sy := svgFrame(&b, title, xTicks, max(xMax, 1e-9), yMax, yUnit)
	var names, colors []string
	for _, s := range ss {
		if len(s.pts) == 0 {
			continue
		}
		var pts []string
		for _, p := range s.pts {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", sx(p[0]), sy(p[1])))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`, s.color, strings.Join(pts, " "))
		names, colors = append(names, s.name), append(colors, s.color)
	}
	legend(&b, names, colors)
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // numbers and escaped labels only
}

// stackedBars draws one stacked bar per second.
func stackedBars(title string, rows [][]float64, names, colors []string, yUnit string) template.HTML {
	yMax := 0.0
	for _, r := range rows {
		sum := 0.0
		for _, v := range r {
			sum += v
		}
		yMax = max(yMax, sum)
	}
	yMax = niceCeil(yMax)
	n := float64(max(len(rows), 1))
	var xTicks []tick
	step := max(1, len(rows)/10)
	for i := 0; i < len(rows); i += step {
		xTicks = append(xTicks, tick{at: float64(i) + 0.5, label: fmt.Sprintf("%ds", i)})
	}
	var b strings.Builder
	sx, sy := svgFrame(&b, title, xTicks, n, yMax, yUnit)
	w := (chartW - padL - padR) / n * 0.8
	for i, r := range rows {
		base := 0.0
		for j, v := range r {
			if v <= 0 {
				continue
			}
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%ds %s %g</title></rect>`,
				sx(float64(i)+0.1), sy(base+v), w, sy(base)-sy(base+v), colors[j], i, html.EscapeString(names[j]), v)
			base += v
		}
	}
	legend(&b, names, colors)
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // numbers and escaped labels only
}

// hBars draws one horizontal bar per entry, with its count and share.
func hBars(title string, entries []countEntry, total int64) template.HTML {
	rowH := 24.0
	h := padT + rowH*float64(max(len(entries), 1)) + 12
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %g %g" width="%g" height="%g" role="img">`, chartW, h, chartW, h)
	fmt.Fprintf(&b, `<title>%s</title><text x="%g" y="18" class="t">%s</text>`, html.EscapeString(title), 8.0, html.EscapeString(title))
	top := int64(1)
	for _, e := range entries {
		top = max(top, e.Count)
	}
	labelW, barMax := 140.0, chartW-140-200
	for i, e := range entries {
		y := padT + rowH*float64(i)
		w := float64(e.Count) / float64(top) * barMax
		fmt.Fprintf(&b, `<text x="%g" y="%.1f" class="yl">%s</text>`, labelW-8, y+15, html.EscapeString(e.Name))
		fmt.Fprintf(&b, `<rect x="%g" y="%.1f" width="%.1f" height="%g" fill="%s"/>`, labelW, y+3, max(w, 1), rowH-6, codeColor(e.Name))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="lg">%d (%.2f%%)</text>`, labelW+max(w, 1)+6, y+15, e.Count, 100*float64(e.Count)/float64(max(total, 1)))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // numbers and escaped labels only
}

// codeColor gives the codes stable colors: success green, refusals the
// shopper caused blue, capacity answers orange, failures red.
func codeColor(c string) string {
	switch c {
	case "ok":
		return "#2e9e4f"
	case "sold_out", "duplicate":
		return "#3b75c4"
	case "rate_limited", "unavailable":
		return "#e08a1e"
	case "internal", "transport_error", "no_code", "other":
		return "#d23c3c"
	}
	return "#8a6bbf"
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// fmtAxis prints an axis value without needless digits.
func fmtAxis(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%gM", math.Round(v/1e5)/10)
	case v >= 1e4:
		return fmt.Sprintf("%gk", math.Round(v/100)/10)
	}
	return fmt.Sprintf("%g", math.Round(v*1000)/1000)
}

// nines maps a percentile to its distance in "nines": 90% is 1, 99% is 2.
func nines(p float64) float64 {
	if p >= 100 {
		return 6
	}
	return min(6, -math.Log10(1-p/100))
}

// htmlView is what the page template shows.
type htmlView struct {
	R                             *Report
	Result                        string
	Latency, Throughput, OverTime template.HTML
	Status                        template.HTML
	Ceiling, Ratio                string // empty without --calibrate
	JSON                          string
}

// html renders the report as one self-contained page.
func (r *Report) html() ([]byte, error) {
	v := htmlView{R: r, Result: "PASS"}
	if !r.Passed {
		v.Result = "FAIL"
	}
	if r.CeilingRPS != nil {
		v.Ceiling = fmt.Sprintf("%.1f/s", *r.CeilingRPS)
	}
	if r.CeilingRatio != nil {
		v.Ratio = fmt.Sprintf("%.4f", *r.CeilingRatio)
	}

	var dist series
	dist.name, dist.color = "latency", "#3b75c4"
	top := 0.0
	for _, q := range r.LatencyDistribution {
		x := nines(q.Percentile)
		top = max(top, x)
		dist.pts = append(dist.pts, [2]float64{x, q.MS})
	}
	var xt []tick
	for i, l := range []string{"0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "max"} {
		if float64(i) <= top+1e-9 {
			xt = append(xt, tick{float64(i), l})
		}
	}
	v.Latency = lineChart("Latency by percentile (ms)", []series{dist}, xt, max(top, 1), "")

	var rows [][]float64
	var p50, p99, pmax series
	p50.name, p50.color = "p50", "#2e9e4f"
	p99.name, p99.color = "p99", "#e08a1e"
	pmax.name, pmax.color = "max", "#d23c3c"
	var tt []tick
	step := max(1, len(r.Timeline)/10)
	for i, s := range r.Timeline {
		rows = append(rows, []float64{float64(s.OK), float64(s.Requests - s.OK - s.Errors), float64(s.Errors)})
		x := float64(s.T) + 0.5
		p50.pts = append(p50.pts, [2]float64{x, s.P50MS})
		p99.pts = append(p99.pts, [2]float64{x, s.P99MS})
		pmax.pts = append(pmax.pts, [2]float64{x, s.MaxMS})
		if i%step == 0 {
			tt = append(tt, tick{x, fmt.Sprintf("%ds", s.T)})
		}
	}
	v.Throughput = stackedBars("Answers per second", rows, []string{"ok", "refused", "errors"}, []string{"#2e9e4f", "#3b75c4", "#d23c3c"}, "")
	v.OverTime = lineChart("Latency over time (ms)", []series{p50, p99, pmax}, tt, float64(max(len(r.Timeline), 1)), "")
	v.Status = hBars("Answers by code", sortedCounts(r.Status), r.Requests)

	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode report: %w", err)
	}
	v.JSON = string(js)

	t, err := template.New("report").Funcs(template.FuncMap{"sorted": sortedCounts}).Parse(pageTemplate)
	if err != nil {
		return nil, fmt.Errorf("parse html template: %w", err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, v); err != nil {
		return nil, fmt.Errorf("render html report: %w", err)
	}
	return b.Bytes(), nil
}

const pageTemplate = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>flashgate bench: {{.R.Scenario}} ({{.Result}})</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:760px;color:#222}
h1{font-size:22px}h2{font-size:17px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
.PASS{color:#2e9e4f}.FAIL{color:#d23c3c}
svg{display:block;margin:12px 0;max-width:100%;height:auto}
svg .t{font-weight:600;font-size:13px}svg .g{stroke:#eee}svg .a{stroke:#888}
svg .yl{font-size:11px;text-anchor:end;fill:#555}svg .xl{font-size:11px;text-anchor:middle;fill:#555}svg .lg{font-size:11px;fill:#333}
pre{background:#f7f7f7;padding:8px;overflow:auto;font-size:12px}
</style></head><body>
<h1>flashgate bench: {{.R.Scenario}} <span class="{{.Result}}">{{.Result}}</span></h1>
<p>Started {{.R.StartedAt.Format "2006-01-02 15:04:05 MST"}} against <code>{{.R.Settings.Target}}</code>,
{{.R.Mode}} loop{{if eq .R.Mode "open"}} at {{.R.Settings.Rate}} req/s{{end}}, {{.R.Settings.Concurrency}} workers,
{{.R.Settings.Connections}} connections, {{.R.Settings.Duration}} (warmup {{.R.Settings.Warmup}}), {{.R.Settings.Users}} users,
stock {{.R.Settings.Stock}}; stopped by {{.R.StopReason}}. {{.R.Settings.GoVersion}}, GOMAXPROCS {{.R.Settings.GOMAXPROCS}}.</p>
<table>
<tr><th>requests</th><th>duration</th><th>throughput</th>{{if .Ceiling}}<th>ceiling</th><th>ratio</th>{{end}}<th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>
<tr><td>{{.R.Requests}}</td><td>{{printf "%.3f" .R.DurationS}} s</td><td>{{printf "%.1f" .R.ThroughputRPS}}/s</td>
{{if .Ceiling}}<td>{{.Ceiling}}</td><td>{{.Ratio}}</td>{{end}}
<td>{{printf "%.3f" .R.LatencyMS.P50}}</td><td>{{printf "%.3f" .R.LatencyMS.P90}}</td><td>{{printf "%.3f" .R.LatencyMS.P99}}</td><td>{{printf "%.3f" .R.LatencyMS.P999}}</td><td>{{printf "%.3f" .R.LatencyMS.Max}}</td></tr>
</table>
<p>Latencies in milliseconds, {{if eq .R.Mode "open"}}from when each request was due (no coordinated omission){{else}}from each send{{end}}.</p>
<h2>Latency</h2>
{{.Latency}}
{{.OverTime}}
<h2>Throughput</h2>
{{.Throughput}}
<h2>Answers</h2>
{{.Status}}
<table><tr><th>HTTP status</th><th>count</th></tr>{{range sorted .R.HTTPStatus}}<tr><td>{{.Name}}</td><td>{{.Count}}</td></tr>{{end}}</table>
{{if .R.Kinds}}<table><tr><th>request kind</th><th>answers</th></tr>{{range $k, $m := .R.Kinds}}<tr><td>{{$k}}</td><td>{{range sorted $m}}{{.Name}} {{.Count}} {{end}}</td></tr>{{end}}</table>{{end}}
{{if .R.Errors}}<p>Transport errors, for example:</p><ul>{{range .R.Errors}}<li><code>{{.}}</code></li>{{end}}</ul>{{end}}
<h2>Invariants</h2>
{{if .R.Error}}<p class="FAIL"><b>Not checked:</b> {{.R.Error}}</p>{{else}}
<p>{{if .R.Invariants.Verified}}Orders read from <code>seckill_order</code>{{else}}Admin stats only (<code>--verify=false</code>): lost not checked{{end}};
drained in {{printf "%.3f" .R.DrainS}} s{{if not .R.DrainComplete}}, <b>not settled</b>{{end}}.</p>
<table><tr><th>stock</th><th>accepted</th><th>orders</th><th>reserved</th><th>remaining</th><th>oversold</th><th>duplicate users</th><th>lost</th><th>unbalanced</th></tr>
{{with .R.Invariants}}<tr><td>{{.Stock}}</td><td>{{.Accepted}}</td><td>{{.Orders}}</td><td>{{.Reserved}}</td><td>{{.Remaining}}</td><td>{{.Oversold}}</td><td>{{.DuplicateUsers}}</td><td>{{.Lost}}</td><td>{{.Unbalanced}}</td></tr>{{end}}
</table>
{{range .R.Invariants.Broken}}<p class="FAIL"><b>Broken:</b> {{.}}</p>{{end}}
{{if .R.Checks}}<table><tr><th>check</th><th>result</th><th>detail</th></tr>{{range .R.Checks}}<tr><td>{{.Name}}</td><td>{{.Result}}</td><td>{{.Detail}}</td></tr>{{end}}</table>{{end}}{{end}}
{{if or .R.CPU .R.Verdicts}}<h2>Cost and goals (issue 12)</h2>
{{if .R.CPU}}<table><tr><th>server</th><th>CPU per persisted order</th><th>read from</th></tr>{{range .R.CPU}}<tr><td>{{.Server}}</td><td>{{if .Measured}}{{printf "%.1f" .PerOrder}} µs ({{printf "%.3f" .CPUS}} CPU-s ÷ {{.Orders}} orders){{with .NetPerOrder}}; {{printf "%.1f" .}} µs net of its idle rate{{end}}{{else}}not measured: {{.Reason}}{{end}}</td><td>{{.Source}}</td></tr>{{end}}</table>{{end}}
{{if .R.Verdicts}}<table><tr><th>goal</th><th>bound</th><th>measured</th><th>verdict</th><th>note</th></tr>{{range .R.Verdicts}}<tr><td>{{.Goal}}</td><td>{{.Bound}}</td><td>{{printf "%g" .Value}}{{.Unit}}</td><td class="{{if .Met}}PASS{{else}}FAIL{{end}}">{{if .Met}}met{{else}}NOT MET{{end}}</td><td>{{.Note}}</td></tr>{{end}}</table>{{end}}{{end}}
<h2>Report</h2>
<details><summary>JSON</summary><pre>{{.JSON}}</pre></details>
</body></html>
`
