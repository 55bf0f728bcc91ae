package bench

import (
	"context"
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/flashgate/flashgate/internal/auth"
	"github.com/flashgate/flashgate/internal/config"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
)

// BenchmarkRequestLoop measures one turn of a worker (pick, send, parse,
// record) against an in-memory fasthttp server; its allocs/op should be 0.
func BenchmarkRequestLoop(b *testing.B) {
	ln := fasthttputil.NewInmemoryListener()
	srv := &fasthttp.Server{Handler: func(c *fasthttp.RequestCtx) {
		c.SetStatusCode(fasthttp.StatusGone)
		c.SetBodyString(`{"code":"sold_out","message":"no stock left"}`)
	}}
	go func() { _ = srv.Serve(ln) }()
	defer func() { _ = srv.Shutdown() }()

	toks := &tokens{base: 1, arena: []byte("Bearer aaaBearer bbb"), off: []uint32{0, 10, 20}}
	g := &gen{
		spec: loadSpec{items: []int64{42}, duration: time.Minute, picker: &cyclePicker{toks: toks, items: []int{0}}, keepOrders: true},
		hc: &fasthttp.HostClient{
			Addr: "bench.test",
			Dial: func(string) (net.Conn, error) { return ln.Dial() },
		},
		uris:     [][]byte{[]byte("http://bench.test" + itemPath(42))},
		nsecs:    60,
		stopCh:   make(chan struct{}),
		start:    time.Now(),
		timeline: make([]secondAgg, 60),
	}
	w := &worker{hist: newHist(), secHist: newHist(), sec: -1}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	req.Header.SetMethod(fasthttp.MethodPost)
	var s shot
	b.ReportAllocs()
	for b.Loop() {
		g.spec.picker.next(g.stopCh, &s)
		sent := time.Since(g.start)
		c, status, err := g.send(&s, req, resp)
		w.record(g, &s, c, status, err, resp, sent, time.Since(g.start))
		g.spec.picker.settle(&s, c)
	}
	if w.codes[codeSoldOut] == 0 {
		b.Fatalf("no sold_out answers recorded: %v", w.codes)
	}
}

// BenchmarkOpenLoop runs the open loop (runLoad, --rate) for 3 s at
// FLASHGATE_BENCH_RATE requests a second (default 20000) against the bare
// handler served by another process at FLASHGATE_BENCH_BARE (`flashgate
// bench --serve-bare ADDR`), and reports the generator's own CPU per
// request: this process's getrusage, user + system, over the run. The
// server runs elsewhere so that its CPU is not counted.
func BenchmarkOpenLoop(b *testing.B) {
	addr := os.Getenv("FLASHGATE_BENCH_BARE")
	if addr == "" {
		b.Skip("FLASHGATE_BENCH_BARE: the address of `flashgate bench --serve-bare`")
	}
	rate := 20000
	if v := os.Getenv("FLASHGATE_BENCH_RATE"); v != "" {
		var err error
		if rate, err = strconv.Atoi(v); err != nil {
			b.Fatalf("FLASHGATE_BENCH_RATE: %v", err)
		}
	}
	toks := mintTokens(auth.NewSigner([]byte(config.DevAuthSecret)), 1, 10000, time.Now().Add(time.Hour))
	spec := loadSpec{
		base:        "http://" + addr,
		items:       []int64{42},
		rate:        rate,
		concurrency: 256,
		connections: 256,
		duration:    3 * time.Second,
		warmup:      500 * time.Millisecond,
		timeout:     10 * time.Second,
		keepOrders:  true,
		label:       "[open loop]",
	}
	var user, sys time.Duration
	var reqs int64
	var last *loadResult
	for b.Loop() {
		spec.picker = &cyclePicker{toks: toks, items: []int{0}}
		u0, s0 := rusageCPU(b)
		res, err := runLoad(context.Background(), spec)
		if err != nil {
			b.Fatal(err)
		}
		u1, s1 := rusageCPU(b)
		user, sys = user+u1-u0, sys+s1-s0
		reqs += res.requests + res.warmupReqs
		last = res
	}
	if last.codes[codeOK] == 0 {
		b.Fatalf("no accepted answers: %v %v", last.codes, last.errSamples)
	}
	perReq := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 / float64(reqs) }
	b.ReportMetric(perReq(user+sys), "cpu-µs/req")
	b.ReportMetric(perReq(sys), "sys-µs/req")
	b.ReportMetric(float64(last.requests)/last.elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(last.hist.ValueAtQuantile(99))/1000, "p99-ms")
	b.ReportMetric(float64(last.maxLag.Microseconds())/1000, "maxlag-ms")
}

// rusageCPU is this process's CPU time so far, user and system.
func rusageCPU(b *testing.B) (user, sys time.Duration) {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

// TestPace hands out every due time of the schedule, k/rate, in order, each
// once its time has come and none past the end.
func TestPace(t *testing.T) {
	g := &gen{
		spec:   loadSpec{rate: 2000, warmup: 50 * time.Millisecond, duration: 100 * time.Millisecond},
		stopCh: make(chan struct{}),
		start:  time.Now(),
	}
	ticks := make(chan time.Duration, 4)
	go g.pace(ticks)
	k := 0
	for due := range ticks {
		if want := time.Duration(k) * time.Second / 2000; due != want {
			t.Fatalf("tick %d due %v, want %v", k, due, want)
		}
		if now := time.Since(g.start); now < due {
			t.Fatalf("tick %d due %v handed out early, at %v", k, due, now)
		}
		k++
	}
	if k != 300 {
		t.Errorf("%d ticks, want 300", k)
	}
}

// TestPaceCatchesUp: once the workers are free again after a stall, every
// request already due is handed out at once, so that the stall is charged to
// the requests it delayed and not, as a rate limiter's schedule would, to
// every request after it.
func TestPaceCatchesUp(t *testing.T) {
	g := &gen{
		spec:   loadSpec{rate: 10000, duration: 400 * time.Millisecond},
		stopCh: make(chan struct{}),
		start:  time.Now(),
	}
	ticks := make(chan time.Duration, 1)
	go g.pace(ticks)
	// Every worker busy for 200 ms: a schedule that never catches up hands
	// out its last request about that late (less a rate limiter's slack of
	// 10 ms), one that does about on time; 100 ms between them leaves room
	// for a loaded machine's timers.
	time.Sleep(200 * time.Millisecond)
	var last, lag time.Duration
	for due := range ticks {
		last, lag = due, time.Since(g.start)-due
	}
	if last != 400*time.Millisecond-100*time.Microsecond {
		t.Errorf("last due %v", last)
	}
	if lag > 100*time.Millisecond {
		t.Errorf("the last request was handed out %v after it was due: the stall of 200ms was never caught up", lag)
	}
}
