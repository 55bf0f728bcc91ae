package bench

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/flashgate/flashgate/internal/auth"
)

// unknownItem is an item id no test database reaches: the gateway must
// answer it 404.
const unknownItem int64 = 1<<53 - 1

// plan is a scenario made concrete: the items, the shoppers and how they
// buy.
type plan struct {
	items    []int64  // ids of the items the load targets; shots index this
	names    []string // what each item is, for reports
	onSale   []int    // indexes of the items on sale
	checked  []int64  // items whose invariants are checked
	tokens   *tokens
	presale  []Acceptance // soldout: units sold before the clock started
	picker   picker
	fair     *fairPicker // the fair scenario's picker, to ask who is left
	setupDur time.Duration
}

// setup creates the scenario's activities and items (unless cfg.ItemID
// names an existing one), mints the tokens and, for soldout, sells the
// stock out.
func setup(ctx context.Context, cfg *params, api *apiClient, signer *auth.Signer, progress io.Writer) (*plan, error) {
	began := time.Now()
	p := &plan{}
	// Tokens outlive everything the run may do.
	exp := time.Now().Add(time.Hour + 2*(cfg.Warmup+cfg.Duration+cfg.CalibrateDuration+cfg.DrainTimeout))

	presale := 0
	if cfg.ItemID > 0 {
		st, err := api.stats(ctx, cfg.ItemID)
		if err != nil {
			return nil, fmt.Errorf("setup: %w", err)
		}
		p.add(cfg.ItemID, "item "+strconv.FormatInt(cfg.ItemID, 10), true)
		switch cfg.Scenario {
		case ScenarioFair:
			if st.Remaining <= 0 {
				return nil, fmt.Errorf("setup: fair: item %d has no stock left", cfg.ItemID)
			}
			cfg.Users = int(st.Remaining)
		case ScenarioSoldOut:
			presale = int(st.Remaining)
		case ScenarioBuy:
			// Stock for every user, or the buy check would fail for us.
			cfg.Users = min(cfg.Users, int(st.Remaining))
			if cfg.Users <= 0 {
				return nil, fmt.Errorf("setup: buy: item %d has no stock left", cfg.ItemID)
			}
		}
		cfg.Stock = int(st.Stock)
	} else if err := p.create(ctx, cfg, api); err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	if cfg.Scenario == ScenarioSoldOut && cfg.ItemID == 0 {
		presale = cfg.Stock
	}

	p.tokens = mintTokens(signer, cfg.UserBase, cfg.Users, exp)

	for _, i := range p.onSale {
		if err := api.waitState(ctx, p.items[i], 10*time.Second, "active", "sold_out"); err != nil {
			return nil, fmt.Errorf("setup: wait for the sale to open: %w", err)
		}
	}
	switch cfg.Scenario {
	case ScenarioHot, ScenarioSoldOut:
		p.picker = &cyclePicker{toks: p.tokens, items: p.onSale}
	case ScenarioBuy:
		p.picker = buyPicker(p)
	case ScenarioFair:
		p.fair = newFairPicker(p.tokens, p.onSale[0])
		p.picker = p.fair
	case ScenarioMixed:
		if err := p.mixed(ctx, cfg, api, signer); err != nil {
			return nil, fmt.Errorf("setup: %w", err)
		}
	}
	if presale > 0 {
		if err := p.sellOut(ctx, cfg, api, signer, presale, exp, progress); err != nil {
			return nil, fmt.Errorf("setup: sell out: %w", err)
		}
	}
	p.setupDur = time.Since(began)
	return p, nil
}

// buyPicker sends every user once, in token order, at the first item on
// sale: a fresh user per request.
func buyPicker(p *plan) picker {
	return &cyclePicker{toks: p.tokens, items: p.onSale[:1], fresh: true}
}

// add appends an item the load targets and returns its index.
func (p *plan) add(id int64, name string, onSale bool) int {
	p.items = append(p.items, id)
	p.names = append(p.names, name)
	if onSale {
		p.onSale = append(p.onSale, len(p.items)-1)
		p.checked = append(p.checked, id)
	}
	return len(p.items) - 1
}

// create makes the scenario's activities and items through the admin API.
func (p *plan) create(ctx context.Context, cfg *params, api *apiClient) error {
	now := time.Now()
	stamp := now.UTC().Format("20060102-150405")
	// Open a second ago (times are whole seconds) until well after the run.
	end := now.Add(max(time.Hour, 3*(cfg.Warmup+cfg.Duration+cfg.CalibrateDuration+cfg.DrainTimeout)))
	n := 1
	if cfg.Scenario == ScenarioMixed {
		n = cfg.Items
	}
	ids, err := createActivity(ctx, cfg, api, "bench-"+cfg.Scenario+"-"+stamp, now.Add(-time.Second), end, n, cfg.Stock)
	if err != nil {
		return err
	}
	for i, id := range ids {
		p.add(id, fmt.Sprintf("on sale #%d", i+1), true)
	}
	return nil
}

// mixed adds the mixed scenario's upcoming, ended and unknown items and
// builds its picker. The ended item's sale lasts about a second, and the
// setup waits for the gateway to see it end.
func (p *plan) mixed(ctx context.Context, cfg *params, api *apiClient, signer *auth.Signer) error {
	mp := &mixedPicker{toks: p.tokens, active: p.onSale, upcoming: -1, ended: -1}
	mp.bad = append(badTokens(p.tokens.user(0)), expiredToken(signer, p.tokens.user(0)))
	if cfg.ItemID == 0 {
		now := time.Now()
		stamp := now.UTC().Format("20060102-150405")
		up, err := createActivity(ctx, cfg, api, "bench-mixed-upcoming-"+stamp, now.Add(time.Hour), now.Add(2*time.Hour), 1, 10)
		if err != nil {
			return err
		}
		// Whole seconds, half a second to a second and a half away: time
		// to publish, and not much to wait.
		endAt := now.Add(1500 * time.Millisecond).Truncate(time.Second)
		ended, err := createActivity(ctx, cfg, api, "bench-mixed-ended-"+stamp, now.Add(-time.Second), endAt, 1, 10)
		if err != nil {
			return err
		}
		mp.upcoming = p.add(up[0], "upcoming", false)
		mp.ended = p.add(ended[0], "ended", false)
		if err := api.waitState(ctx, up[0], 10*time.Second, "upcoming"); err != nil {
			return fmt.Errorf("wait for the upcoming item: %w", err)
		}
		if err := api.waitState(ctx, ended[0], time.Until(endAt)+10*time.Second, "ended"); err != nil {
			return fmt.Errorf("wait for the ended item: %w", err)
		}
	}
	mp.unknown = p.add(unknownItem, "unknown id", false)
	p.picker = mp
	return nil
}

// createActivity creates and publishes an activity with n items of stock
// units each, and returns the items' ids.
func createActivity(ctx context.Context, cfg *params, api *apiClient, name string, start, end time.Time, n, stock int) ([]int64, error) {
	act, err := api.createActivity(ctx, name, start, end)
	if err != nil {
		return nil, err
	}
	ids := make([]int64, n)
	for i := range ids {
		ids[i], err = api.addItem(ctx, act, fmt.Sprintf("%s item %d", name, i+1), cfg.Price, stock, cfg.Shards)
		if err != nil {
			return nil, err
		}
	}
	if err := api.publish(ctx, act); err != nil {
		return nil, err
	}
	return ids, nil
}

// sellOut buys the item's remaining units with users of their own (after
// the storm's users, so the storm sees no duplicates of theirs) before the
// clock starts, using the load generator itself.
func (p *plan) sellOut(ctx context.Context, cfg *params, api *apiClient, signer *auth.Signer, units int, exp time.Time, progress io.Writer) error {
	toks := mintTokens(signer, cfg.UserBase+int64(cfg.Users), units, exp)
	item := p.items[p.onSale[0]]
	res, err := runLoad(ctx, loadSpec{
		base:        cfg.Target,
		items:       []int64{item},
		concurrency: min(cfg.Concurrency, 32, units),
		connections: min(cfg.Connections, 32, units),
		duration:    max(time.Minute, cfg.Timeout*3),
		timeout:     cfg.Timeout,
		picker:      newFairPicker(toks, 0),
		keepOrders:  true,
		progress:    progress,
		label:       "[pre-sale]",
	})
	if err != nil {
		return err
	}
	p.presale = res.accepted
	st, err := api.stats(ctx, item)
	if err != nil {
		return err
	}
	if st.Remaining > 0 {
		return fmt.Errorf("%d of %d units left after %d buys (%s)", st.Remaining, st.Stock, units, res.stopReason)
	}
	return nil
}
