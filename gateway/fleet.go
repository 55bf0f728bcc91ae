package gateway

import (
	"context"
	"crypto/rand"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashgate/flashgate/internal/edge"
	"github.com/flashgate/flashgate/internal/redis"
)

// Heartbeats of the fleet-wide limits (docs/edge.md, "Limits across a
// fleet"): every gateway says it is alive every heartbeatEvery, and one not
// heard from for heartbeatTTL no longer counts. A gateway that stops
// cleanly leaves at once.
const (
	heartbeatEvery = time.Second
	heartbeatTTL   = 3 * time.Second
)

// fleetShare keeps this gateway's rate limiters at its share of the fleet's
// limits: it learns from a heartbeat in Redis how many gateways are alive,
// n, and has each limiter enforce 1/n of its rate. Requests never wait for
// it: the limiters read the share from memory.
type fleetShare struct {
	store    *redis.Store
	id       string
	limiters []*edge.Limiter
	log      *slog.Logger
	size     prometheus.Gauge
}

func newFleetShare(store *redis.Store, log *slog.Logger, limiters ...*edge.Limiter) *fleetShare {
	return &fleetShare{
		store:    store,
		id:       rand.Text(),
		limiters: limiters,
		log:      log,
		size: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flashgate_gateway_fleet_size",
			Help: "Live gateways, as this gateway last learned from the heartbeats; its rate limits are 1/size of the settings.",
		}),
	}
}

// start beats once before returning, so that a gateway knows its share
// before it answers its first request (unless Redis does not answer within
// a second: it then starts with the share of a fleet of one, or of the
// last count, and learns on the next beat), then beats in a goroutine that
// wg waits for, until ctx is done, and then leaves the fleet.
func (f *fleetShare) start(ctx context.Context, wg *sync.WaitGroup) {
	first, cancel := context.WithTimeout(ctx, time.Second)
	failing := f.beat(first, false)
	cancel()
	wg.Go(func() {
		t := time.NewTicker(heartbeatEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				lctx, cancel := context.WithTimeout(context.Background(), time.Second)
				if err := f.store.Leave(lctx, f.id); err != nil {
					f.log.Warn("leaving the fleet; the others notice within "+heartbeatTTL.String(), "err", err)
				}
				cancel()
				return
			case <-t.C:
				failing = f.beat(ctx, failing)
			}
		}
	})
}

// beat sends one heartbeat and applies the count it answers. It reports
// whether the heartbeat failed, and logs when failing starts and ends.
func (f *fleetShare) beat(ctx context.Context, failing bool) bool {
	n, err := f.store.Heartbeat(ctx, f.id, heartbeatTTL)
	if err != nil {
		if ctx.Err() == nil && !failing {
			f.log.Warn("fleet heartbeat failing; keeping the last share of the rate limits", "err", err)
		}
		return true
	}
	if failing {
		f.log.Info("fleet heartbeat recovered", "gateways", n)
	}
	for _, l := range f.limiters {
		l.SetFleet(n)
	}
	f.size.Set(float64(n))
	return false
}
