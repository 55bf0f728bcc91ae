package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/valyala/fasthttp"
)

// calibrationBody is the bare handler's answer, shaped and sized like an
// accepted buy.
const calibrationBody = `{"code":"ok","order_id":"0000000000000000000000","status":"pending"}`

// calibrate measures the machine's ceiling: the same generator, tokens,
// paths, workers and connections against a bare fasthttp handler in this
// process. It always runs closed loop: in open loop the bare handler would
// just keep up with the rate and measure the rate, not the ceiling.
func calibrate(ctx context.Context, cfg *params, p *plan, progress io.Writer) (*loadResult, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("calibrate: listen: %w", err)
	}
	srv := &fasthttp.Server{
		Handler: func(c *fasthttp.RequestCtx) {
			c.SetStatusCode(fasthttp.StatusAccepted)
			c.SetContentType("application/json")
			c.SetBodyString(calibrationBody)
		},
		NoDefaultServerHeader: true,
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Serve(ln) }) // returns when Shutdown closes ln
	defer wg.Wait()
	defer func() { _ = srv.Shutdown() }() // nothing to do about a failure on the way out

	res, err := runLoad(ctx, loadSpec{
		base:        "http://" + ln.Addr().String(),
		items:       p.items,
		concurrency: cfg.Concurrency,
		connections: cfg.Connections,
		duration:    cfg.CalibrateDuration,
		timeout:     cfg.Timeout,
		picker:      &cyclePicker{toks: p.tokens, items: p.onSale},
		progress:    progress,
		label:       "[calibrate]",
	})
	if err != nil {
		return nil, fmt.Errorf("calibrate: %w", err)
	}
	return res, nil
}
