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
	routeNone // no route matched: 404
	numRoutes
)

var routeNames = [numRoutes]string{"buy", "item", "order", "activities", "path", "captcha", "page", "none"}

// routeOther names the requests of a handler mounted with Handle, which
// does not name its routes.
const routeOther = "other"

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
	vec      *prometheus.CounterVec
	// mounted holds the counters of the routes of mounted handlers, by
	// route name; written only before Serve.
	mounted map[string]map[flashgate.Code]prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flashgate_gateway_requests_total", Help: "Requests answered, by route and response code.",
	}, []string{"route", "code"})
	m := &metrics{buy: prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "flashgate_gateway_buy_seconds", Help: "Time to answer a buy.",
		Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16),
	}), vec: vec, mounted: map[string]map[flashgate.Code]prometheus.Counter{}}
	m.mount(routeOther)
	for r := routeID(0); r < numRoutes; r++ {
		m.requests[r] = m.codeCounters(routeNames[r])
	}
	reg.MustRegister(vec, m.buy)
	return m
}

// mount creates the counters of mounted routes, at 0.
func (m *metrics) mount(routes ...string) {
	for _, r := range routes {
		if m.mounted[r] != nil {
			continue
		}
		m.mounted[r] = m.codeCounters(r)
	}
}

// codeCounters resolves the counters of route, one per code.
func (m *metrics) codeCounters(route string) map[flashgate.Code]prometheus.Counter {
	codes := make(map[flashgate.Code]prometheus.Counter, len(allCodes))
	for _, c := range allCodes {
		codes[c] = m.vec.WithLabelValues(route, string(c))
	}
	return codes
}

// countMounted counts an answer of a mounted route; a name that was not
// declared when mounting counts as "other".
func (m *metrics) countMounted(route string, c flashgate.Code) {
	for r, name := range routeNames {
		if name == route {
			m.requests[r][c].Inc()
			return
		}
	}
	codes := m.mounted[route]
	if codes == nil {
		codes = m.mounted[routeOther]
	}
	if ctr := codes[c]; ctr != nil {
		ctr.Inc()
	}
}

// codeOfStatus is the contract code an HTTP status stands for, for the
// handlers that do not say which code they answered.
func codeOfStatus(status int) flashgate.Code {
	switch {
	case status < 400:
		return flashgate.OK
	case status == 400, status == 422:
		return flashgate.Invalid
	case status == 401:
		return flashgate.Unauthorized
	case status == 403:
		return flashgate.Forbidden
	case status == 404:
		return flashgate.NotFound
	case status == 409:
		return flashgate.Conflict
	case status == 410:
		return flashgate.SoldOut
	case status == 429:
		return flashgate.RateLimited
	case status == 503:
		return flashgate.Unavailable
	case status >= 500:
		return flashgate.Internal
	}
	return flashgate.Invalid
}

func (g *Gateway) count(r routeID, c flashgate.Code) { g.m.count(r, c) }

// count counts an answer of route r; a code outside allCodes is not counted.
func (m *metrics) count(r routeID, c flashgate.Code) {
	if ctr := m.requests[r][c]; ctr != nil {
		ctr.Inc()
	}
}

func (m *metrics) observeBuy(c flashgate.Code, d time.Duration) {
	m.count(routeBuy, c)
	m.buy.Observe(d.Seconds())
}
