package admin

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashgate/flashgate/internal/redis"
)

// StockCollector exports the stock of every item published in Redis, read
// at scrape time: flashgate_item_stock and flashgate_item_remaining, labelled
// by item id. The admin role registers it (one replica, private listener),
// so that a sale's remaining units are one query away from its dashboard;
// the cost is one Redis read per item and shard group per scrape.
type StockCollector struct {
	store     *redis.Store
	log       *slog.Logger
	stock     *prometheus.Desc
	remaining *prometheus.Desc
	failed    *prometheus.Desc
}

// NewStockCollector returns the collector of the items published in store.
func NewStockCollector(store *redis.Store, log *slog.Logger) *StockCollector {
	return &StockCollector{
		store: store, log: log,
		stock: prometheus.NewDesc("flashgate_item_stock",
			"Units an item was published with (its stock when the sale began).", []string{"item"}, nil),
		remaining: prometheus.NewDesc("flashgate_item_remaining",
			"Units of an item left in Redis, summed over its shards, at scrape time.", []string{"item"}, nil),
		failed: prometheus.NewDesc("flashgate_item_scrape_failed",
			"1 when the item stock could not be read from Redis at this scrape (the item gauges are then missing or partial).", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *StockCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.stock
	ch <- c.remaining
	ch <- c.failed
}

// Collect implements prometheus.Collector; it reads Redis within 2s.
func (c *StockCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	failed := 0.0
	defer func() { ch <- prometheus.MustNewConstMetric(c.failed, prometheus.GaugeValue, failed) }()
	ids, err := c.store.PublishedItems(ctx)
	if err != nil {
		c.log.Debug("item metrics", "err", err)
		failed = 1
		return
	}
	now := time.Now()
	for _, id := range ids {
		it, err := c.store.Items().Get(ctx, id, now)
		if err == nil && it.Missing {
			continue
		}
		var left int64
		if err == nil {
			left, err = c.store.RemainingNow(ctx, id, it.Shards)
		}
		if err != nil {
			c.log.Debug("item metrics", "item", id, "err", err)
			failed = 1
			continue
		}
		label := strconv.FormatInt(id, 10)
		ch <- prometheus.MustNewConstMetric(c.stock, prometheus.GaugeValue, float64(it.Stock), label)
		ch <- prometheus.MustNewConstMetric(c.remaining, prometheus.GaugeValue, float64(left), label)
	}
}
