package bench

import (
	"net"
	"testing"
	"time"

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
