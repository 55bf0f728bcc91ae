package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// ItemStats is the answer of GET /admin/v1/items/{id}/stats (CONTRACT §6),
// with the item's id added.
type ItemStats struct {
	ItemID    int64 `json:"item_id"`
	Stock     int64 `json:"stock"`
	Remaining int64 `json:"remaining"`
	Reserved  int64 `json:"reserved"`
	Orders    int64 `json:"orders"`
	Paid      int64 `json:"paid"`
	Cancelled int64 `json:"cancelled"`
}

// apiClient calls the admin API and the gateway's read endpoints. It is not
// on the hot path, so it uses net/http for its context support.
type apiClient struct {
	admin, target, token string
	http                 *http.Client
}

func newAPIClient(cfg *params) *apiClient {
	return &apiClient{
		admin:  cfg.Admin,
		target: cfg.Target,
		token:  cfg.AdminToken,
		http:   &http.Client{Timeout: 30 * time.Second},
	}
}

// apiError is an answer other than the one expected.
type apiError struct {
	method, url string
	status      int
	body        string
}

// Error names the request and quotes the answer.
func (e *apiError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.method, e.url, e.status, e.body)
}

// call sends a JSON request and decodes a JSON answer into out, failing
// unless the status is want.
func (a *apiClient) call(ctx context.Context, method, url string, auth bool, in, out any, want int) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", method, url, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, url, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, url, err)
	}
	if resp.StatusCode != want {
		return &apiError{method: method, url: url, status: resp.StatusCode, body: string(bytes.TrimSpace(b))}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, url, err)
		}
	}
	return nil
}

// createActivity creates an activity open from start to end.
func (a *apiClient) createActivity(ctx context.Context, name string, start, end time.Time) (int64, error) {
	in := map[string]string{
		"name":     name,
		"start_at": start.UTC().Format(time.RFC3339),
		"end_at":   end.UTC().Format(time.RFC3339),
	}
	var out struct {
		ID int64 `json:"id"`
	}
	if err := a.call(ctx, http.MethodPost, a.admin+"/admin/v1/activities", true, in, &out, http.StatusCreated); err != nil {
		return 0, fmt.Errorf("create activity: %w", err)
	}
	return out.ID, nil
}

// addItem adds an item to an unpublished activity. shards 0 leaves the
// server's default.
func (a *apiClient) addItem(ctx context.Context, activity int64, name, price string, stock, shards int) (int64, error) {
	in := map[string]any{"name": name, "price": price, "stock": stock}
	if shards > 0 {
		in["shards"] = shards
	}
	var out struct {
		ID int64 `json:"id"`
	}
	url := a.admin + "/admin/v1/activities/" + strconv.FormatInt(activity, 10) + "/items"
	if err := a.call(ctx, http.MethodPost, url, true, in, &out, http.StatusCreated); err != nil {
		return 0, fmt.Errorf("add item: %w", err)
	}
	return out.ID, nil
}

// publish publishes an activity, which loads its stock into Redis.
func (a *apiClient) publish(ctx context.Context, activity int64) error {
	url := a.admin + "/admin/v1/activities/" + strconv.FormatInt(activity, 10) + "/publish"
	if err := a.call(ctx, http.MethodPost, url, true, nil, nil, http.StatusOK); err != nil {
		return fmt.Errorf("publish activity: %w", err)
	}
	return nil
}

// stats reads an item's stock and order counts.
func (a *apiClient) stats(ctx context.Context, item int64) (ItemStats, error) {
	var out struct {
		Stats ItemStats `json:"stats"`
	}
	url := a.admin + "/admin/v1/items/" + strconv.FormatInt(item, 10) + "/stats"
	if err := a.call(ctx, http.MethodGet, url, true, nil, &out, http.StatusOK); err != nil {
		return ItemStats{}, fmt.Errorf("item stats: %w", err)
	}
	out.Stats.ItemID = item
	return out.Stats, nil
}

// itemState reads an item's state as shoppers see it.
func (a *apiClient) itemState(ctx context.Context, item int64) (string, error) {
	var out struct {
		Item struct {
			State string `json:"state"`
		} `json:"item"`
	}
	url := a.target + "/api/v1/items/" + strconv.FormatInt(item, 10)
	if err := a.call(ctx, http.MethodGet, url, false, nil, &out, http.StatusOK); err != nil {
		return "", fmt.Errorf("item state: %w", err)
	}
	return out.Item.State, nil
}

// waitState polls the gateway until the item shows one of states: a
// gateway caches item state, and buys sent before it has seen the publish
// would measure the cache, not the sale.
func (a *apiClient) waitState(ctx context.Context, item int64, timeout time.Duration, states ...string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	for {
		s, err := a.itemState(ctx, item)
		if err == nil {
			for _, want := range states {
				if s == want {
					return nil
				}
			}
			last = s
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("item %d: %w", item, err)
			}
			return fmt.Errorf("item %d: state %q, want %v after %s", item, last, states, timeout)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
