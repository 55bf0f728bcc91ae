package bench_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashgate/flashgate/bench"
	"github.com/flashgate/flashgate/internal/auth"
)

const (
	testSecret     = "bench-test-secret-0123456789-abcdefghij"
	testAdminToken = "bench-test-admin-token"
)

// fakeSystem implements just enough of the contract for the harness: the
// admin calls it makes, the item read and the buy, with order rows that
// appear one stats poll after the 202 (a pipeline to drain). Its bug
// switches make it break the invariants on purpose.
type fakeSystem struct {
	signer *auth.Signer

	mu         sync.Mutex
	nextID     int64
	seq        int64
	activities map[int64]*fakeActivity
	items      map[int64]*fakeItem
	orders     []bench.Order

	oversell  bool // sell past the stock
	ignoreDup bool // sell again to a user who holds an order
	loseEvery int  // never write every n-th order row

	gateway, admin *httptest.Server
}

type fakeActivity struct {
	start, end time.Time
	published  bool
	items      []int64
}

type fakeItem struct {
	activity  *fakeActivity
	stock     int64
	remaining int64
	buyers    map[int64]string
	pending   []bench.Order
	written   int
}

// newFake starts a fake gateway and admin API, stopped when t ends.
func newFake(t *testing.T, bugs func(*fakeSystem)) *fakeSystem {
	t.Helper()
	f := &fakeSystem{
		signer:     auth.NewSigner([]byte(testSecret)),
		activities: map[int64]*fakeActivity{},
		items:      map[int64]*fakeItem{},
	}
	if bugs != nil {
		bugs(f)
	}
	gw := http.NewServeMux()
	gw.HandleFunc("POST /api/v1/seckill/{id}", f.buy)
	gw.HandleFunc("GET /api/v1/items/{id}", f.item)
	adm := http.NewServeMux()
	adm.HandleFunc("POST /admin/v1/activities", f.adminOnly(f.createActivity))
	adm.HandleFunc("POST /admin/v1/activities/{id}/items", f.adminOnly(f.addItem))
	adm.HandleFunc("POST /admin/v1/activities/{id}/publish", f.adminOnly(f.publish))
	adm.HandleFunc("GET /admin/v1/items/{id}/stats", f.adminOnly(f.stats))
	f.gateway = httptest.NewServer(gw)
	f.admin = httptest.NewServer(adm)
	t.Cleanup(f.gateway.Close)
	t.Cleanup(f.admin.Close)
	return f
}

// Orders implements bench.OrderSource over the fake's order rows.
func (f *fakeSystem) Orders(_ context.Context, itemIDs []int64) ([]bench.Order, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []bench.Order{}
	for _, o := range f.orders {
		for _, id := range itemIDs {
			if o.ItemID == id {
				out = append(out, o)
			}
		}
	}
	return out, nil
}

func reply(w http.ResponseWriter, status int, body map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func fail(w http.ResponseWriter, status int, code string) {
	reply(w, status, map[string]any{"code": code, "message": code})
}

func pathID(r *http.Request) int64 {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	return id
}

func (f *fakeSystem) adminOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+testAdminToken {
			fail(w, http.StatusUnauthorized, "unauthorized")
			return
		}
		h(w, r)
	}
}

func (f *fakeSystem) createActivity(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name    string `json:"name"`
		StartAt string `json:"start_at"`
		EndAt   string `json:"end_at"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		fail(w, http.StatusBadRequest, "invalid")
		return
	}
	start, err1 := time.Parse(time.RFC3339, in.StartAt)
	end, err2 := time.Parse(time.RFC3339, in.EndAt)
	if err1 != nil || err2 != nil || !end.After(start) || in.Name == "" {
		fail(w, http.StatusUnprocessableEntity, "invalid")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	f.activities[f.nextID] = &fakeActivity{start: start, end: end}
	reply(w, http.StatusCreated, map[string]any{"code": "ok", "id": f.nextID})
}

func (f *fakeSystem) addItem(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name   string `json:"name"`
		Price  string `json:"price"`
		Stock  int64  `json:"stock"`
		Shards *int   `json:"shards"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Name == "" || in.Price == "" || in.Stock <= 0 ||
		(in.Shards != nil && (*in.Shards < 1 || *in.Shards > 256)) {
		fail(w, http.StatusUnprocessableEntity, "invalid")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.activities[pathID(r)]
	switch {
	case a == nil:
		fail(w, http.StatusNotFound, "not_found")
		return
	case a.published:
		fail(w, http.StatusConflict, "conflict")
		return
	}
	f.nextID++
	a.items = append(a.items, f.nextID)
	f.items[f.nextID] = &fakeItem{activity: a, stock: in.Stock, remaining: in.Stock, buyers: map[int64]string{}}
	reply(w, http.StatusCreated, map[string]any{"code": "ok", "id": f.nextID})
}

func (f *fakeSystem) publish(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.activities[pathID(r)]
	switch {
	case a == nil:
		fail(w, http.StatusNotFound, "not_found")
	case a.published:
		fail(w, http.StatusConflict, "conflict")
	case len(a.items) == 0 || !time.Now().Before(a.end):
		fail(w, http.StatusUnprocessableEntity, "invalid")
	default:
		a.published = true
		reply(w, http.StatusOK, map[string]any{"code": "ok"})
	}
}

// stats answers the counts, then writes the pending order rows, so that
// the harness sees reserved units turn into orders.
func (f *fakeSystem) stats(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	it := f.items[pathID(r)]
	if it == nil {
		fail(w, http.StatusNotFound, "not_found")
		return
	}
	var orders int64
	for _, o := range f.orders {
		if o.ItemID == pathID(r) {
			orders++
		}
	}
	reply(w, http.StatusOK, map[string]any{"code": "ok", "stats": map[string]int64{
		"stock": it.stock, "remaining": it.remaining, "reserved": int64(len(it.pending)),
		"orders": orders, "paid": 0, "cancelled": 0,
	}})
	for _, o := range it.pending {
		it.written++
		if f.loseEvery > 0 && it.written%f.loseEvery == 0 {
			continue
		}
		f.orders = append(f.orders, o)
	}
	it.pending = nil
}

func (f *fakeSystem) state(it *fakeItem, now time.Time) string {
	switch {
	case !now.Before(it.activity.end):
		return "ended"
	case now.Before(it.activity.start):
		return "upcoming"
	case it.remaining <= 0:
		return "sold_out"
	}
	return "active"
}

func (f *fakeSystem) item(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	it := f.items[pathID(r)]
	if it == nil || !it.activity.published {
		fail(w, http.StatusNotFound, "not_found")
		return
	}
	reply(w, http.StatusOK, map[string]any{"code": "ok", "item": map[string]any{
		"id": pathID(r), "stock": it.stock, "remaining": it.remaining, "state": f.state(it, time.Now()),
	}})
}

func (f *fakeSystem) buy(w http.ResponseWriter, r *http.Request) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	now := time.Now()
	user, err := f.signer.Verify([]byte(tok), now)
	if !ok || err != nil {
		fail(w, http.StatusUnauthorized, "unauthorized")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	id := pathID(r)
	it := f.items[id]
	if it == nil || !it.activity.published {
		fail(w, http.StatusNotFound, "not_found")
		return
	}
	switch f.state(it, now) {
	case "upcoming":
		fail(w, http.StatusForbidden, "not_started")
		return
	case "ended":
		fail(w, http.StatusForbidden, "ended")
		return
	}
	if prev, dup := it.buyers[user]; dup && !f.ignoreDup {
		reply(w, http.StatusConflict, map[string]any{"code": "duplicate", "message": "already bought", "order_id": prev})
		return
	}
	if it.remaining <= 0 && !f.oversell {
		fail(w, http.StatusGone, "sold_out")
		return
	}
	it.remaining--
	f.seq++
	oid := fmt.Sprintf("%019d", f.seq)
	it.buyers[user] = oid
	it.pending = append(it.pending, bench.Order{OrderID: oid, ItemID: id, UserID: user, Status: bench.StatusUnpaid})
	reply(w, http.StatusAccepted, map[string]any{"code": "ok", "order_id": oid, "status": "pending"})
}
