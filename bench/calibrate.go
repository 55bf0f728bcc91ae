package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"

	"github.com/valyala/fasthttp"
)

// calibrationBody is the bare handler's answer, shaped and sized like an
// accepted buy.
const calibrationBody = `{"code":"ok","order_id":"0000000000000000000000","status":"pending"}`

// bareServer is the ceiling: a fasthttp server that answers every
// request, whatever its path and token, with a fixed accepted-buy body.
func bareServer() *fasthttp.Server {
	return &fasthttp.Server{
		Handler: func(c *fasthttp.RequestCtx) {
			c.SetStatusCode(fasthttp.StatusAccepted)
			c.SetContentType("application/json")
			c.SetBodyString(calibrationBody)
		},
		NoDefaultServerHeader: true,
	}
}

// serveBare serves the bare handler on addr until ctx ends, for an outside
// load generator (--serve-bare): the same handler --calibrate measures.
func serveBare(ctx context.Context, addr string, stdout io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--serve-bare: %w", err)
	}
	srv := bareServer()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "bare handler on http://%s\n", ln.Addr())
	select {
	case <-ctx.Done():
		if err := srv.Shutdown(); err != nil {
			return fmt.Errorf("--serve-bare: shutdown: %w", err)
		}
		return nil
	case err := <-done:
		return fmt.Errorf("--serve-bare: %w", err)
	}
}

// writeSetup writes the run's tokens to --tokens-file, one Authorization
// value a line in the order the buy scenario sends them, and prints the
// item's buy path (--setup-only).
func writeSetup(cfg *params, p *plan, stdout io.Writer) error {
	f, err := os.Create(cfg.TokensFile)
	if err != nil {
		return fmt.Errorf("--tokens-file: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := range p.tokens.len() {
		w.Write(p.tokens.value(i)) // a bufio.Writer keeps its first error for Flush
		w.WriteByte('\n')
	}
	if err := errors.Join(w.Flush(), f.Close()); err != nil {
		return fmt.Errorf("--tokens-file: %w", err)
	}
	item := p.items[p.onSale[0]]
	fmt.Fprintf(stdout, "item %d\npath %s\ntokens %d %s\n", item, itemPath(item), p.tokens.len(), cfg.TokensFile)
	return nil
}

// calibrationPicker feeds the bare handler the run's own tokens in the
// run's own rotation (for the buy scenario: user after user, each token
// once, then over again), so that a ratio compares like with like: the
// same request sizes, the same header bytes to parse.
func calibrationPicker(p *plan) picker {
	return &cyclePicker{toks: p.tokens, items: p.onSale}
}

// calibrate measures the machine's ceiling: the same generator, tokens,
// paths, workers and connections against a bare fasthttp handler in this
// process. It always runs closed loop: in open loop the bare handler would
// just keep up with the rate and measure the rate, not the ceiling.
func calibrate(ctx context.Context, cfg *params, p *plan, progress io.Writer) (*loadResult, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("calibrate: listen: %w", err)
	}
	srv := bareServer()
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
		picker:      calibrationPicker(p),
		progress:    progress,
		label:       "[calibrate]",
	})
	if err != nil {
		return nil, fmt.Errorf("calibrate: %w", err)
	}
	return res, nil
}
