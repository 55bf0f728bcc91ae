package test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/flashgate/flashgate/internal/testenv"
)

// chromiumPath finds Debian's chromium (scripts/services.sh installs it).
// Its absence fails the test: the pages are part of the product.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("FLASHGATE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium is required for the browser test: run scripts/services.sh (apt-get install chromium)")
	return ""
}

// browser starts a headless Chromium with a fresh profile and flags that
// keep it off the network, and returns a context of its first tab.
func browser(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	// A fresh profile. Not t.TempDir: Chromium's helper processes may
	// still write to it for a moment after the browser exits, and
	// t.TempDir fails the test when it cannot remove it at once.
	profile, err := os.MkdirTemp("", "flashgate-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(profile),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints"),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	ctx, cancelTime := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() {
		cancelTime()
		cancelTab()
		cancelAlloc()
		for i := 0; i < 20 && os.RemoveAll(profile) != nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
	})
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// screens keeps the screenshots of the browser test: in the test's temp
// directory, or in FLASHGATE_SCREENSHOTS (make screenshots points it at
// docs/screens).
type screens struct {
	t   *testing.T
	dir string
}

func newScreens(t *testing.T) *screens {
	dir := os.Getenv("FLASHGATE_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return &screens{t: t, dir: dir}
}

// shot captures the viewport of ctx as name.png.
func (s *screens) shot(ctx context.Context, name string) {
	s.t.Helper()
	var png []byte
	if err := chromedp.Run(ctx, chromedp.Sleep(500*time.Millisecond), chromedp.CaptureScreenshot(&png)); err != nil {
		s.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, name+".png"), png, 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// phone and desktop size a tab.
var (
	phone   = chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch)
	desktop = chromedp.EmulateViewport(1280, 860)
)

// front brings a tab to the front: a background tab is not laid out, and
// clicks in it wait for a frame that does not come.
var front = chromedp.ActionFunc(func(ctx context.Context) error { return page.BringToFront().Do(ctx) })

func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action) {
	t.Helper()
	began := time.Now()
	defer func() { t.Logf("%s: %v", what, time.Since(began).Round(time.Millisecond)) }()
	if err := chromedp.Run(ctx, actions...); err != nil {
		var url, body string
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		chromedp.Run(c, chromedp.Location(&url), chromedp.Text("body", &body, chromedp.ByQuery))
		cancel()
		t.Fatalf("%s: %v\nat %s:\n%s", what, err, url, body)
	}
}

// TestBrowserStory drives real pages through a whole sale: the console
// creates and publishes it, a desktop shopper signs in, buys, pays in the
// Alipay sandbox's cashier and sees paid pushed; a phone shopper does the
// same through wap pay; the console's live view shows the units gone; a
// refund brings one back.
func TestBrowserStory(t *testing.T) {
	s := start(t, nil)
	ctx := browser(t, 100*time.Second)
	shots := newScreens(t)

	// The console: sign in, create a sale open from a minute ago, add an
	// item, publish.
	console := ctx
	run(t, console, "console sign-in",
		desktop,
		chromedp.Navigate(s.admin+"/"),
		chromedp.WaitVisible("#admin-token", chromedp.ByQuery),
		chromedp.SendKeys("#admin-token", s.app.Config.AdminToken, chromedp.ByQuery),
		chromedp.Click("#signin", chromedp.ByQuery),
		chromedp.WaitVisible("#new-activity", chromedp.ByQuery),
	)
	var activityHash string
	run(t, console, "console creates a sale",
		chromedp.SendKeys("#new-name", "Singles Day", chromedp.ByQuery),
		chromedp.Evaluate(`(() => {
			const f = (t) => { const d = new Date(t), p = (n) => String(n).padStart(2, '0');
				return d.getFullYear()+'-'+p(d.getMonth()+1)+'-'+p(d.getDate())+'T'+p(d.getHours())+':'+p(d.getMinutes()); };
			document.getElementById('new-start').value = f(Date.now() - 120000);
			document.getElementById('new-end').value = f(Date.now() + 3600000);
		})()`, nil),
		chromedp.Click("#create", chromedp.ByQuery),
		chromedp.WaitVisible("#new-item", chromedp.ByQuery),
		chromedp.Evaluate(`location.hash`, &activityHash),
	)
	run(t, console, "console adds an item and publishes",
		chromedp.SendKeys(`#new-item input[name=name]`, "Pocket phone", chromedp.ByQuery),
		chromedp.SendKeys(`#new-item input[name=price]`, "19.90", chromedp.ByQuery),
		chromedp.SetValue(`#new-item input[name=stock]`, "3", chromedp.ByQuery),
		chromedp.SetValue(`#new-item input[name=shards]`, "2", chromedp.ByQuery),
		chromedp.Click("#add-item", chromedp.ByQuery),
		chromedp.WaitVisible(`#items tr[data-item]`, chromedp.ByQuery),
		chromedp.Click("#publish", chromedp.ByQuery),
		chromedp.WaitVisible(`.head .chip[data-status=live]`, chromedp.ByQuery),
		chromedp.WaitVisible(`a[data-live]`, chromedp.ByQuery),
	)
	var itemID string
	var ok bool
	run(t, console, "read the item id", chromedp.AttributeValue(`#items tr[data-item]`, "data-item", &itemID, &ok, chromedp.ByQuery))
	if !ok || itemID == "" {
		t.Fatalf("no item id in the console (%s)", activityHash)
	}
	shots.shot(console, "console-sale-desktop")

	// Two more sales through the API, so that the storefront shows a shop:
	// one live, one upcoming.
	s.namedSale("Earbuds week", -time.Minute, 2*time.Hour, map[string]any{"name": "Wireless earbuds", "price": "9.90", "stock": 500, "shards": 4})
	s.namedSale("Midnight deals", 25*time.Minute, 3*time.Hour, map[string]any{"name": "Smart watch", "price": "99.00", "stock": 20})

	// The storefront, desktop: the sale is listed; sign in, buy.
	shop, cancelShop := chromedp.NewContext(ctx)
	defer cancelShop()
	run(t, shop, "storefront lists the sale",
		desktop,
		chromedp.Navigate(s.gw+"/"),
		chromedp.WaitVisible(fmt.Sprintf(`a.card[data-item="%s"]`, itemID), chromedp.ByQuery),
	)
	shots.shot(shop, "storefront-desktop")
	run(t, shop, "desktop shopper signs in and buys",
		chromedp.Click(fmt.Sprintf(`a.card[data-item="%s"]`, itemID), chromedp.ByQuery),
		chromedp.WaitVisible("#user-id", chromedp.ByQuery),
		chromedp.SendKeys("#user-id", "42", chromedp.ByQuery),
		chromedp.Click("#signin-btn", chromedp.ByQuery),
		chromedp.WaitVisible("#signout", chromedp.ByQuery),
		chromedp.WaitEnabled("#buy", chromedp.ByQuery),
		chromedp.Click("#buy", chromedp.ByQuery),
		chromedp.WaitVisible(`#order-status[data-status=unpaid]`, chromedp.ByQuery),
	)
	var stored string
	run(t, shop, "token in localStorage", chromedp.Evaluate(`localStorage.getItem("flashgate.token")`, &stored))
	if strings.Count(stored, ".") != 2 {
		t.Fatalf(`localStorage["flashgate.token"] = %q, want a JWT`, stored)
	}

	// Pay: the cashier opens in a new tab; this tab's WebSocket gets paid.
	newTab := chromedp.WaitNewTarget(shop, func(*target.Info) bool { return true })
	run(t, shop, "open the alipay cashier", chromedp.Click("#pay-alipay", chromedp.ByQuery))
	var tabID target.ID
	select {
	case tabID = <-newTab:
	case <-time.After(10 * time.Second):
		t.Fatal("the cashier tab did not open")
	}
	cashier, cancelCashier := chromedp.NewContext(shop, chromedp.WithTargetID(tabID))
	defer cancelCashier()
	var kind string
	run(t, cashier, "pay in the sandbox (page pay)",
		chromedp.WaitVisible("button.pay", chromedp.ByQuery),
		chromedp.Text("#kind", &kind, chromedp.ByQuery),
		chromedp.Click("button.pay", chromedp.ByQuery),
		chromedp.WaitVisible("#status", chromedp.ByQuery),
	)
	if !strings.Contains(kind, "alipay.trade.page.pay") {
		t.Errorf("desktop cashier is %q, want page pay", kind)
	}
	run(t, shop, "paid is pushed to the item page",
		front,
		chromedp.WaitVisible(`#order-status[data-status=paid]`, chromedp.ByQuery),
		chromedp.WaitVisible("#refund", chromedp.ByQuery),
	)
	shots.shot(shop, "item-desktop")

	// The storefront on a phone (another browser: a profile of its own):
	// another shopper, wap pay in the same tab, back to the item through
	// the return page.
	mobile := browser(t, 60*time.Second)
	run(t, mobile, "phone storefront",
		phone,
		chromedp.Navigate(s.gw+"/"),
		chromedp.WaitVisible(fmt.Sprintf(`a.card[data-item="%s"]`, itemID), chromedp.ByQuery),
	)
	shots.shot(mobile, "storefront-phone")
	run(t, mobile, "phone shopper signs in, buys and pays with wap pay",
		chromedp.Navigate(s.gw+"/items/"+itemID),
		chromedp.WaitVisible("#user-id", chromedp.ByQuery),
		chromedp.SendKeys("#user-id", "43", chromedp.ByQuery),
		chromedp.Click("#signin-btn", chromedp.ByQuery),
		chromedp.WaitEnabled("#buy", chromedp.ByQuery),
		chromedp.Click("#buy", chromedp.ByQuery),
		chromedp.WaitVisible(`#order-status[data-status=unpaid]`, chromedp.ByQuery),
	)
	shots.shot(mobile, "item-phone")
	run(t, mobile, "wap cashier",
		chromedp.Click("#pay-alipay", chromedp.ByQuery),
		chromedp.WaitVisible("button.pay", chromedp.ByQuery),
		chromedp.Text("#kind", &kind, chromedp.ByQuery),
	)
	if !strings.Contains(kind, "alipay.trade.wap.pay") {
		t.Errorf("phone cashier is %q, want wap pay", kind)
	}
	shots.shot(mobile, "paysim-wap-phone")
	run(t, mobile, "pay and come back",
		chromedp.Click("button.pay", chromedp.ByQuery),
		chromedp.WaitVisible("#back", chromedp.ByQuery),
		chromedp.Click("#back", chromedp.ByQuery),
		chromedp.WaitVisible(`#order-status[data-status=paid]`, chromedp.ByQuery),
	)

	// The console's live view: two of three units gone, two 202s counted.
	run(t, console, "live view",
		front,
		chromedp.Click(fmt.Sprintf(`a[data-live="%s"]`, itemID), chromedp.ByQuery),
		waitText(`#live-remaining`, "1"),
		waitText(`#orders-paid`, "2"),
		waitFor(`#answers-legend [data-code=ok][data-total="2"]`),
		waitFor(`#shards svg rect[data-shard="1"]`),
	)
	shots.shot(console, "console-live-desktop")

	// A refund puts the unit back; the live view follows.
	run(t, shop, "refund",
		front,
		chromedp.Click("#refund", chromedp.ByQuery),
		chromedp.WaitVisible(`#order-status[data-status=refunded]`, chromedp.ByQuery),
	)
	run(t, console, "live view after the refund",
		front,
		waitText(`#live-remaining`, "2"),
		waitText(`#orders-refunded`, "1"),
		phone,
	)
	shots.shot(console, "console-live-phone")
	run(t, console, "the sales, by status",
		desktop,
		chromedp.Navigate(s.admin+"/#/"),
		waitFor(`#activities tr[data-activity]`),
	)
	var rows int
	run(t, console, "count the sales", chromedp.Evaluate(`document.querySelectorAll('#activities tr[data-activity]').length`, &rows))
	if rows != 3 {
		t.Fatalf("the console lists %d sales, want 3", rows)
	}
	shots.shot(console, "console-sales-desktop")

	// The console's other actions, each checked through the API.
	run(t, console, "grant points",
		chromedp.Navigate(s.admin+"/#/points"),
		chromedp.WaitVisible("#points-user", chromedp.ByQuery),
		chromedp.SendKeys("#points-user", "42", chromedp.ByQuery),
		chromedp.SendKeys("#points-delta", "500", chromedp.ByQuery),
		chromedp.Click("#grant", chromedp.ByQuery),
		waitText("#points-balance", "500 pts"),
	)
	if b := s.balance(42); b != 500 {
		t.Fatalf("balance of 42 after the console's grant: %d", b)
	}
	run(t, console, "ban a shopper",
		chromedp.Navigate(s.admin+"/#/bans"),
		chromedp.WaitVisible("#ban-user", chromedp.ByQuery),
		chromedp.SendKeys("#ban-user", "99", chromedp.ByQuery),
		chromedp.SendKeys("#ban-ttl", "10m", chromedp.ByQuery),
		chromedp.Click("#ban", chromedp.ByQuery),
		waitFor(`.toast`),
	)
	testenv.Eventually(t, 5*time.Second, func() error {
		// The path, not the buy: a buy before the ban lands would take a unit.
		if a := s.do("GET", s.gw+"/api/v1/seckill/"+itemID+"/path", s.token(99), nil); a.Status != 403 || a.code() != "forbidden" {
			return fmt.Errorf("path of a banned shopper: %d %s", a.Status, a.Raw)
		}
		return nil
	})
	run(t, console, "adjust stock",
		chromedp.Navigate(s.admin+"/"+activityHash),
		chromedp.WaitVisible(fmt.Sprintf(`input[data-stock="%s"]`, itemID), chromedp.ByQuery),
		chromedp.SendKeys(fmt.Sprintf(`input[data-stock="%s"]`, itemID), "2", chromedp.ByQuery),
		chromedp.Click(fmt.Sprintf(`button[data-stock-go="%s"]`, itemID), chromedp.ByQuery),
		waitText(fmt.Sprintf(`#items tr[data-item="%s"] td:nth-child(4)`, itemID), "5"),
	)
	if st := s.stats(mustID(t, itemID)); st.Stock != 5 || st.Remaining != 4 {
		t.Fatalf("after adding 2 units in the console: %+v", st)
	}
	run(t, console, "schedule a sale, then cancel the schedule",
		chromedp.Navigate(s.admin+"/#/"),
		chromedp.WaitVisible("#new-activity", chromedp.ByQuery),
		chromedp.SendKeys("#new-name", "Later", chromedp.ByQuery),
		chromedp.Click("#create", chromedp.ByQuery),
		chromedp.WaitVisible("#new-item", chromedp.ByQuery),
		chromedp.SendKeys(`#new-item input[name=name]`, "Lamp", chromedp.ByQuery),
		chromedp.SendKeys(`#new-item input[name=price]`, "5", chromedp.ByQuery),
		chromedp.Click("#add-item", chromedp.ByQuery),
		chromedp.WaitVisible(`#items tr[data-item]`, chromedp.ByQuery),
		chromedp.Click("#schedule", chromedp.ByQuery),
		chromedp.WaitVisible(`.head .chip[data-status=scheduled]`, chromedp.ByQuery),
		chromedp.Click("#unschedule", chromedp.ByQuery),
		chromedp.WaitVisible(`.head .chip[data-status=draft]`, chromedp.ByQuery),
	)
	st := s.settle(mustID(t, itemID))
	if st.Paid != 1 || st.Refunded != 1 || st.Stock != 5 || st.Remaining != 4 {
		t.Fatalf("after the story: %+v", st)
	}
}

// waitFor waits until an element matches sel, looked up in the page (see
// waitText).
func waitFor(sel string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		var ok bool
		js := fmt.Sprintf(`!!document.querySelector(%q)`, sel)
		for {
			if err := chromedp.Run(ctx, chromedp.Evaluate(js, &ok)); err != nil {
				return err
			}
			if ok {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("no %s: %w", sel, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
}

// waitText waits until the element's text is want. It reads the text in
// the page, in one step: the live view redraws its nodes every second, and
// a node looked up in one call may be gone by the next.
func waitText(sel, want string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		var got string
		js := fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ""`, sel)
		for {
			if err := chromedp.Run(ctx, chromedp.Evaluate(js, &got)); err != nil {
				return err
			}
			if strings.TrimSpace(got) == want {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s is %q, want %q: %w", sel, got, want, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
}

func mustID(t *testing.T, s string) int64 {
	t.Helper()
	var id int64
	if _, err := fmt.Sscan(s, &id); err != nil {
		t.Fatalf("id %q: %v", s, err)
	}
	return id
}

// namedSale creates and publishes an activity called name with one item.
func (s *stack) namedSale(name string, start, end time.Duration, item map[string]any) {
	s.t.Helper()
	now := time.Now()
	a := s.adminDo("POST", "/admin/v1/activities", map[string]any{
		"name": name, "start_at": now.Add(start).Format(time.RFC3339), "end_at": now.Add(end).Format(time.RFC3339)})
	if a.Status != 201 {
		s.t.Fatalf("create activity: %d %s", a.Status, a.Raw)
	}
	act := int64(a.Body["id"].(float64))
	if a := s.adminDo("POST", fmt.Sprintf("/admin/v1/activities/%d/items", act), item); a.Status != 201 {
		s.t.Fatalf("add item: %d %s", a.Status, a.Raw)
	}
	if a := s.adminDo("POST", fmt.Sprintf("/admin/v1/activities/%d/publish", act), nil); a.Status != 200 {
		s.t.Fatalf("publish: %d %s", a.Status, a.Raw)
	}
}
