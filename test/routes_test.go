package test

import (
	"bufio"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/flashgate/flashgate/internal/config"
)

// documented is a route of docs/api.md's route tables.
type documented struct {
	route   string // "METHOD /pattern"
	planned bool
}

// routeRow is a row of a route table: | `METHOD /pattern` | … |.
var routeRow = regexp.MustCompile("^\\| `(GET|HEAD|POST|PUT|PATCH|DELETE) (/[^`]*)` \\|")

// apiRoutes reads the route tables of docs/api.md, by the section ("## …"
// heading) they stand in.
func apiRoutes(t *testing.T) map[string][]documented {
	t.Helper()
	f, err := os.Open("../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]documented{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if h, ok := strings.CutPrefix(line, "## "); ok {
			section = h
			continue
		}
		if m := routeRow.FindStringSubmatch(line); m != nil {
			out[section] = append(out[section], documented{m[1] + " " + m[2], strings.Contains(line, "planned")})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// compareRoutes fails for every route served and not documented, and every
// route documented, not planned, and not served.
func compareRoutes(t *testing.T, listener string, served []string, docs []documented) {
	t.Helper()
	if len(docs) == 0 {
		t.Fatalf("docs/api.md has no route table for the %s", listener)
	}
	listed := map[string]bool{}
	for _, d := range docs {
		if listed[d.route] {
			t.Errorf("docs/api.md lists %s twice for the %s", d.route, listener)
		}
		listed[d.route] = true
		if !d.planned && !slices.Contains(served, d.route) {
			t.Errorf("docs/api.md lists %s on the %s, which does not serve it (mark it planned, or drop it)", d.route, listener)
		}
	}
	for _, r := range served {
		if !listed[r] {
			t.Errorf("the %s serves %s, which docs/api.md does not list", listener, r)
		}
	}
}

// TestRoutesAreDocumented holds the route tables of docs/api.md and the
// routers of the public and admin listeners together, in both directions.
func TestRoutesAreDocumented(t *testing.T) {
	docs := apiRoutes(t)
	s := start(t, nil)

	var gw []string
	for _, r := range s.app.Gateway.Routes() {
		gw = append(gw, r.String())
	}
	compareRoutes(t, "public listener", gw, docs["Public listener (gateway)"])
	compareRoutes(t, "admin listener", s.app.Admin.Routes(), docs["Admin listener"])
}

// samplePath turns a route pattern into a path it matches.
func samplePath(pattern string) string {
	return regexp.MustCompile(`\{[a-z_]+(\.\.\.)?\}`).ReplaceAllString(pattern, "1")
}

// TestWrongMethodIs405 sends every route's path with a method it does not
// serve: the answer is 405 invalid with an Allow header naming the methods
// that path does serve, on both listeners.
func TestWrongMethodIs405(t *testing.T) {
	s := start(t, nil)
	methods := []string{"GET", "POST", "PUT", "PATCH", "DELETE"}
	check := func(base, token string, routes []string) {
		t.Helper()
		byPath := map[string][]string{}
		for _, r := range routes {
			method, pattern, _ := strings.Cut(r, " ")
			p := samplePath(pattern)
			byPath[p] = append(byPath[p], method)
			if method == "GET" {
				byPath[p] = append(byPath[p], "HEAD")
			}
		}
		for path, allowed := range byPath {
			slices.Sort(allowed)
			for _, m := range methods {
				if slices.Contains(allowed, m) {
					continue
				}
				a := s.do(m, base+path, token, nil)
				if a.Status != http.StatusMethodNotAllowed || a.code() != "invalid" {
					t.Errorf("%s %s: %d %s, want 405 invalid", m, path, a.Status, a.Raw)
					continue
				}
				if got := a.Header.Get("Allow"); got != strings.Join(allowed, ", ") {
					t.Errorf("%s %s: Allow %q, want %q", m, path, got, strings.Join(allowed, ", "))
				}
			}
		}
	}
	var gw []string
	for _, r := range s.app.Gateway.Routes() {
		gw = append(gw, r.String())
	}
	check(s.gw, s.token(1), gw)
	check(s.admin, s.app.Config.AdminToken, s.app.Admin.Routes())

	// The open routes of the admin listener need no token; the others do,
	// before any 404 or 405.
	for path, want := range map[string]int{"/healthz": 200, "/metrics": 200, "/admin/v1/activities": 401, "/admin/v1/nope": 401} {
		if a := s.do("GET", s.admin+path, "", nil); a.Status != want {
			t.Errorf("GET %s without a token: %d, want %d", path, a.Status, want)
		}
	}
	if a := s.do("PUT", s.admin+"/admin/v1/activities", "", nil); a.Status != 401 {
		t.Errorf("PUT /admin/v1/activities without a token: %d, want 401", a.Status)
	}

	// Unknown paths stay 404 on both.
	for _, u := range []string{s.gw + "/api/v1/nope", s.admin + "/admin/v1/nope"} {
		if a := s.do("GET", u, s.app.Config.AdminToken, nil); a.Status != 404 || a.code() != "not_found" {
			t.Errorf("GET %s: %d %s, want 404 not_found", u, a.Status, a.Raw)
		}
	}
}

// TestAdminBodyTooLarge: an admin body over 1 MiB answers 413 invalid
// naming the limit, and creates nothing.
func TestAdminBodyTooLarge(t *testing.T) {
	s := start(t, nil)
	big := `{"name":"` + strings.Repeat("a", 1<<20) + `","start_at":"2026-01-01T00:00:00Z","end_at":"2027-01-01T00:00:00Z"}`
	a := s.adminDo("POST", "/admin/v1/activities", big)
	if a.Status != http.StatusRequestEntityTooLarge || a.code() != "invalid" || !strings.Contains(a.str("message"), "1 MiB") {
		t.Fatalf("1 MiB of name: %d %s, want 413 invalid naming the limit", a.Status, a.Raw)
	}
	if a := s.adminDo("GET", "/admin/v1/activities/1", nil); a.Status != 404 {
		t.Fatalf("the refused body created an activity: %d %s", a.Status, a.Raw)
	}
}

// settingRow is a row of the settings table: | `FLASHGATE_X` | default | roles | meaning |.
var settingRow = regexp.MustCompile("^\\| `(FLASHGATE_[A-Z0-9_]+)` \\| ([^|]+) \\| ([^|]+) \\| (.*) \\|$")

// TestSettingsAreDocumented holds the settings table of docs/api.md and the
// settings table of the code together: every setting is listed with its
// default and its roles, and every listed setting exists unless planned.
func TestSettingsAreDocumented(t *testing.T) {
	raw, err := os.ReadFile("../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ def, roles, meaning string }
	docs := map[string]row{}
	in := false
	for _, line := range strings.Split(string(raw), "\n") {
		if h, ok := strings.CutPrefix(line, "## "); ok {
			in = h == "Settings"
			continue
		}
		if m := settingRow.FindStringSubmatch(line); in && m != nil {
			if _, dup := docs[m[1]]; dup {
				t.Errorf("docs/api.md lists %s twice", m[1])
			}
			docs[m[1]] = row{m[2], m[3], m[4]}
		}
	}
	code := map[string]bool{}
	for _, s := range config.Settings() {
		code[s.Env] = true
		d, ok := docs[s.Env]
		if !ok {
			t.Errorf("setting %s is not in the settings table of docs/api.md", s.Env)
			continue
		}
		def := "empty"
		if s.Default != "" {
			def = "`" + s.Default + "`"
		}
		if d.def != def {
			t.Errorf("docs/api.md: %s defaults to %s, the code to %s", s.Env, d.def, def)
		}
		if roles := strings.Join(strings.Fields(s.Roles), ", "); d.roles != roles {
			t.Errorf("docs/api.md: %s is for %s, the code says %s", s.Env, d.roles, roles)
		}
	}
	for env, d := range docs {
		if !code[env] && !strings.HasPrefix(d.meaning, "planned") {
			t.Errorf("docs/api.md lists %s, which the code does not have (mark it planned, or drop it)", env)
		}
	}
}
