package gateway

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashgate/flashgate"
)

type routeID int

const (
	routeBuy routeID = iota
	routeItem
	routeOrder
	routeActivities
	routePath
	routeCaptcha
	routePage
	numRoutes
)

var routeNames = [numRoutes]string{"buy", "item", "order", "activities", "path", "captcha", "page"}

var allCodes = []flashgate.Code{
	flashgate.OK, flashgate.Invalid, flashgate.Unauthorized, flashgate.Forbidden, flashgate.NotFound,
	flashgate.Conflict, flashgate.Duplicate, flashgate.SoldOut, flashgate.NotStarted, flashgate.Ended,
	flashgate.RateLimited, flashgate.Unavailable, flashgate.Internal,
}

// metrics keeps one counter per route and code, resolved up front so that
// counting allocates nothing.
type metrics struct {
	requests [numRoutes]map[flashgate.Code]prometheus.Counter
	buy      prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flashgate_gateway_requests_total", Help: "Requests answered, by route and response code.",
	}, []string{"route", "code"})
	m := &metrics{buy: prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "flashgate_gateway_buy_seconds", Help: "Time to answer a buy.",
		Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16),
	})}
	for r := routeID(0); r < numRoutes; r++ {
		m.requests[r] = map[flashgate.Code]prometheus.Counter{}
		for _, c := range allCodes {
			m.requests[r][c] = vec.WithLabelValues(routeNames[r], string(c))
		}
	}
	reg.MustRegister(vec, m.buy)
	return m
}

func (g *Gateway) count(r routeID, c flashgate.Code) {
	if ctr := g.m.requests[r][c]; ctr != nil {
		ctr.Inc()
	}
}

func (m *metrics) observeBuy(c flashgate.Code, d time.Duration) {
	if ctr := m.requests[routeBuy][c]; ctr != nil {
		ctr.Inc()
	}
	m.buy.Observe(d.Seconds())
}
