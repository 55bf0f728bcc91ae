// Package chaos is flashgate's fault suite: a fleet of separate processes
// (an own redis-server with AOF, `flashgate broker`, an admin, two gateways,
// two workers, MySQL behind a TCP proxy) under a paced storm of buys, while
// the suite kills, freezes, cuts, fills and rewinds its parts. Each case ends
// with the invariants checked from the client's records and seckill_order,
// and prints a table.
//
// `go test ./test/chaos` (CI, part of `make test`) runs a short selection;
// `make chaos` (FLASHGATE_CHAOS=full) runs every case with longer storms;
// FLASHGATE_CHAOS_CASE=text runs the cases whose name holds text,
// FLASHGATE_CHAOS_ACK=redis runs the fleet with FLASHGATE_ACK=redis, and
// FLASHGATE_CHAOS_LOGS=dir keeps the processes' logs there.
package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// full reports whether the long version runs.
func full() bool { return os.Getenv("FLASHGATE_CHAOS") == "full" }

// settleWithin is the stated time for a case to settle after its fault is
// over and its storm ended: every 202 a row, nothing left in the outboxes.
const settleWithin = 60 * time.Second

// chaosCase is one fault: inject runs a third into the storm, recover two
// thirds into it (or right away when nil).
type chaosCase struct {
	name    string
	short   bool // part of the CI selection
	repairs bool // the fault restarts Redis: the workers must repair items
	inject  func(f *fleet) string
	recover func(f *fleet, state string)
}

func cases() []chaosCase {
	kill := func(pick func(f *fleet) *proc) chaosCase {
		return chaosCase{
			inject: func(f *fleet) string { pick(f).signal(f.t, syscall.SIGKILL); return "" },
			recover: func(f *fleet, _ string) {
				p := pick(f)
				p.start(f.t)
				if p != f.broker {
					f.waitReady(p)
				}
			},
		}
	}
	with := func(c chaosCase, name string, short bool) chaosCase { c.name, c.short = name, short; return c }
	return []chaosCase{
		with(kill(func(f *fleet) *proc { return f.gateways[0] }), "kill -9 gateway", true),
		with(kill(func(f *fleet) *proc { return f.workers[0] }), "kill -9 worker", true),
		with(kill(func(f *fleet) *proc { return f.admin }), "kill -9 admin", false),
		with(kill(func(f *fleet) *proc { return f.broker }), "kill -9 broker (in memory: its log is lost)", false),
		{name: "kill -9 redis, AOF intact", repairs: true, inject: func(f *fleet) string {
			f.redis.signal(f.t, syscall.SIGKILL)
			return ""
		}, recover: func(f *fleet, _ string) { f.restartRedis() }},
		{name: "kill -9 redis, AOF truncated by 1s", short: true, repairs: true, inject: func(f *fleet) string {
			// The suffix after the last whole second is what a host crash
			// loses, at the least; cut one second more.
			ts := time.Now().Unix() - 1
			f.redis.signal(f.t, syscall.SIGKILL)
			f.truncateAOF(ts)
			return ""
		}, recover: func(f *fleet, _ string) { f.restartRedis() }},
		{name: "broker frozen (SIGSTOP) a third of the storm", short: true, inject: func(f *fleet) string {
			f.broker.signal(f.t, syscall.SIGSTOP)
			return ""
		}, recover: func(f *fleet, _ string) { f.broker.signal(f.t, syscall.SIGCONT) }},
		{name: "mysql cut (proxy)", short: true, inject: func(f *fleet) string {
			f.mysql.Cut()
			return ""
		}, recover: func(f *fleet, _ string) { f.mysql.Restore() }},
		{name: "redis out of memory", inject: func(f *fleet) string {
			ctx := context.Background()
			info, _ := f.rc.Do(ctx, f.rc.B().Info().Section("memory").Build()).ToString()
			used := "1"
			for _, l := range strings.Split(info, "\r\n") {
				if v, ok := strings.CutPrefix(l, "used_memory:"); ok {
					used = v
				}
			}
			if err := f.rc.Do(ctx, f.rc.B().ConfigSet().ParameterValue().ParameterValue("maxmemory", used).Build()).Error(); err != nil {
				f.t.Fatalf("config set maxmemory: %v", err)
			}
			return ""
		}, recover: func(f *fleet, _ string) {
			if err := f.rc.Do(context.Background(), f.rc.B().ConfigSet().ParameterValue().ParameterValue("maxmemory", "0").Build()).Error(); err != nil {
				f.t.Fatalf("config set maxmemory: %v", err)
			}
		}},
	}
}

// TestChaos runs the cases one after the other on one fleet, each on an
// item of its own.
func TestChaos(t *testing.T) {
	ack := os.Getenv("FLASHGATE_CHAOS_ACK")
	if ack == "" {
		ack = "kafka"
	}
	f := startFleet(t, ack)
	storm := 4 * time.Second
	if full() {
		storm = 12 * time.Second
	}
	var results []result
	for i, c := range cases() {
		if only := os.Getenv("FLASHGATE_CHAOS_CASE"); (only == "" && !full() && !c.short) || (only != "" && !strings.Contains(c.name, only)) {
			continue
		}
		r := f.run(c, int64(i+1), storm)
		results = append(results, r)
		t.Logf("\n%s", r.table())
		if r.err != nil {
			t.Errorf("%s: %v", c.name, r.err)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "chaos suite, FLASHGATE_ACK=%s, storm %v per case, settle limit %v\n\n", ack, storm, settleWithin)
	b.WriteString("| case | buys | 202 | 409 | 410 | 503 | other | rows | cancelled | repairs | settled in | result |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
	for _, r := range results {
		b.WriteString(r.row())
	}
	t.Logf("summary\n%s", b.String())
}

// result is what a case saw and checked.
type result struct {
	name                                   string
	stock                                  int
	buys, ok, dup, soldOut, unavail, other int
	rows, cancelled                        int
	repairs                                int // items the workers repaired during the case
	settled                                time.Duration
	err                                    error
}

func (r result) row() string {
	verdict := "pass"
	if r.err != nil {
		verdict = "FAIL: " + r.err.Error()
	}
	return fmt.Sprintf("| %s | %d | %d | %d | %d | %d | %d | %d | %d | %d | %.1fs | %s |\n", r.name, r.buys, r.ok, r.dup,
		r.soldOut, r.unavail, r.other, r.rows, r.cancelled, r.repairs, r.settled.Seconds(), verdict)
}

func (r result) table() string {
	verdict := "pass"
	if r.err != nil {
		verdict = "FAIL: " + r.err.Error()
	}
	return fmt.Sprintf(`case        %s
stock       %d
buys        %d: 202 %d, 409 duplicate %d, 410 sold out %d, 503 %d, other %d
orders      %d rows, %d cancelled
repairs     %d items rebuilt after a Redis rewind
settled in  %.1fs (limit %v)
invariants  every 202 a row of its user; every duplicate's order a row of its user; no cancelled order;
            no user twice; live orders <= stock and stats add up; outboxes empty; buys answered again
result      %s`, r.name, r.stock, r.buys, r.ok, r.dup, r.soldOut, r.unavail, r.other, r.rows, r.cancelled,
		r.repairs, r.settled.Seconds(), settleWithin, verdict)
}

// run storms a fresh item, injects the case's fault a third in and
// recovers two thirds in, then waits for the system to settle and checks.
func (f *fleet) run(c chaosCase, n int64, storm time.Duration) result {
	// Stock for about half the storm's buys, so that the sale is still on
	// when the fault strikes and when it is over.
	const shards, rate = 4, 400
	stock := int(storm.Seconds() * rate / 2)
	item := f.sale(fmt.Sprintf("chaos-%d", n), stock, shards)
	r := result{name: c.name, stock: stock}
	repairsBefore := f.repairs()
	// Users of this case: n*1e6 + 1 .. n*1e6 + 2*stock, each buying until
	// answered 202, 409 or 410; a holder retries once in a while to check
	// that it hears duplicate with its order.
	base := n * 1_000_000
	var mu sync.Mutex
	held := map[int64]string{}   // user -> order of its 202
	dups := map[int64][]string{} // user -> orders named by 409s
	done := map[int64]bool{}
	count := func(status int) {
		switch status {
		case 202:
			r.ok++
		case 409:
			r.dup++
		case 410:
			r.soldOut++
		case 503:
			r.unavail++
		default:
			r.other++
		}
		r.buys++
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	tick := time.NewTicker(time.Second / rate)
	defer tick.Stop()
	start := time.Now()
	injected, recovered := false, false
	var state string
	for now := range tick.C {
		el := now.Sub(start)
		if el >= storm {
			break
		}
		if !injected && el >= storm/3 {
			injected = true
			state = c.inject(f)
		}
		if injected && !recovered && el >= 2*storm/3 {
			recovered = true
			c.recover(f, state)
		}
		user := base + 1 + rand.Int64N(2*int64(stock))
		mu.Lock()
		if done[user] && rand.IntN(10) != 0 {
			mu.Unlock()
			continue
		}
		mu.Unlock()
		select {
		case sem <- struct{}{}:
		default:
			continue // the fleet is slower than the pace: skip a beat
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			gw := f.gwURLs[user%int64(len(f.gwURLs))]
			status, order := f.buy(gw, item, user)
			mu.Lock()
			defer mu.Unlock()
			count(status)
			switch status {
			case 202:
				if prev, ok := held[user]; ok {
					r.err = fmt.Errorf("user %d got a second 202 (%s after %s)", user, order, prev)
				}
				held[user] = order
				done[user] = true
			case 409:
				dups[user] = append(dups[user], order)
				done[user] = true
			case 410:
				done[user] = true
			}
		}()
	}
	if !recovered {
		c.recover(f, state)
	}
	wg.Wait()
	stormEnd := time.Now()
	if r.err != nil {
		return r
	}
	r.err = f.settleAndCheck(item, stock, shards, held, dups, &r)
	r.settled = time.Since(stormEnd)
	if r.err == nil {
		r.err = f.answersAgain(item, base+10*int64(stock))
	}
	r.repairs = f.repairs() - repairsBefore
	if r.err == nil && c.repairs && r.repairs == 0 {
		r.err = fmt.Errorf("Redis restarted and no item was repaired: the fence let the restored state sell")
	}
	return r
}

// repairs counts the repairs the workers logged so far.
func (f *fleet) repairs() int {
	n := 0
	for _, w := range f.workers {
		b, _ := os.ReadFile(w.log)
		n += strings.Count(string(b), "item repaired after a Redis rewind")
	}
	return n
}

// answersAgain checks that buys of the item are answered again (anything
// but 503 or no answer) within settleWithin: a fenced item is repaired, a
// dead process is back.
func (f *fleet) answersAgain(item, user int64) error {
	deadline := time.Now().Add(settleWithin)
	for _, gw := range f.gwURLs {
		for {
			status, _ := f.buy(gw, item, user)
			if status == 202 || status == 409 || status == 410 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("buys at %s still answered %d %v after the storm", gw, status, settleWithin)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// buy posts one buy and returns the status and the order id it names.
func (f *fleet) buy(gw string, item, user int64) (int, string) {
	req, _ := http.NewRequest("POST", fmt.Sprintf("%s/api/v1/seckill/%d", gw, item), nil)
	req.Header.Set("Authorization", "Bearer "+f.signer.Mint(user, time.Now().Add(time.Hour)))
	resp, err := f.http.Do(req)
	if err != nil {
		return 0, "" // the gateway is down: nothing answered
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body struct {
		OrderID string `json:"order_id"`
	}
	json.Unmarshal(raw, &body)
	return resp.StatusCode, body.OrderID
}

type orderRow struct {
	OrderID string `db:"order_id"`
	UserID  int64  `db:"user_id"`
	Status  string `db:"status"`
}

// settleAndCheck waits (up to settleWithin) until every 202 is a row and
// the item's outboxes are empty, then checks the invariants.
func (f *fleet) settleAndCheck(item int64, stock, shards int, held map[int64]string, dups map[int64][]string, r *result) error {
	ctx := context.Background()
	deadline := time.Now().Add(settleWithin)
	var rows []orderRow
	for {
		rows = rows[:0]
		err := f.db.SelectContext(ctx, &rows, "SELECT order_id, user_id, status FROM seckill_order WHERE item_id = ?", item)
		pending := 0
		if err == nil {
			for sh := 0; sh < shards; sh++ {
				k := fmt.Sprintf("chaos:{i%d:%d}:outbox", item, sh)
				n, e := f.rc.Do(ctx, f.rc.B().Hlen().Key(k).Build()).AsInt64()
				if e != nil {
					err = e
				}
				pending += int(n)
			}
		}
		byOrder := map[string]orderRow{}
		for _, o := range rows {
			byOrder[o.OrderID] = o
		}
		missing := 0
		for _, order := range held {
			if _, ok := byOrder[order]; !ok {
				missing++
			}
		}
		if err == nil && missing == 0 && pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not settled in %v: %d accepted buys without a row, %d outbox entries, err %v", settleWithin, missing, pending, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	byOrder := map[string]orderRow{}
	live := map[int64]int{}
	for _, o := range rows {
		byOrder[o.OrderID] = o
		if o.Status == "cancelled" {
			r.cancelled++
		}
		if o.Status == "unpaid" || o.Status == "paid" {
			live[o.UserID]++
		}
	}
	r.rows = len(rows)
	for user, order := range held {
		if o := byOrder[order]; o.UserID != user {
			return fmt.Errorf("202 of user %d (%s) is a row of user %d", user, order, o.UserID)
		}
	}
	for user, orders := range dups {
		for _, order := range orders {
			if o, ok := byOrder[order]; !ok || o.UserID != user {
				return fmt.Errorf("duplicate answered to user %d names %s, not a row of that user", user, order)
			}
		}
	}
	if r.cancelled > 0 {
		return fmt.Errorf("%d orders cancelled (none expire in a case: lack of stock or a second buy)", r.cancelled)
	}
	nlive := 0
	for user, k := range live {
		if k > 1 {
			return fmt.Errorf("user %d holds %d live orders", user, k)
		}
		nlive += k
	}
	if nlive > stock {
		return fmt.Errorf("oversold: %d live orders for %d units", nlive, stock)
	}
	// The admin's stats: live + reserved + remaining = stock, once the
	// reconciler has finished any transfer a fault interrupted.
	var last string
	for end := time.Now().Add(20 * time.Second); ; {
		st := f.adminDo("GET", fmt.Sprintf("/admin/v1/items/%d/stats", item), nil)["stats"].(map[string]any)
		num := func(k string) int { v, _ := st[k].(float64); return int(v) }
		sum := num("unpaid") + num("paid") + num("reserved") + num("remaining")
		if sum == stock && num("unpaid")+num("paid") == nlive {
			return nil
		}
		last = fmt.Sprintf("stats %v do not add up to stock %d with %d live rows", st, stock, nlive)
		if time.Now().After(end) {
			return fmt.Errorf("%s", last)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
