package deploy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/flashgate/flashgate/internal/testenv"
)

// TestMonitoringNamesExist checks every metric the dashboard and the alert
// rules query against what flashgate exports: the metric must exist, every
// label they match on or group by must exist on it, and every value they
// match exactly (or as a plain alternation) must exist as a series. Every
// flashgate series is created at 0 up front, so a scrape of an idle process
// shows them all; a renamed metric, label or value breaks this test.
func TestMonitoringNamesExist(t *testing.T) {
	families := scrapeDev(t)
	exprs := dashboardExprs(t, "monitoring/grafana-sale.json")
	if len(exprs) < 20 {
		t.Fatalf("found %d expressions in the dashboard: the panels were not read", len(exprs))
	}
	rules := ruleExprs(t, "monitoring/alerts.yaml")
	if len(rules) < 15 {
		t.Fatalf("found %d expressions in the alert rules: the rules were not read", len(rules))
	}
	for where, expr := range mergeMaps(exprs, rules) {
		for _, problem := range checkExpr(expr, families) {
			t.Errorf("%s: %s\n\t%s", where, problem, expr)
		}
	}
}

// The checker itself must catch what it is for.
func TestMonitoringCheckerCatchesMistakes(t *testing.T) {
	families := scrapeDev(t)
	for _, expr := range []string{
		`rate(flashgate_relay_produced_total[5m])`,                            // the name before the worker_ subsystem
		`flashgate_worker_reservations_total{result="gaurded"}`,               // a value that never exists
		`sum by (job) (rate(flashgate_worker_errors_total{job="write"}[5m]))`, // the label renamed to task
		`flashgate_gateway_requests_total{route=~"pay|refnud"}`,               // one alternative wrong
		`histogram_quantile(0.99, rate(flashgate_worker_batch_secs_bucket[1m]))`,
	} {
		if len(checkExpr(expr, families)) == 0 {
			t.Errorf("no problem found in %s", expr)
		}
	}
	if p := checkExpr(`sum by (route, code) (rate(flashgate_gateway_requests_total{route=~"pay|refund|notify|return|ws",code="ok"}[5m]))`, families); len(p) != 0 {
		t.Errorf("problems in a correct expression: %v", p)
	}
}

// scrapeDev starts every role in one process with one published item (so
// that the item gauges exist) and returns its metric families.
func scrapeDev(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	a := testenv.Start(t, testenv.Config(t))
	admin := func(path string, body any) map[string]any {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", "http://"+a.AdminAddr+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+a.Config.AdminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode >= 300 {
			t.Fatalf("POST %s: %d %v", path, resp.StatusCode, out)
		}
		return out
	}
	now := time.Now().UTC()
	act := admin("/admin/v1/activities", map[string]any{
		"name": "metrics", "start_at": now.Format(time.RFC3339), "end_at": now.Add(time.Hour).Format(time.RFC3339),
	})["id"].(float64)
	admin(fmt.Sprintf("/admin/v1/activities/%d/items", int64(act)), map[string]any{"name": "m", "price": "1.00", "stock": 5, "shards": 2})
	admin(fmt.Sprintf("/admin/v1/activities/%d/publish", int64(act)), nil)

	families := map[string]*dto.MetricFamily{}
	// dev shares one registry between its roles; both listeners serve it.
	for _, addr := range []string{a.HTTPAddr, a.AdminAddr} {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		fs, err := p.TextToMetricFamilies(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("parse /metrics of %s: %v", addr, err)
		}
		for name, f := range fs {
			families[name] = f
		}
	}
	if f := families["flashgate_item_remaining"]; f == nil || len(f.Metric) != 1 || f.Metric[0].GetGauge().GetValue() != 5 {
		t.Fatalf("flashgate_item_remaining of the published item: %v", f)
	}
	return families
}

func mergeMaps(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// dashboardExprs returns the queries of every panel target and template
// variable, keyed by where they are.
func dashboardExprs(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	out := map[string]string{}
	for _, p := range d.Panels {
		for i, tg := range p.Targets {
			out[fmt.Sprintf("dashboard panel %q target %d", p.Title, i)] = tg.Expr
		}
	}
	for _, v := range d.Templating.List {
		if v.Definition != "" {
			// label_values(metric, label): the metric must have the label.
			if m := regexp.MustCompile(`label_values\((\w+),\s*(\w+)\)`).FindStringSubmatch(v.Definition); m != nil {
				out["dashboard variable "+v.Name] = fmt.Sprintf("sum by (%s) (%s)", m[2], m[1])
			}
		}
	}
	return out
}

// ruleExprs returns the expression of every alerting and recording rule.
func ruleExprs(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []struct {
				Alert  string `yaml:"alert"`
				Record string `yaml:"record"`
				Expr   string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	out := map[string]string{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			out["rule "+r.Alert+r.Record] = r.Expr
		}
	}
	return out
}

var (
	// Our metrics, the collectors' (go_, process_) and Prometheus's own up.
	selectorRe = regexp.MustCompile(`\b((?:flashgate|go|process)_[a-zA-Z0-9_]+|up)\b(\{[^}]*\})?`)
	matcherRe  = regexp.MustCompile(`(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"`)
	byRe       = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
	plainAlt   = regexp.MustCompile(`^[a-zA-Z0-9_]+(\|[a-zA-Z0-9_]+)*$`)
)

// Labels that Prometheus adds to every scraped series (the target's), or
// that histograms have.
var targetLabels = []string{"job", "instance", "namespace", "pod", "le"}

// checkExpr returns what in expr does not match the exported families.
func checkExpr(expr string, families map[string]*dto.MetricFamily) []string {
	var problems []string
	var used []*dto.MetricFamily
	for _, m := range selectorRe.FindAllStringSubmatch(expr, -1) {
		name := m[1]
		if name == "up" {
			continue // Prometheus's own series of each target
		}
		f := family(families, name)
		if f == nil {
			problems = append(problems, fmt.Sprintf("metric %s is not exported", name))
			continue
		}
		used = append(used, f)
		for _, mm := range matcherRe.FindAllStringSubmatch(m[2], -1) {
			label, op, value := mm[1], mm[2], mm[3]
			if label == "job" && !strings.HasPrefix(value, "flashgate") {
				// The scrape jobs are flashgate-gateway, -worker and
				// -admin (monitoring/prometheus*.yml).
				problems = append(problems, fmt.Sprintf("job=%q is not one of flashgate's scrape jobs", value))
				continue
			}
			if slices.Contains(targetLabels, label) {
				continue
			}
			if !hasLabel(f, label) {
				problems = append(problems, fmt.Sprintf("metric %s has no label %s", name, label))
				continue
			}
			var want []string
			switch {
			case op == "=":
				want = []string{value}
			case op == "=~" && plainAlt.MatchString(value):
				want = strings.Split(value, "|")
			}
			for _, v := range want {
				if !hasValue(f, label, v) {
					problems = append(problems, fmt.Sprintf("metric %s has no series with %s=%q", name, label, v))
				}
			}
		}
	}
	for _, m := range byRe.FindAllStringSubmatch(expr, -1) {
		for _, label := range strings.Split(m[1], ",") {
			label = strings.TrimSpace(label)
			if label == "" || slices.Contains(targetLabels, label) {
				continue
			}
			found := false
			for _, f := range used {
				found = found || hasLabel(f, label)
			}
			if !found {
				problems = append(problems, fmt.Sprintf("no metric of the expression has the label %s it groups by", label))
			}
		}
	}
	return problems
}

// family finds name, or the histogram or summary it is a series of.
func family(families map[string]*dto.MetricFamily, name string) *dto.MetricFamily {
	if f := families[name]; f != nil {
		return f
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if f := families[base]; f != nil && (f.GetType() == dto.MetricType_HISTOGRAM || f.GetType() == dto.MetricType_SUMMARY) {
				return f
			}
		}
	}
	return nil
}

func hasLabel(f *dto.MetricFamily, label string) bool {
	for _, m := range f.Metric {
		for _, l := range m.Label {
			if l.GetName() == label {
				return true
			}
		}
	}
	return false
}

func hasValue(f *dto.MetricFamily, label, value string) bool {
	for _, m := range f.Metric {
		for _, l := range m.Label {
			if l.GetName() == label && l.GetValue() == value {
				return true
			}
		}
	}
	return false
}

// TestDashboardLayout checks what Grafana would silently get wrong: panel
// ids are unique, every panel sits inside the 24-column grid without
// overlapping another, and every query has a unique refId and a datasource.
func TestDashboardLayout(t *testing.T) {
	b, err := os.ReadFile("monitoring/grafana-sale.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string `json:"uid"`
		Panels []struct {
			ID         int                      `json:"id"`
			Type       string                   `json:"type"`
			Title      string                   `json:"title"`
			Datasource any                      `json:"datasource"`
			GridPos    struct{ X, Y, W, H int } `json:"gridPos"`
			Targets    []struct {
				RefID string `json:"refId"`
				Expr  string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if d.UID == "" {
		t.Error("the dashboard has no uid: every import would make a copy")
	}
	ids := map[int]bool{}
	type cell struct{ x, y int }
	taken := map[cell]string{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, g)
		}
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other, ok := taken[cell{x, y}]; ok {
					t.Fatalf("panel %q overlaps %q at %d,%d", p.Title, other, x, y)
				}
				taken[cell{x, y}] = p.Title
			}
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || len(p.Targets) == 0 {
			t.Errorf("panel %q: no datasource or no query", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.RefID == "" || refs[tg.RefID] || strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q: target %q empty or refId repeated", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
		}
	}
}
