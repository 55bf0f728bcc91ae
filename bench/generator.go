package bench

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/valyala/fasthttp"
)

// Histogram bounds, in microseconds: 1µs to 60s with 3 significant digits.
const (
	histMin      = 1
	histMax      = 60_000_000
	histDigits   = 3
	secondDigits = 2 // the per-second histograms of the timeline are coarser
)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(histMin, histMax, histDigits) }

func newSecondHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(histMin, histMax, secondDigits)
}

// recordMicros records d, clamped into the histogram's range.
func recordMicros(h *hdrhistogram.Histogram, d time.Duration) {
	us := d.Microseconds()
	switch {
	case us < histMin:
		us = histMin
	case us > histMax:
		us = histMax
	}
	_ = h.RecordValue(us) // cannot fail once clamped
}

// kind is what a request tests, for the scenarios that mix expectations.
type kind uint8

const (
	kindBuy      kind = iota // a shopper buying an item on sale
	kindRepeat               // a shopper who keeps buying the same item
	kindUpcoming             // an item whose sale has not started
	kindEnded                // an item whose sale has ended
	kindUnknown              // an item id that does not exist
	kindBadToken             // a token the gateway must refuse
	numKinds
)

// String names the kind in reports.
func (k kind) String() string {
	switch k {
	case kindBuy:
		return "buy"
	case kindRepeat:
		return "repeat"
	case kindUpcoming:
		return "upcoming"
	case kindEnded:
		return "ended"
	case kindUnknown:
		return "unknown_item"
	}
	return "bad_token"
}

// mayBuy reports whether a 202 is a legal answer to a request of kind k.
func (k kind) mayBuy() bool { return k == kindBuy || k == kindRepeat }

// shot is one request to send.
type shot struct {
	item int    // index into the run's item paths
	user int    // index into the run's tokens, or -1
	id   int64  // the user id, 0 when the token belongs to nobody
	tok  []byte // Authorization value; nil sends none
	kind kind
}

// picker decides what every request of a run is. It is shared by all
// workers and must be safe for concurrent use.
type picker interface {
	// next fills s with the next request to send. It returns false when
	// the scenario has nothing left to send; it may block until stop is
	// closed.
	next(stop <-chan struct{}, s *shot) bool
	// settle tells the picker how s was answered, and returns how long the
	// worker should wait before its next request.
	settle(s *shot, c code) time.Duration
	// why says why next returned false.
	why() string
}

// loadSpec is one run of the generator.
type loadSpec struct {
	base        string  // scheme://host[:port][/prefix] of the target
	items       []int64 // item ids; a shot's item indexes this
	rate        int     // > 0: open loop
	concurrency int
	connections int
	duration    time.Duration
	warmup      time.Duration
	timeout     time.Duration
	picker      picker
	keepOrders  bool      // keep the accepted order ids
	progress    io.Writer // live progress line, nil for none
	label       string
}

// loadResult is what a run measured. Counts and latencies cover the
// measured part only; accepted and kinds also cover the warmup, since every
// order taken must be checked.
type loadResult struct {
	hist       *hdrhistogram.Histogram
	codes      [numCodes]int64
	statuses   map[int]int64
	kinds      [numKinds][numCodes]int64
	accepted   []Acceptance
	requests   int64
	warmupReqs int64
	elapsed    time.Duration
	timeline   []secondAgg
	errSamples []string
	stopReason string
	maxLag     time.Duration // open loop: worst delay from due to sent
}

// secondAgg is one second of the timeline, counted at completion.
type secondAgg struct {
	hist     *hdrhistogram.Histogram
	requests int64
	ok       int64
	errors   int64 // transport errors and HTTP 5xx
}

// gen is the state of one run shared by its workers.
type gen struct {
	spec   loadSpec
	hc     *fasthttp.HostClient
	uris   [][]byte
	start  time.Time // clock origin; measurement starts at start+warmup
	nsecs  int
	stopCh chan struct{}
	halted atomic.Bool
	once   sync.Once
	reason string // written once, under once

	tlMu     sync.Mutex
	timeline []secondAgg
}

// worker holds one worker's counts, merged when the run ends. The atomics
// are padded apart so that the progress line does not slow the workers.
type worker struct {
	_      [64]byte
	live   atomic.Int64 // answers so far, warmup included
	liveOK atomic.Int64
	_      [64]byte

	hist     *hdrhistogram.Histogram
	codes    [numCodes]int64
	statuses [600]int64
	kinds    [numKinds][numCodes]int64
	accepted []Acceptance
	requests int64
	warmup   int64
	errs     []string
	maxLag   time.Duration

	sec      int // second of the timeline being counted, -1 for none
	secHist  *hdrhistogram.Histogram
	secCount secondAgg
}

// runLoad runs one load and returns its measurements. It ends after the
// warmup and the duration, when the picker runs dry, or when ctx ends.
func runLoad(ctx context.Context, spec loadSpec) (*loadResult, error) {
	u, err := url.Parse(spec.base)
	if err != nil {
		return nil, fmt.Errorf("parse target: %w", err)
	}
	addr := u.Host
	if u.Port() == "" {
		if u.Scheme == "https" {
			addr += ":443"
		} else {
			addr += ":80"
		}
	}
	g := &gen{
		spec: spec,
		hc: &fasthttp.HostClient{
			Addr:                      addr,
			IsTLS:                     u.Scheme == "https",
			MaxConns:                  spec.connections,
			MaxConnWaitTimeout:        spec.timeout,
			ReadTimeout:               spec.timeout,
			WriteTimeout:              spec.timeout,
			MaxIdemponentCallAttempts: 1, // a buy is never retried behind our back
			NoDefaultUserAgentHeader:  true,
		},
		nsecs:  max(1, int((spec.duration+time.Second-1)/time.Second)),
		stopCh: make(chan struct{}),
	}
	defer g.hc.CloseIdleConnections()
	for _, id := range spec.items {
		g.uris = append(g.uris, []byte(spec.base+itemPath(id)))
	}
	g.timeline = make([]secondAgg, g.nsecs)

	workers := make([]*worker, spec.concurrency)
	for i := range workers {
		workers[i] = &worker{hist: newHist(), secHist: newSecondHist(), sec: -1}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g.start = time.Now()
	var wg sync.WaitGroup
	var ticks chan time.Duration
	if spec.rate > 0 {
		ticks = make(chan time.Duration, spec.concurrency)
		wg.Go(func() { g.pace(ticks) })
	} else {
		t := time.AfterFunc(spec.warmup+spec.duration, func() { g.halt("duration") })
		defer t.Stop()
	}
	stopWatch := context.AfterFunc(ctx, func() { g.halt("interrupted") })
	defer stopWatch()
	var workersWG sync.WaitGroup
	for _, w := range workers {
		workersWG.Go(func() {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.Header.SetMethod(fasthttp.MethodPost)
			if ticks != nil {
				g.openLoop(w, ticks, req, resp)
			} else {
				g.closedLoop(w, req, resp)
			}
		})
	}
	progressDone := make(chan struct{})
	if spec.progress != nil {
		wg.Go(func() { g.showProgress(workers, progressDone) })
	}
	workersWG.Wait()
	end := time.Since(g.start)
	g.halt("duration") // no-op unless the open loop ended by its schedule
	close(progressDone)
	wg.Wait()

	res := g.collect(workers)
	res.elapsed = max(end-spec.warmup, time.Microsecond)
	res.timeline = g.timeline
	if used := int((res.elapsed + time.Second - 1) / time.Second); used < len(res.timeline) {
		res.timeline = res.timeline[:max(used, 1)] // the run stopped early
	}
	if err := ctx.Err(); err != nil && g.reason == "interrupted" {
		return res, fmt.Errorf("load %s: %w", spec.label, err)
	}
	return res, nil
}

// collect merges the workers' counts once they have stopped.
func (g *gen) collect(workers []*worker) *loadResult {
	res := &loadResult{hist: newHist(), statuses: map[int]int64{}, stopReason: g.reason}
	for _, w := range workers {
		w.flushSecond(g)
		res.hist.Merge(w.hist)
		for c, n := range w.codes {
			res.codes[c] += n
		}
		for s, n := range w.statuses {
			if n > 0 {
				res.statuses[s] += n
			}
		}
		for k := range w.kinds {
			for c, n := range w.kinds[k] {
				res.kinds[k][c] += n
			}
		}
		res.accepted = append(res.accepted, w.accepted...)
		res.requests += w.requests
		res.warmupReqs += w.warmup
		res.maxLag = max(res.maxLag, w.maxLag)
		for _, e := range w.errs {
			if len(res.errSamples) < 10 && !slices.Contains(res.errSamples, e) {
				res.errSamples = append(res.errSamples, e)
			}
		}
	}
	return res
}

// halt stops the run; the first reason given is kept.
func (g *gen) halt(reason string) {
	g.once.Do(func() {
		g.reason = reason
		g.halted.Store(true)
		close(g.stopCh)
	})
}

// paceQuantum is the least time the open loop's pacer sleeps between two
// bursts of due requests: at 20,000/s, a burst of two. Against a bare
// handler, waking once a request cost the generator about 14 % more CPU a
// request (docs/performance.md, "The open loop's pacer").
const paceQuantum = 100 * time.Microsecond

// pace is the open loop's clock: it hands out the due time of every request
// of the schedule, start + k/rate, once that time has come. It wakes at most
// every paceQuantum and then hands out every request due by then, rather
// than waking once a request. A due time is computed from the schedule,
// never read from the clock, so a request that waits for the pacer or for a
// free worker is charged the wait, and a pacer that was held up catches up
// at once.
func (g *gen) pace(ticks chan<- time.Duration) {
	defer close(ticks)
	interval := float64(time.Second) / float64(g.spec.rate)
	end := g.spec.warmup + g.spec.duration
	t := time.NewTimer(0)
	defer t.Stop()
	for k := 0; ; {
		select {
		case <-t.C:
		case <-g.stopCh:
			return
		}
		now := time.Since(g.start)
		due := time.Duration(float64(k) * interval)
		for ; due <= now; due = time.Duration(float64(k) * interval) {
			if due >= end {
				return
			}
			select {
			case ticks <- due:
			case <-g.stopCh:
				return
			}
			k++
		}
		if due >= end {
			return
		}
		t.Reset(max(due-now, paceQuantum))
	}
}

func (g *gen) closedLoop(w *worker, req *fasthttp.Request, resp *fasthttp.Response) {
	var s shot
	for !g.halted.Load() {
		if !g.spec.picker.next(g.stopCh, &s) {
			g.halt(g.spec.picker.why())
			return
		}
		sent := time.Since(g.start)
		c, status, err := g.send(&s, req, resp)
		w.record(g, &s, c, status, err, resp, sent, time.Since(g.start))
		if wait := g.spec.picker.settle(&s, c); wait > 0 {
			g.sleep(wait)
		}
	}
}

func (g *gen) openLoop(w *worker, ticks <-chan time.Duration, req *fasthttp.Request, resp *fasthttp.Response) {
	var s shot
	for due := range ticks {
		if g.halted.Load() {
			return
		}
		if !g.spec.picker.next(g.stopCh, &s) {
			g.halt(g.spec.picker.why())
			return
		}
		if lag := time.Since(g.start) - due; lag > w.maxLag {
			w.maxLag = lag
		}
		c, status, err := g.send(&s, req, resp)
		w.record(g, &s, c, status, err, resp, due, time.Since(g.start))
		if wait := g.spec.picker.settle(&s, c); wait > 0 {
			g.sleep(wait)
		}
	}
}

func (g *gen) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-g.stopCh:
	}
}

// send sends one buy. It allocates nothing once req and resp are warm.
func (g *gen) send(s *shot, req *fasthttp.Request, resp *fasthttp.Response) (code, int, error) {
	req.SetRequestURIBytes(g.uris[s.item])
	if s.tok == nil {
		req.Header.Del(fasthttp.HeaderAuthorization)
	} else {
		req.Header.SetBytesV(fasthttp.HeaderAuthorization, s.tok)
	}
	if err := g.hc.Do(req, resp); err != nil {
		return codeTransport, 0, err
	}
	return parseCode(resp.Body()), resp.StatusCode(), nil
}

// record counts one answer. from is when the request was due (open loop)
// or sent (closed loop), done when its answer was read; both are offsets
// from the run's start.
func (w *worker) record(g *gen, s *shot, c code, status int, err error, resp *fasthttp.Response, from, done time.Duration) {
	w.live.Add(1)
	w.kinds[s.kind][c]++
	if c == codeOK && status >= 200 && status < 300 {
		w.liveOK.Add(1)
		if g.spec.keepOrders {
			id, _ := jsonString(resp.Body(), "order_id")
			w.accepted = append(w.accepted, Acceptance{ItemID: g.spec.items[s.item], UserID: s.id, OrderID: string(id)})
		}
	}
	if err != nil && len(w.errs) < 5 {
		if msg := err.Error(); !slices.Contains(w.errs, msg) {
			w.errs = append(w.errs, msg)
		}
	}
	if from < g.spec.warmup {
		w.warmup++
		return
	}
	lat := done - from
	recordMicros(w.hist, lat)
	w.requests++
	w.codes[c]++
	if status > 0 && status < len(w.statuses) {
		w.statuses[status]++
	}

	sec := min(int((done-g.spec.warmup)/time.Second), g.nsecs-1)
	if sec != w.sec {
		w.flushSecond(g)
		w.sec = sec
	}
	recordMicros(w.secHist, lat)
	w.secCount.requests++
	switch {
	case c == codeOK:
		w.secCount.ok++
	case c == codeTransport || status >= 500:
		w.secCount.errors++
	}
}

// flushSecond adds the worker's counts of its current second to the
// run's timeline: once a second per worker, so the lock is cold.
func (w *worker) flushSecond(g *gen) {
	if w.sec < 0 || w.secCount.requests == 0 {
		return
	}
	g.tlMu.Lock()
	t := &g.timeline[w.sec]
	if t.hist == nil {
		t.hist = newSecondHist()
	}
	t.hist.Merge(w.secHist)
	t.requests += w.secCount.requests
	t.ok += w.secCount.ok
	t.errors += w.secCount.errors
	g.tlMu.Unlock()
	w.secHist.Reset()
	w.secCount = secondAgg{}
}

// showProgress rewrites one status line on the terminal every second.
func (g *gen) showProgress(workers []*worker, done <-chan struct{}) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last int64
	total := g.spec.warmup + g.spec.duration
	for {
		select {
		case <-done:
			fmt.Fprint(g.spec.progress, "\r\033[K")
			return
		case <-tick.C:
		}
		var n, ok int64
		for _, w := range workers {
			n += w.live.Load()
			ok += w.liveOK.Load()
		}
		el := time.Since(g.start).Truncate(time.Second)
		fmt.Fprintf(g.spec.progress, "\r\033[K%s %s/%s  requests %d  %d req/s  ok %d",
			g.spec.label, el, total, n, n-last, ok)
		last = n
	}
}
