package test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flashgate/flashgate/internal/testenv"
)

func jwt(header, claims string, key []byte) string {
	enc := base64.RawURLEncoding
	s := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims))
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return s + "." + enc.EncodeToString(m.Sum(nil))
}

func TestBuyAnswers(t *testing.T) {
	s := start(t, nil)
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": 2, "shards": 2, "price": "19.90"})
	secret := []byte(s.app.Config.AuthSecret)
	exp := time.Now().Add(time.Hour).Unix()
	buyURL := fmt.Sprintf("%s/api/v1/seckill/%d", s.gw, item)

	unauthorized := map[string]string{
		"no token":        "",
		"garbage":         "not-a-jwt",
		"forged":          jwt(`{"alg":"HS256","typ":"JWT"}`, fmt.Sprintf(`{"sub":"5","exp":%d}`, exp), []byte("another secret of thirty-two bytes!!")),
		"expired":         s.app.Signer.Mint(5, time.Now().Add(-time.Minute)),
		"alg none":        jwt(`{"alg":"none"}`, fmt.Sprintf(`{"sub":"5","exp":%d}`, exp), nil),
		"alg HS512":       jwt(`{"alg":"HS512","typ":"JWT"}`, fmt.Sprintf(`{"sub":"5","exp":%d}`, exp), secret),
		"no exp":          jwt(`{"alg":"HS256"}`, `{"sub":"5"}`, secret),
		"zero sub":        jwt(`{"alg":"HS256"}`, fmt.Sprintf(`{"sub":"0","exp":%d}`, exp), secret),
		"numeric sub":     jwt(`{"alg":"HS256"}`, fmt.Sprintf(`{"sub":5,"exp":%d}`, exp), secret),
		"negative sub":    jwt(`{"alg":"HS256"}`, fmt.Sprintf(`{"sub":"-5","exp":%d}`, exp), secret),
		"signature strip": strings.Join(strings.Split(s.token(5), ".")[:2], ".") + ".",
	}
	for name, tok := range unauthorized {
		a := s.do("POST", buyURL, tok, nil)
		if a.Status != 401 || a.code() != "unauthorized" {
			t.Errorf("%s: %d %s", name, a.Status, a.Raw)
		}
	}
	// A token minted by hand with the secret, as load testers do, works.
	hand := jwt(`{"alg":"HS256","typ":"JWT"}`, fmt.Sprintf(`{"sub":"5","exp":%d,"iat":1}`, exp), secret)
	first := s.do("POST", buyURL, hand, nil)
	if first.Status != 202 || first.code() != "ok" || first.str("status") != "pending" || first.str("order_id") == "" {
		t.Fatalf("buy: %d %s", first.Status, first.Raw)
	}
	order := first.str("order_id")
	if a := s.buy(item, s.token(5)); a.Status != 409 || a.code() != "duplicate" || a.str("order_id") != order {
		t.Fatalf("second buy of the same user: %d %s", a.Status, a.Raw)
	}
	if a := s.buy(item, s.token(6)); a.Status != 202 {
		t.Fatalf("second unit: %d %s", a.Status, a.Raw)
	}
	if a := s.buy(item, s.token(7)); a.Status != 410 || a.code() != "sold_out" {
		t.Fatalf("past the stock: %d %s", a.Status, a.Raw)
	}
	// Once every gateway holds the item as sold out, a holder who tries
	// again is still told duplicate, with the order, from memory.
	testenv.Eventually(t, 2*time.Second, func() error {
		it, err := s.app.Store.Items().Get(context.Background(), item, time.Now())
		if err != nil || !it.SoldOut {
			return fmt.Errorf("not sold out in the cache yet (%v)", err)
		}
		return nil
	})
	if a := s.buy(item, s.token(5)); a.Status != 409 || a.code() != "duplicate" || a.str("order_id") != order {
		t.Fatalf("holder after sold out: %d %s", a.Status, a.Raw)
	}
	if a := s.buy(item, s.token(8)); a.Status != 410 {
		t.Fatalf("non-holder after sold out: %d %s", a.Status, a.Raw)
	}

	if a := s.do("POST", s.gw+"/api/v1/seckill/999999999", s.token(5), nil); a.Status != 404 || a.code() != "not_found" {
		t.Fatalf("unknown item: %d %s", a.Status, a.Raw)
	}
	for _, bad := range []string{"abc", "0", "-1", "99999999999999999999", "1.5"} {
		if a := s.do("POST", s.gw+"/api/v1/seckill/"+bad, s.token(5), nil); a.Status != 400 || a.code() != "invalid" || !strings.Contains(a.str("message"), "item_id") {
			t.Errorf("item id %q: %d %s", bad, a.Status, a.Raw)
		}
	}

	upcoming := s.sale(time.Hour, 2*time.Hour, map[string]any{"stock": 5})
	if a := s.buy(upcoming, s.token(5)); a.Status != 403 || a.code() != "not_started" {
		t.Fatalf("upcoming: %d %s", a.Status, a.Raw)
	}
	ending := s.sale(-time.Second, 1500*time.Millisecond, map[string]any{"stock": 5})
	time.Sleep(time.Until(time.Now().Add(1600 * time.Millisecond)))
	if a := s.buy(ending, s.token(5)); a.Status != 403 || a.code() != "ended" {
		t.Fatalf("ended: %d %s", a.Status, a.Raw)
	}

	// Order reads: owner only; pending until the row exists, then unpaid.
	orderURL := s.gw + "/api/v1/orders/" + order
	testWait := time.Now().Add(20 * time.Second)
	for {
		a := s.do("GET", orderURL, s.token(5), nil)
		if a.Status != 200 {
			t.Fatalf("owner reads order: %d %s", a.Status, a.Raw)
		}
		o := a.Body["order"].(map[string]any)
		if o["order_id"] != order || o["item_id"].(float64) != float64(item) || o["user_id"].(float64) != 5 || o["amount"] != "19.90" {
			t.Fatalf("order: %s", a.Raw)
		}
		if _, err := time.Parse(time.RFC3339, o["created_at"].(string)); err != nil {
			t.Fatalf("created_at: %s", a.Raw)
		}
		if o["status"] == "unpaid" {
			break
		}
		if o["status"] != "pending" || time.Now().After(testWait) {
			t.Fatalf("order status: %s", a.Raw)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if a := s.do("GET", orderURL, s.token(6), nil); a.Status != 404 || a.code() != "not_found" {
		t.Fatalf("someone else's order: %d %s", a.Status, a.Raw)
	}
	if a := s.do("GET", orderURL, "", nil); a.Status != 401 {
		t.Fatalf("order without token: %d %s", a.Status, a.Raw)
	}
	for _, id := range []string{"nope", "01ARZ3NDEKTSV4RRFFQ69G5FAV-1", order + "0"} {
		if a := s.do("GET", s.gw+"/api/v1/orders/"+id, s.token(5), nil); a.Status != 404 {
			t.Fatalf("unknown order %q: %d %s", id, a.Status, a.Raw)
		}
	}

	// Item and activity reads.
	a := s.do("GET", fmt.Sprintf("%s/api/v1/items/%d", s.gw, item), "", nil)
	it, _ := a.Body["item"].(map[string]any)
	if a.Status != 200 || it["price"] != "19.90" || it["state"] != "sold_out" || it["stock"].(float64) != 2 {
		t.Fatalf("item: %d %s", a.Status, a.Raw)
	}
	for _, k := range []string{"id", "activity_id", "name", "price", "start_at", "end_at", "stock", "remaining", "state"} {
		if _, ok := it[k]; !ok {
			t.Fatalf("item lacks %q: %s", k, a.Raw)
		}
	}
	if a := s.do("GET", fmt.Sprintf("%s/api/v1/items/%d", s.gw, upcoming), "", nil); a.Body["item"].(map[string]any)["state"] != "upcoming" {
		t.Fatalf("upcoming item: %s", a.Raw)
	}
	if a := s.do("GET", s.gw+"/api/v1/items/424242", "", nil); a.Status != 404 {
		t.Fatalf("unknown item read: %d", a.Status)
	}
	a = s.do("GET", s.gw+"/api/v1/activities", "", nil)
	acts, _ := a.Body["activities"].([]any)
	if a.Status != 200 || len(acts) != 2 { // the ended one is not listed
		t.Fatalf("activities: %d %s", a.Status, a.Raw)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if a := s.do("GET", s.gw+p, "", nil); a.Status != 200 {
			t.Fatalf("%s: %d", p, a.Status)
		}
	}
	if a := s.do("GET", s.gw+"/metrics", "", nil); a.Status != 200 || !strings.Contains(a.Raw, `flashgate_gateway_requests_total{code="ok",route="buy"}`) {
		t.Fatalf("metrics: %d", a.Status)
	}
}

func TestAdminAnswers(t *testing.T) {
	s := start(t, nil)
	now := time.Now()
	rfc := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }

	for _, tok := range []string{"", "wrong-token-wrong-token"} {
		for _, p := range []string{"/admin/v1/activities/1", "/admin/v1/items/1/stats", "/admin/v1/nothing"} {
			if a := s.do("GET", s.admin+p, tok, nil); a.Status != 401 || a.code() != "unauthorized" {
				t.Fatalf("admin %s with token %q: %d %s", p, tok, a.Status, a.Raw)
			}
		}
	}
	bad := []struct {
		body   any
		status int
		field  string
	}{
		{`{"name":`, 400, "body"},
		{``, 400, "body"},
		{`{"name":5,"start_at":"x","end_at":"y"}`, 400, "name"},
		{map[string]any{"name": "", "start_at": rfc(0), "end_at": rfc(time.Hour)}, 422, "name"},
		{map[string]any{"name": "a", "start_at": "yesterday", "end_at": rfc(time.Hour)}, 422, "start_at"},
		{map[string]any{"name": "a", "start_at": rfc(0)}, 422, "end_at"},
		{map[string]any{"name": "a", "start_at": rfc(time.Hour), "end_at": rfc(time.Hour)}, 422, "end_at"},
		{map[string]any{"name": "a", "start_at": rfc(time.Hour), "end_at": rfc(0)}, 422, "end_at"},
	}
	for _, b := range bad {
		a := s.adminDo("POST", "/admin/v1/activities", b.body)
		if a.Status != b.status || a.code() != "invalid" || !strings.Contains(a.str("message"), b.field) {
			t.Errorf("create activity %v: %d %s", b.body, a.Status, a.Raw)
		}
	}
	a := s.adminDo("POST", "/admin/v1/activities", map[string]any{"name": "a", "start_at": rfc(-time.Second), "end_at": rfc(time.Hour)})
	if a.Status != 201 {
		t.Fatalf("create: %d %s", a.Status, a.Raw)
	}
	act := int64(a.Body["id"].(float64))
	path := fmt.Sprintf("/admin/v1/activities/%d", act)

	if a := s.adminDo("POST", path+"/publish", nil); a.Status != 422 || !strings.Contains(a.str("message"), "no items") {
		t.Fatalf("publish without items: %d %s", a.Status, a.Raw)
	}
	badItems := []struct {
		body   any
		status int
		field  string
	}{
		{map[string]any{"name": "x", "price": "1.999", "stock": 1}, 422, "price"},
		{map[string]any{"name": "x", "price": "-1", "stock": 1}, 422, "price"},
		{map[string]any{"name": "x", "stock": 1}, 422, "price"},
		{map[string]any{"name": "x", "price": "1.00", "stock": 0}, 422, "stock"},
		{map[string]any{"name": "x", "price": "1.00"}, 422, "stock"},
		{map[string]any{"name": "x", "price": "1.00", "stock": "ten"}, 400, "stock"},
		{map[string]any{"name": "x", "price": "1.00", "stock": 5, "shards": 0}, 422, "shards"},
		{map[string]any{"name": "x", "price": "1.00", "stock": 5, "shards": 257}, 422, "shards"},
		{map[string]any{"price": "1.00", "stock": 5}, 422, "name"},
	}
	for _, b := range badItems {
		a := s.adminDo("POST", path+"/items", b.body)
		if a.Status != b.status || a.code() != "invalid" || !strings.Contains(a.str("message"), b.field) {
			t.Errorf("add item %v: %d %s", b.body, a.Status, a.Raw)
		}
	}
	if a := s.adminDo("POST", "/admin/v1/activities/987654/items", map[string]any{"name": "x", "price": "1", "stock": 1}); a.Status != 404 {
		t.Fatalf("item of unknown activity: %d %s", a.Status, a.Raw)
	}
	if a := s.adminDo("POST", "/admin/v1/activities/abc/items", map[string]any{}); a.Status != 400 || !strings.Contains(a.str("message"), "id") {
		t.Fatalf("bad activity id: %d %s", a.Status, a.Raw)
	}
	a = s.adminDo("POST", path+"/items", map[string]any{"name": "tea", "price": 12.5, "stock": 10})
	if a.Status != 201 {
		t.Fatalf("add item: %d %s", a.Status, a.Raw)
	}
	item := int64(a.Body["id"].(float64))
	if a := s.adminDo("POST", path+"/publish", nil); a.Status != 200 {
		t.Fatalf("publish: %d %s", a.Status, a.Raw)
	}
	if a := s.adminDo("POST", path+"/publish", nil); a.Status != 409 || a.code() != "conflict" {
		t.Fatalf("publish twice: %d %s", a.Status, a.Raw)
	}
	if a := s.adminDo("POST", path+"/items", map[string]any{"name": "x", "price": "1", "stock": 1}); a.Status != 409 || a.code() != "conflict" {
		t.Fatalf("item after publish: %d %s", a.Status, a.Raw)
	}
	a = s.adminDo("GET", path, nil)
	actv := a.Body["activity"].(map[string]any)
	items := actv["items"].([]any)
	if a.Status != 200 || actv["published"] != true || len(items) != 1 || items[0].(map[string]any)["price"] != "12.50" {
		t.Fatalf("get activity: %d %s", a.Status, a.Raw)
	}
	if st := s.stats(item); st.Stock != 10 || st.Remaining != 10 || st.Reserved != 0 || st.Orders != 0 {
		t.Fatalf("stats: %+v", st)
	}
	if a := s.adminDo("GET", "/admin/v1/items/31337/stats", nil); a.Status != 404 {
		t.Fatalf("stats of unknown item: %d", a.Status)
	}
	if a := s.adminDo("GET", "/admin/v1/activities/31337", nil); a.Status != 404 {
		t.Fatalf("unknown activity: %d", a.Status)
	}

	// An ended activity cannot be published.
	a = s.adminDo("POST", "/admin/v1/activities", map[string]any{"name": "old", "start_at": rfc(-2 * time.Hour), "end_at": rfc(-time.Hour)})
	old := int64(a.Body["id"].(float64))
	s.adminDo("POST", fmt.Sprintf("/admin/v1/activities/%d/items", old), map[string]any{"name": "x", "price": "1", "stock": 1})
	if a := s.adminDo("POST", fmt.Sprintf("/admin/v1/activities/%d/publish", old), nil); a.Status != 422 || !strings.Contains(a.str("message"), "ended") {
		t.Fatalf("publish ended: %d %s", a.Status, a.Raw)
	}
}
