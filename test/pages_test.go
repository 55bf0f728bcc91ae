package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/flashgate/flashgate/internal/alipay"
	"github.com/flashgate/flashgate/internal/config"
	"github.com/flashgate/flashgate/internal/testenv"
)

// TestLiveView checks GET /admin/v1/items/{id}/live: per-shard remaining,
// the fleet's answers per second by code, orders by status.
func TestLiveView(t *testing.T) {
	s := start(t, nil)
	item := s.sale(-time.Minute, time.Hour, map[string]any{"stock": 3, "shards": 3})
	for user := int64(1); user <= 3; user++ {
		if a := s.buy(item, s.token(user)); a.Status != 202 {
			t.Fatalf("buy %d: %d %s", user, a.Status, a.Raw)
		}
	}
	s.buy(item, s.token(1)) // duplicate
	s.buy(item, s.token(4)) // sold out
	s.buy(item, "")         // unauthorized: counted too, the id is in the path
	s.settle(item)

	type live struct {
		ItemID    int64 `json:"item_id"`
		Stock     int64
		Remaining int64
		Shards    []struct{ Shard, Remaining, InTransfer int64 }
		Answers   struct {
			From, To int64
			Codes    map[string][]int64
		}
		Orders struct{ Unpaid, Paid, Cancelled, Refunded int64 }
	}
	read := func(query string) (live, answer) {
		t.Helper()
		a := s.adminDo("GET", fmt.Sprintf("/admin/v1/items/%d/live%s", item, query), nil)
		var body struct{ Live live }
		if a.Status == 200 {
			if err := json.Unmarshal([]byte(a.Raw), &body); err != nil {
				t.Fatal(err)
			}
		}
		return body.Live, a
	}
	sum := func(v []int64) (n int64) {
		for _, x := range v {
			n += x
		}
		return n
	}
	var l live
	testenv.Eventually(t, 5*time.Second, func() error {
		var a answer
		if l, a = read(""); a.Status != 200 {
			return fmt.Errorf("live: %d %s", a.Status, a.Raw)
		}
		c := l.Answers.Codes
		if sum(c["ok"]) != 3 || sum(c["duplicate"]) != 1 || sum(c["sold_out"]) != 1 || sum(c["unauthorized"]) != 1 {
			return fmt.Errorf("answers not all counted yet: %v", c)
		}
		return nil
	})
	if l.ItemID != item || l.Stock != 3 || l.Remaining != 0 || len(l.Shards) != 3 || l.Orders.Unpaid != 3 {
		t.Fatalf("live: %+v", l)
	}
	for _, sh := range l.Shards {
		if sh.Remaining != 0 || sh.InTransfer != 0 {
			t.Fatalf("shard %+v of a sold-out item", sh)
		}
	}
	if n := l.Answers.To - l.Answers.From + 1; n != 60 || int64(len(l.Answers.Codes["ok"])) != n || len(l.Answers.Codes["rate_limited"]) != 60 {
		t.Fatalf("window %d..%d, series %d", l.Answers.From, l.Answers.To, len(l.Answers.Codes["ok"]))
	}
	if now := time.Now().Unix(); l.Answers.To > now || l.Answers.To < now-3 {
		t.Fatalf("window ends at %d, now %d", l.Answers.To, now)
	}
	if l, a := read("?seconds=5"); a.Status != 200 || len(l.Answers.Codes["ok"]) != 5 {
		t.Fatalf("seconds=5: %d %s", a.Status, a.Raw)
	}
	for q, status := range map[string]int{"?seconds=0": 400, "?seconds=x": 400, "?seconds=999": 400} {
		if _, a := read(q); a.Status != status || a.code() != "invalid" {
			t.Errorf("%s: %d %s", q, a.Status, a.Raw)
		}
	}
	if a := s.adminDo("GET", "/admin/v1/items/987654/live", nil); a.Status != 404 {
		t.Errorf("unknown item: %d %s", a.Status, a.Raw)
	}
	if a := s.do("GET", fmt.Sprintf("%s/admin/v1/items/%d/live", s.admin, item), "", nil); a.Status != 401 {
		t.Errorf("without the admin token: %d", a.Status)
	}
}

// TestConsoleAndDevSignIn checks what the pages stand on: the console is
// served without the token (its API is not), and only dev signs shoppers in.
func TestConsoleAndDevSignIn(t *testing.T) {
	s := start(t, nil)
	resp, err := s.http.Get(s.admin + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != 200 || !strings.Contains(string(body), "console.js?v=") || etag == "" ||
		resp.Header.Get("X-Frame-Options") != "DENY" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Fatalf("console: %d %v", resp.StatusCode, resp.Header)
	}
	req, _ := http.NewRequest("GET", s.admin+"/", nil)
	req.Header.Set("If-None-Match", etag)
	if resp, err := s.http.Do(req); err != nil || resp.StatusCode != 304 {
		t.Fatalf("console revalidation: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if a := s.do("GET", s.admin+"/admin/v1/activities/1", "", nil); a.Status != 401 {
		t.Fatalf("admin API without a token: %d", a.Status)
	}

	a := s.do("POST", s.gw+"/dev/token", "", map[string]any{"user_id": 77})
	if a.Status != 200 || a.str("token") == "" {
		t.Fatalf("dev token: %d %s", a.Status, a.Raw)
	}
	item := s.sale(-time.Minute, time.Hour, map[string]any{"stock": 1})
	if b := s.buy(item, a.str("token")); b.Status != 202 {
		t.Fatalf("buy with the dev token: %d %s", b.Status, b.Raw)
	}
}

// TestCaptchaAndCountsAcrossGateways runs a second gateway on the same
// Redis, database and broker: a captcha handed out by one is checked by the
// other, once; the live view adds up the answers of both.
func TestCaptchaAndCountsAcrossGateways(t *testing.T) {
	s := start(t, nil)
	c := *s.app.Config
	c.Role = config.RoleGateway
	c.HTTPAddr = "127.0.0.1:0"
	c.KafkaBrokers = s.app.Brokers
	gw2 := "http://" + testenv.Start(t, &c).HTTPAddr
	item := s.sale(-time.Minute, time.Hour, map[string]any{"stock": 5, "require_captcha": true})
	path := func(gw string, user int64, query string) answer {
		return s.do("GET", fmt.Sprintf("%s/api/v1/seckill/%d/path%s", gw, item, query), s.token(user), nil)
	}
	if a := path(s.gw, 1, ""); a.Status != 403 || a.code() != "forbidden" {
		t.Fatalf("path without captcha: %d %s", a.Status, a.Raw)
	}
	// solved draws a captcha on gw and reads its answer from Redis.
	rc := s.app.Store.Client()
	solved := func(gw string) string {
		cp := s.do("GET", gw+"/api/v1/captcha", "", nil)
		if cp.Status != 200 || !strings.HasPrefix(cp.str("image"), "data:image/png;base64,") {
			t.Fatalf("captcha: %d %.100s", cp.Status, cp.Raw)
		}
		ans, err := rc.Do(context.Background(), rc.B().Get().Key(s.app.Store.Prefix()+":captcha:"+cp.str("captcha_id")).Build()).ToString()
		if err != nil {
			t.Fatal(err)
		}
		return "?captcha_id=" + url.QueryEscape(cp.str("captcha_id")) + "&captcha=" + ans
	}
	q := solved(s.gw)
	p := path(gw2, 1, q)
	if p.Status != 200 || p.str("path") == "" {
		t.Fatalf("answer checked by the other gateway: %d %s", p.Status, p.Raw)
	}
	if a := path(s.gw, 1, q); a.Status != 403 {
		t.Fatalf("the answer used again on the first gateway: %d %s", a.Status, a.Raw)
	}
	buyURL := func(gw string) string { return fmt.Sprintf("%s/api/v1/seckill/%d", gw, item) }
	// The captcha guards the buy through the path: no path, no buy.
	if a := s.do("POST", buyURL(gw2), s.token(1), nil); a.Status != 403 || a.code() != "forbidden" {
		t.Fatalf("buy without the path: %d %s", a.Status, a.Raw)
	}
	if a := s.do("POST", buyURL(gw2)+"?path="+p.str("path"), s.token(1), nil); a.Status != 202 {
		t.Fatalf("buy on the second gateway: %d %s", a.Status, a.Raw)
	}
	p2 := path(s.gw, 2, solved(gw2))
	if p2.Status != 200 || p2.str("path") == "" {
		t.Fatalf("second shopper's path with an answer from the other gateway: %d %s", p2.Status, p2.Raw)
	}
	if a := s.do("POST", buyURL(s.gw)+"?path="+p2.str("path"), s.token(2), nil); a.Status != 202 {
		t.Fatalf("buy on the first gateway: %d %s", a.Status, a.Raw)
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		a := s.adminDo("GET", fmt.Sprintf("/admin/v1/items/%d/live", item), nil)
		var body struct {
			Live struct {
				Answers struct{ Codes map[string][]int64 }
			}
		}
		json.Unmarshal([]byte(a.Raw), &body)
		var n int64
		for _, v := range body.Live.Answers.Codes["ok"] {
			n += v
		}
		if n != 2 {
			return fmt.Errorf("202s counted by the fleet: %d, want 2", n)
		}
		return nil
	})
	act := s.adminDo("GET", fmt.Sprintf("/admin/v1/activities/%d", itemActivity(t, s, item)), nil)
	if !strings.Contains(act.Raw, `"require_captcha":true`) {
		t.Fatalf("admin activity does not show require_captcha: %s", act.Raw)
	}
}

func itemActivity(t *testing.T, s *stack, item int64) int64 {
	t.Helper()
	a := s.do("GET", fmt.Sprintf("%s/api/v1/items/%d", s.gw, item), "", nil)
	if a.Status != 200 {
		t.Fatalf("item: %d %s", a.Status, a.Raw)
	}
	return int64(a.Body["item"].(map[string]any)["activity_id"].(float64))
}

// TestWapPay: a phone pays through alipay.trade.wap.pay; the sandbox serves
// it like page pay and returns with the wap return method.
func TestWapPay(t *testing.T) {
	s := start(t, nil)
	item := s.sale(-time.Minute, time.Hour, map[string]any{"stock": 2, "price": "19.90", "name": "phone"})
	id := s.buyOrder(item, 1)
	s.waitStatus(id, 1, "unpaid", 10*time.Second)
	for body, status := range map[string]int{
		`{"channel":"alipay","mode":"desk"}`: 422, `{"channel":"points","mode":"wap"}`: 422, `{"channel":"alipay","mode":1}`: 400,
	} {
		if a := s.pay(id, 1, body); a.Status != status || a.code() != "invalid" {
			t.Errorf("%s: %d %s", body, a.Status, a.Raw)
		}
	}
	a := s.pay(id, 1, map[string]string{"channel": "alipay", "mode": "wap"})
	if a.Status != 200 {
		t.Fatalf("wap pay: %d %s", a.Status, a.Raw)
	}
	u, _ := url.Parse(a.str("pay_url"))
	q := u.Query()
	var biz map[string]string
	json.Unmarshal([]byte(q.Get("biz_content")), &biz)
	if q.Get("method") != alipay.MethodWapPay || biz["product_code"] != alipay.ProductCodeWapPay ||
		biz["quit_url"] != fmt.Sprintf("%s/items/%d", s.gw, item) || q.Get("return_url") != s.gw+"/pay/alipay/return" {
		t.Fatalf("wap pay_url: %v %v", q, biz)
	}
	s.openCashier(a.str("pay_url"))
	resp, err := s.http.Post("http://"+s.app.PaysimAddr+"/sim/pay?out_trade_no="+url.QueryEscape(id), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var paid struct {
		ReturnURL string `json:"return_url"`
	}
	json.NewDecoder(resp.Body).Decode(&paid)
	resp.Body.Close()
	ret, _ := url.Parse(paid.ReturnURL)
	if ret.Query().Get("method") != alipay.MethodWapPayReturn {
		t.Fatalf("wap return: %s", paid.ReturnURL)
	}
	s.waitStatus(id, 1, "paid", 10*time.Second)
	// The return page shows the order and links back to the item.
	page, err := s.http.Get(paid.ReturnURL)
	if err != nil {
		t.Fatal(err)
	}
	html, _ := io.ReadAll(page.Body)
	page.Body.Close()
	if page.StatusCode != 200 || !strings.Contains(string(html), fmt.Sprintf(`href="/items/%d"`, item)) || !strings.Contains(string(html), "paid") {
		t.Fatalf("return page: %d %s", page.StatusCode, html)
	}
}

// TestPatchRequireCaptcha: an item takes require_captcha in PATCH before
// publish, and the published item shows it.
func TestPatchRequireCaptcha(t *testing.T) {
	s := start(t, nil)
	now := time.Now()
	a := s.adminDo("POST", "/admin/v1/activities", map[string]any{"name": "x",
		"start_at": now.Add(-time.Minute).Format(time.RFC3339), "end_at": now.Add(time.Hour).Format(time.RFC3339)})
	act := int64(a.Body["id"].(float64))
	a = s.adminDo("POST", fmt.Sprintf("/admin/v1/activities/%d/items", act), map[string]any{"name": "i", "price": "1.00", "stock": 2})
	item := int64(a.Body["id"].(float64))
	a = s.adminDo("PATCH", fmt.Sprintf("/admin/v1/items/%d", item), map[string]any{"require_captcha": true})
	if a.Status != 200 || a.Body["item"].(map[string]any)["require_captcha"] != true {
		t.Fatalf("patch: %d %s", a.Status, a.Raw)
	}
	if a := s.adminDo("PATCH", fmt.Sprintf("/admin/v1/items/%d", item), map[string]any{"require_captcha": "yes"}); a.Status != 400 {
		t.Fatalf("patch with a string: %d %s", a.Status, a.Raw)
	}
	if a := s.adminDo("POST", fmt.Sprintf("/admin/v1/activities/%d/publish", act), nil); a.Status != 200 {
		t.Fatalf("publish: %d %s", a.Status, a.Raw)
	}
	if a := s.do("GET", fmt.Sprintf("%s/api/v1/items/%d", s.gw, item), "", nil); a.Body["item"].(map[string]any)["require_captcha"] != true {
		t.Fatalf("public item: %s", a.Raw)
	}
	if a := s.do("GET", fmt.Sprintf("%s/api/v1/seckill/%d/path", s.gw, item), s.token(1), nil); a.Status != 403 {
		t.Fatalf("path without captcha: %d %s", a.Status, a.Raw)
	}
}
