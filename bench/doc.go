// Package bench is the load harness behind `flashgate bench` (contract §10).
//
// It drives a running gateway as shoppers would, through the public HTTP API
// only, so it measures and checks the system from the outside: it sets up its
// own activity and items through the admin API, mints its shopper tokens
// before the clock starts, fires buys from a fasthttp client over many
// keep-alive connections, then waits for the pipeline to drain and checks the
// contract's invariants (nothing oversold, no user with two live orders,
// nothing accepted lost) against the admin stats and the seckill_order table.
//
// The generator runs closed loop (a fixed number of workers, each sending its
// next request when the last one is answered) or open loop (requests paced at
// a fixed rate whatever the answers). In open loop every latency is measured
// from the moment the request was due, not from when it was sent, so a stall
// of the system under test shows up in the percentiles instead of being hidden
// by the generator waiting for it ("coordinated omission").
//
// Latencies go into one HDR histogram per worker, merged at the end. Numbers
// from a shared machine drift, so --calibrate first measures the same
// generator against a bare fasthttp handler in this process and reports the
// run's throughput as a ratio of that ceiling.
//
// The harness talks to the server only through the wire contract, never
// through the server's packages, so it keeps its own table of response codes.
package bench
