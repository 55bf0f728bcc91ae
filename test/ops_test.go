package test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flashgate/flashgate/internal/app"
	"github.com/flashgate/flashgate/internal/config"
	"github.com/flashgate/flashgate/internal/kafka"
	"github.com/flashgate/flashgate/internal/mysql"
	"github.com/flashgate/flashgate/internal/testenv"
)

// activity creates an activity with one item and returns both ids; times
// are relative to now.
func (s *stack) activity(name string, start, end time.Duration, item map[string]any) (int64, int64) {
	s.t.Helper()
	now := time.Now()
	a := s.adminDo("POST", "/admin/v1/activities", map[string]any{
		"name": name, "start_at": now.Add(start).Format(time.RFC3339Nano), "end_at": now.Add(end).Format(time.RFC3339Nano)})
	if a.Status != 201 {
		s.t.Fatalf("create activity: %d %s", a.Status, a.Raw)
	}
	act := int64(a.Body["id"].(float64))
	if item == nil {
		item = map[string]any{"stock": 10, "shards": 2}
	}
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
	return act, int64(a.Body["id"].(float64))
}

func (s *stack) mustAdmin(want int, method, path string, body any) answer {
	s.t.Helper()
	a := s.adminDo(method, path, body)
	if a.Status != want {
		s.t.Fatalf("%s %s: %d %s, want %d", method, path, a.Status, a.Raw, want)
	}
	return a
}

// listed returns id -> status of GET /admin/v1/activities[?status=], and
// the ids in the order given.
func (s *stack) listed(query string) (map[int64]string, []int64) {
	s.t.Helper()
	a := s.mustAdmin(200, "GET", "/admin/v1/activities"+query, nil)
	m := map[int64]string{}
	var order []int64
	for _, v := range a.Body["activities"].([]any) {
		o := v.(map[string]any)
		for _, k := range []string{"id", "name", "start_at", "end_at", "publish_at", "published", "status"} {
			if _, ok := o[k]; !ok {
				s.t.Fatalf("activity without %q: %v", k, o)
			}
		}
		id := int64(o["id"].(float64))
		m[id] = o["status"].(string)
		order = append(order, id)
	}
	return m, order
}

// TestActivityStatuses: every status of §11 shows in the list, newest
// first, and the filter keeps one status.
func TestActivityStatuses(t *testing.T) {
	s := start(t, nil)
	draft, _ := s.activity("draft", time.Hour, 2*time.Hour, nil)
	scheduled, _ := s.activity("scheduled", time.Hour, 2*time.Hour, nil)
	s.mustAdmin(202, "POST", fmt.Sprintf("/admin/v1/activities/%d/publish", scheduled),
		map[string]any{"at": time.Now().Add(30 * time.Minute).Format(time.RFC3339)})
	upcoming, _ := s.activity("upcoming", time.Hour, 2*time.Hour, nil)
	s.mustAdmin(200, "POST", fmt.Sprintf("/admin/v1/activities/%d/publish", upcoming), nil)
	live, _ := s.activity("live", -time.Second, time.Hour, nil)
	s.mustAdmin(200, "POST", fmt.Sprintf("/admin/v1/activities/%d/publish", live), nil)
	ended, _ := s.activity("ended", -time.Second, time.Hour, nil)
	s.mustAdmin(200, "POST", fmt.Sprintf("/admin/v1/activities/%d/publish", ended), nil)
	s.mustAdmin(200, "POST", fmt.Sprintf("/admin/v1/activities/%d/close", ended), nil)

	want := map[int64]string{draft: "draft", scheduled: "scheduled", upcoming: "upcoming", live: "live", ended: "ended"}
	got, order := s.listed("")
	for id, st := range want {
		if got[id] != st {
			t.Errorf("activity %d: status %q, want %q", id, got[id], st)
		}
	}
	for i := 1; i < len(order); i++ {
		if order[i] > order[i-1] {
			t.Fatalf("not newest first: %v", order)
		}
	}
	for id, st := range want {
		got, _ := s.listed("?status=" + st)
		if len(got) != 1 || got[id] != st {
			t.Errorf("?status=%s: %v", st, got)
		}
	}
	if a := s.adminDo("GET", "/admin/v1/activities?status=running", nil); a.Status != 400 || !strings.Contains(a.str("message"), "status") {
		t.Errorf("bad status filter: %d %s", a.Status, a.Raw)
	}
	a := s.mustAdmin(200, "GET", fmt.Sprintf("/admin/v1/activities/%d", scheduled), nil)
	if act := a.Body["activity"].(map[string]any); act["status"] != "scheduled" || act["publish_at"] == nil {
		t.Errorf("get scheduled activity: %s", a.Raw)
	}
}

// TestEditRules: what PATCH and DELETE may change, and the answers to bad
// input, which change nothing.
func TestEditRules(t *testing.T) {
	s := start(t, nil)
	draft, draftItem := s.activity("draft", time.Hour, 2*time.Hour, nil)
	live, liveItem := s.activity("live", -time.Second, time.Hour, nil)
	s.mustAdmin(200, "POST", fmt.Sprintf("/admin/v1/activities/%d/publish", live), nil)
	at := func(d time.Duration) string { return time.Now().Add(d).Format(time.RFC3339Nano) }
	act := func(id int64) string { return fmt.Sprintf("/admin/v1/activities/%d", id) }
	item := func(id int64) string { return fmt.Sprintf("/admin/v1/items/%d", id) }

	// Before publish anything may change.
	a := s.mustAdmin(200, "PATCH", act(draft), map[string]any{"name": "renamed", "start_at": at(3 * time.Hour), "end_at": at(4 * time.Hour)})
	if got := a.Body["activity"].(map[string]any); got["name"] != "renamed" || got["status"] != "draft" {
		t.Fatalf("patched draft: %s", a.Raw)
	}
	a = s.mustAdmin(200, "PATCH", item(draftItem), map[string]any{"name": "cheaper", "price": "1.50", "points": 7, "shards": 3, "require_path": true})
	if got := a.Body["item"].(map[string]any); got["price"] != "1.50" || got["shards"] != float64(3) || got["require_path"] != true {
		t.Fatalf("patched item: %s", a.Raw)
	}

	for _, c := range []struct {
		name, method, path string
		body               any
		status             int
		says               string
	}{
		{"live start_at", "PATCH", act(live), map[string]any{"start_at": at(time.Minute)}, 409, "start_at"},
		{"end_at in the past", "PATCH", act(live), map[string]any{"end_at": at(-time.Minute)}, 409, "end_at"},
		{"end before start", "PATCH", act(draft), map[string]any{"end_at": at(time.Minute)}, 422, "end_at"},
		{"bad time", "PATCH", act(draft), map[string]any{"start_at": "tomorrow"}, 422, "start_at"},
		{"unknown field", "PATCH", act(draft), map[string]any{"nmae": "x"}, 400, "nmae"},
		{"empty patch", "PATCH", act(draft), map[string]any{}, 422, "body"},
		{"wrong type", "PATCH", act(draft), map[string]any{"name": 5}, 400, "name"},
		{"overflowing id", "PATCH", "/admin/v1/activities/9223372036854775808", map[string]any{"name": "x"}, 400, "id"},
		{"unknown activity", "PATCH", act(math.MaxInt64), map[string]any{"name": "x"}, 404, ""},
		{"live item", "PATCH", item(liveItem), map[string]any{"price": "0.01"}, 409, "published"},
		{"bad shards", "PATCH", item(draftItem), map[string]any{"shards": 0}, 422, "shards"},
		{"bad price", "PATCH", item(draftItem), map[string]any{"price": "-1"}, 422, "price"},
		{"delete live", "DELETE", act(live), nil, 409, "live"},
		{"close draft", "POST", act(draft) + "/close", nil, 409, "draft"},
		{"unschedule draft", "DELETE", act(draft) + "/publish", nil, 409, "not scheduled"},
		{"schedule after end", "POST", act(draft) + "/publish", map[string]any{"at": at(5 * time.Hour)}, 422, "at"},
		{"publish twice", "POST", act(live) + "/publish", nil, 409, "already published"},
	} {
		a := s.adminDo(c.method, c.path, c.body)
		if a.Status != c.status || !strings.Contains(a.str("message"), c.says) {
			t.Errorf("%s: %d %s, want %d naming %q", c.name, a.Status, a.Raw, c.status, c.says)
		}
	}
	// Nothing of the above changed the live sale.
	if a := s.buy(liveItem, s.token(1)); a.Status != 202 {
		t.Fatalf("buy after refused edits: %d %s", a.Status, a.Raw)
	}
	a = s.mustAdmin(200, "PATCH", act(live), map[string]any{"end_at": at(2 * time.Hour)})
	if a.Body["activity"].(map[string]any)["status"] != "live" {
		t.Fatalf("extended live: %s", a.Raw)
	}

	// A scheduled activity goes back to draft, then is deleted with its items.
	s.mustAdmin(202, "POST", act(draft)+"/publish", map[string]any{"at": at(2 * time.Hour)})
	s.mustAdmin(200, "DELETE", act(draft)+"/publish", nil)
	got, _ := s.listed("?status=draft")
	if got[draft] != "draft" {
		t.Fatalf("unscheduled: %v", got)
	}
	s.mustAdmin(200, "DELETE", act(draft), nil)
	s.mustAdmin(404, "GET", act(draft), nil)
	s.mustAdmin(404, "GET", item(draftItem)+"/stats", nil)
}

// fleet runs an admin, two gateways and a worker as separate app instances
// on one broker, prefix and database, as separate processes would.
type fleet struct {
	*stack
	gws []*app.App
}

func startFleet(t *testing.T, mutate func(*config.Config)) *fleet {
	t.Helper()
	base := testenv.Config(t)
	if mutate != nil {
		mutate(base)
	}
	broker, err := kafka.StartBroker(base.KafkaTopic, base.KafkaPartitions)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close)
	if err := mysql.Migrate(context.Background(), base.MySQLDSN); err != nil {
		t.Fatal(err)
	}
	role := func(r string) *app.App {
		c := *base
		c.Role = r
		c.KafkaBrokers = broker.Addrs()
		c.AuthSecret = strings.Repeat("f", 40)
		c.AdminToken = strings.Repeat("a", 20)
		return testenv.Start(t, &c)
	}
	adm := role(config.RoleAdmin)
	f := &fleet{gws: []*app.App{role(config.RoleGateway), role(config.RoleGateway)}}
	role(config.RoleWorker)
	f.stack = &stack{t: t, app: adm, admin: "http://" + adm.AdminAddr, gw: "http://" + f.gws[0].HTTPAddr,
		http: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	t.Cleanup(f.http.CloseIdleConnections)
	return f
}

// buyAt buys on gateway i.
func (f *fleet) buyAt(i int, item, user int64) answer {
	gw := f.gws[i]
	return f.do("POST", fmt.Sprintf("http://%s/api/v1/seckill/%d", gw.HTTPAddr, item), gw.Signer.Mint(user, time.Now().Add(time.Hour)), nil)
}

// within asserts that every gateway answers code for a buy within d.
func (f *fleet) within(d time.Duration, item int64, user *int64, code string) time.Duration {
	f.t.Helper()
	start := time.Now()
	for i := range f.gws {
		for {
			*user++
			if a := f.buyAt(i, item, *user); a.code() == code {
				break
			}
			if time.Since(start) > d {
				f.t.Fatalf("gateway %d does not answer %s %v after the change", i, code, d)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return time.Since(start)
}

// TestWindowChangesReachEveryGateway: with the admin and the gateways in
// separate app instances, a new start_at, a new end_at and a close reach
// every gateway within a second (their cached item state is invalidated,
// not left to expire), and orders already taken go on.
func TestWindowChangesReachEveryGateway(t *testing.T) {
	f := startFleet(t, nil)
	act, item := f.activity("window", time.Hour, 2*time.Hour, map[string]any{"stock": 50, "shards": 4})
	f.mustAdmin(200, "POST", fmt.Sprintf("/admin/v1/activities/%d/publish", act), nil)
	user := int64(0)
	for i := range f.gws { // every gateway caches the upcoming state
		user++
		if a := f.buyAt(i, item, user); a.code() != "not_started" {
			t.Fatalf("gateway %d before start: %s", i, a.Raw)
		}
	}
	f.mustAdmin(200, "PATCH", fmt.Sprintf("/admin/v1/activities/%d", act), map[string]any{"start_at": time.Now().Format(time.RFC3339Nano)})
	t.Logf("start_at reached every gateway in %v", f.within(time.Second, item, &user, "ok"))

	// An earlier end_at: the gateways' cached state lives 10s without an
	// invalidation, so answering ended a moment after the new end proves
	// the change reached them.
	act2, item2 := f.activity("window 2", -time.Second, 2*time.Hour, map[string]any{"stock": 50, "shards": 4})
	f.mustAdmin(200, "POST", fmt.Sprintf("/admin/v1/activities/%d/publish", act2), nil)
	for i := range f.gws {
		user++
		if a := f.buyAt(i, item2, user); a.code() != "ok" {
			t.Fatalf("gateway %d while live: %s", i, a.Raw)
		}
	}
	end := time.Now().Add(300 * time.Millisecond)
	f.mustAdmin(200, "PATCH", fmt.Sprintf("/admin/v1/activities/%d", act2), map[string]any{"end_at": end.Format(time.RFC3339Nano)})
	time.Sleep(time.Until(end))
	t.Logf("an earlier end_at reached every gateway %v after the new end", f.within(time.Second, item2, &user, "ended"))

	f.mustAdmin(200, "PATCH", fmt.Sprintf("/admin/v1/activities/%d", act), map[string]any{"end_at": time.Now().Add(time.Hour).Format(time.RFC3339Nano)})
	f.mustAdmin(200, "POST", fmt.Sprintf("/admin/v1/activities/%d/close", act), nil)
	t.Logf("close reached every gateway in %v", f.within(time.Second, item, &user, "ended"))
	f.mustAdmin(409, "POST", fmt.Sprintf("/admin/v1/activities/%d/close", act), nil)
	f.mustAdmin(409, "PATCH", fmt.Sprintf("/admin/v1/activities/%d", act), map[string]any{"end_at": time.Now().Add(time.Hour).Format(time.RFC3339Nano)})
	got, _ := f.listed("?status=ended")
	if got[act] != "ended" {
		t.Fatalf("closed activity: %v", got)
	}
	st := f.settle(item)
	if st.Unpaid == 0 || st.Unpaid != int64(len(rows(t, f.stack, item))) {
		t.Fatalf("orders taken before the close: %+v", st)
	}
}
