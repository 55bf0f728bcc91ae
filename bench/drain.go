package bench

import (
	"context"
	"fmt"
	"time"
)

// drainResult is how the pipeline settled after the load.
type drainResult struct {
	stats    []ItemStats // the last stats read, one per item
	waited   time.Duration
	complete bool // reserved reached 0 and orders stopped changing
}

// drain polls the items' admin stats until no unit is reserved without an
// order row and the order counts stop changing between two polls, or until
// timeout. It fails only when the stats cannot be read at all.
func drain(ctx context.Context, api *apiClient, items []int64, timeout, interval time.Duration) (drainResult, error) {
	began := time.Now()
	deadline := began.Add(timeout)
	var res drainResult
	var prev []ItemStats
	var lastErr error
	for {
		cur := make([]ItemStats, 0, len(items))
		for _, id := range items {
			st, err := api.stats(ctx, id)
			if err != nil {
				lastErr = err
				cur = nil
				break
			}
			cur = append(cur, st)
		}
		if cur != nil {
			res.stats = cur
			if settled(prev, cur) {
				res.complete = true
				break
			}
			prev = cur
		}
		if time.Now().Add(interval).After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("drain: %w", ctx.Err())
		case <-time.After(interval):
		}
	}
	res.waited = time.Since(began)
	if res.stats == nil {
		return res, fmt.Errorf("drain: %w", lastErr)
	}
	return res, nil
}

// settled reports whether nothing is reserved any more and the orders
// have not changed since the previous poll.
func settled(prev, cur []ItemStats) bool {
	if len(prev) != len(cur) {
		return false
	}
	for i := range cur {
		if cur[i].Reserved != 0 || cur[i].Orders != prev[i].Orders || cur[i].Cancelled != prev[i].Cancelled {
			return false
		}
	}
	return true
}
