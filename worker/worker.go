// Package worker runs flashgate's background work: the Kafka consumers that
// turn reservations into MySQL order rows, the outbox relay that produces
// again what Kafka never got, the reconciler that settles interrupted stock
// transfers and stale sold-out flags, the restocker that returns the units
// of closed orders to Redis, and the jobs of a running sale: scheduled
// publishing, interrupted stock adjustments, the stock drift gauge,
// archiving ended sales out of Redis and pruning expired bans. The jobs
// that walk items walk only those in Redis's set of published items, which
// archiving empties: their work follows the live sales, not the history.
package worker

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/ratelimit"

	"github.com/flashgate/flashgate"
	"github.com/flashgate/flashgate/internal/edge"
	"github.com/flashgate/flashgate/internal/kafka"
	"github.com/flashgate/flashgate/internal/mysql"
	"github.com/flashgate/flashgate/internal/redis"
	"github.com/flashgate/flashgate/sale"
)

// Config configures a Worker.
type Config struct {
	Brokers []string
	// KafkaSecurity authenticates and encrypts the consumers; the zero value
	// is plaintext.
	KafkaSecurity kafka.Security
	Topic         string
	Group         string // consumer group; default "flashgate-workers"
	Consumers     int    // consumers in this process; default 2
	Batch         int    // most reservations per MySQL transaction; default 1000
	// Linger is how long a consumer waits to fill a batch once it has one
	// reservation: longer means fewer, larger transactions under load, at
	// the price of that much delay before a row exists; default 100ms. A
	// batch costs MariaDB about half a millisecond whatever its size (its
	// four statements and its commit), and the consumer its Kafka commit
	// and outbox settle: at 20ms a batch at half the storm's rate held
	// about 200 reservations (docs/performance.md, "The workers' linger").
	Linger     time.Duration
	WriteRate  int // most transactions per second per consumer; 0: unpaced
	RelayAfter time.Duration
	// TransferAfter is how long a stock transfer may stay unsettled before
	// the reconciler finishes it; default 5s.
	TransferAfter time.Duration
	// Tick is the period of the relay, reconciler and restocker; default 1s.
	Tick time.Duration
	// ArchiveAfter is how long after its end a settled activity loses its
	// Redis keys (contract §11); default 1h.
	ArchiveAfter time.Duration
	// DriftEvery is how often the stock drift of live items is measured
	// (default 5s); DriftAfter is how long a drift lasts before it is
	// logged, once (default 10s).
	DriftEvery, DriftAfter time.Duration
	// RepairGrace is how long a repair of a fenced item waits before it
	// reads Kafka's end: longer than any producer (gateway or relay) keeps
	// retrying a message, so that no reservation taken before the fence
	// reaches Kafka after it; default 30s.
	RepairGrace time.Duration
	// ShutdownGrace is how long a consumer may go on with the batch in
	// hand once the worker is stopped (its rows, then its offsets) before
	// that work is abandoned, uncommitted, to be consumed again after a
	// restart; default 10s. A hung MySQL then cannot hang the shutdown.
	ShutdownGrace time.Duration
	// Written, when set, is called after each batch of reservations is
	// written to MySQL (the payment package publishes the new orders' status
	// with it). It must not block for long.
	Written func(context.Context, []flashgate.Reservation)
}

// Worker is the background half of flashgate.
type Worker struct {
	cfg      Config
	db       *mysql.DB
	store    *redis.Store
	producer *kafka.Producer
	log      *slog.Logger
	m        *metrics
	jobs     []job
	ops      *sale.Ops
	bans     *edge.BanStore
	drift    driftWatch
	// lastPrune is when PruneBans last ran; only periodic touches it.
	lastPrune time.Time
	// relayWalks are the relay's walks of each shard's outbox; only
	// periodic touches it.
	relayWalks map[itemShard]relayWalk
}

// relayWalk is where the relay's walk of a shard's outbox stands.
type relayWalk struct {
	cursor uint64    // where the walk goes on (redis.Store.Stale); 0 between walks
	next   time.Time // when the next walk may start
}

// itemShard names one shard of an item.
type itemShard struct {
	item  int64
	shard int
}

// job is a periodic job, named in logs and in flashgate_worker_errors_total.
type job struct {
	name string
	fn   func(context.Context) error
}

type metrics struct {
	written   *prometheus.CounterVec
	batches   prometheus.Histogram
	relayed   prometheus.Counter
	restocked prometheus.Counter
	settled   prometheus.Counter
	repaired  prometheus.Counter
	errors    *prometheus.CounterVec
	archived  prometheus.Counter
	// driftUnits and driftItems are the stock drift of live items, summed:
	// no label per item, so the series stay few however many sales run.
	driftUnits prometheus.Gauge
	driftItems prometheus.Gauge
	lag        prometheus.Gauge
}

// Label values known up front, so that every series exists at 0 from the
// start: an alert on increase() or rate() sees the first event too, and a
// dashboard shows 0 rather than "no data".
var (
	writeResults = []string{"inserted", "replayed", "conflict", "guarded", "expired", "malformed"}
	builtinJobs  = []string{"fetch", "write", "commit", "settle", "lag", "relay", "reconcile", "restock", "adjust", "drift", "archive", "bans"}
)

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		written: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flashgate_worker_reservations_total", Help: "Reservations consumed, by what became of them.",
		}, []string{"result"}),
		batches: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "flashgate_worker_batch_seconds", Help: "Time to write one batch of reservations to MySQL (one transaction).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		relayed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flashgate_worker_relay_produced_total", Help: "Reservations produced again by the relay (from outbox entries: a reserve call's reservations each).",
		}),
		restocked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flashgate_worker_restocked_total", Help: "Units of closed orders returned to Redis.",
		}),
		settled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flashgate_worker_transfers_settled_total", Help: "Interrupted stock transfers finished by the reconciler.",
		}),
		repaired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flashgate_worker_repairs_total", Help: "Items rebuilt after Redis came back with an older state (a rewind).",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flashgate_worker_errors_total", Help: "Errors of the consumers and periodic jobs, by task (not job, the label Prometheus gives the scrape job).",
		}, []string{"task"}),
		archived: prometheus.NewCounter(prometheus.CounterOpts{Name: "flashgate_worker_activities_archived_total", Help: "Ended activities whose Redis keys were removed."}),
		driftUnits: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flashgate_worker_stock_drift_units", Help: "Sum over live items of |stock - remaining - reserved - live orders|, as last measured (0 when consistent).",
		}),
		driftItems: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flashgate_worker_stock_drift_items", Help: "Live items whose stock drift is not 0, as last measured.",
		}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flashgate_worker_kafka_lag",
			Help: "Messages in Kafka not yet committed by the consumer group (each the reservations of one reserve call: one at light load, a few at a storm), all partitions, as this worker last measured it (every worker measures the whole group: take the max, not the sum).",
		}),
	}
	for _, r := range writeResults {
		m.written.WithLabelValues(r)
	}
	for _, j := range builtinJobs {
		m.errors.WithLabelValues(j)
	}
	if reg != nil {
		reg.MustRegister(m.written, m.batches, m.relayed, m.restocked, m.settled, m.repaired, m.errors, m.lag,
			m.archived, m.driftUnits, m.driftItems)
	}
	return m
}

// defaultTo sets *p to d when it is not positive (a setting left out).
func defaultTo[T ~int | ~int64](p *T, d T) {
	if *p <= 0 {
		*p = d
	}
}

// New returns a worker. producer is used by the relay.
func New(cfg Config, db *mysql.DB, store *redis.Store, producer *kafka.Producer, log *slog.Logger, reg prometheus.Registerer) *Worker {
	if cfg.Group == "" {
		cfg.Group = "flashgate-workers"
	}
	defaultTo(&cfg.Consumers, 2)
	defaultTo(&cfg.Batch, 1000)
	defaultTo(&cfg.Linger, 100*time.Millisecond)
	defaultTo(&cfg.RelayAfter, 5*time.Second)
	defaultTo(&cfg.TransferAfter, 5*time.Second)
	defaultTo(&cfg.Tick, time.Second)
	defaultTo(&cfg.RepairGrace, 30*time.Second)
	defaultTo(&cfg.ArchiveAfter, time.Hour)
	defaultTo(&cfg.DriftEvery, 5*time.Second)
	defaultTo(&cfg.DriftAfter, 10*time.Second)
	defaultTo(&cfg.ShutdownGrace, 10*time.Second)
	w := &Worker{cfg: cfg, db: db, store: store, producer: producer, log: log, m: newMetrics(reg),
		ops: sale.New(db, store, log), bans: edge.NewBanStore(store.Client(), store.Prefix())}
	w.jobs = []job{{"relay", w.Relay}, {"reconcile", w.Reconcile}, {"restock", w.Restock},
		{"adjust", w.ops.FinishAdjustments}, {"drift", w.Drift}, {"archive", w.Archive}, {"bans", w.PruneBans}}
	return w
}

// AddJob adds a periodic job run every tick after the built-in ones (the
// order expiry of the payment package uses it). name labels its errors in
// logs and in flashgate_worker_errors_total{task}; call it before Run.
func (w *Worker) AddJob(name string, fn func(context.Context) error) {
	w.jobs = append(w.jobs, job{name, fn})
	w.m.errors.WithLabelValues(name)
}

// Run consumes and runs the periodic jobs until ctx is done; consumers finish
// the batch in hand and commit it before returning.
func (w *Worker) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for i := 0; i < w.cfg.Consumers; i++ {
		wg.Go(func() { w.consume(ctx) })
	}
	wg.Go(func() { w.periodic(ctx) })
	wg.Go(func() { w.ops.RunScheduler(ctx) }) // workers take part in scheduled publishing
	wg.Go(func() { w.measureLag(ctx) })
	wg.Go(func() { w.repairLoop(ctx) })
	wg.Wait()
	return nil
}

func (w *Worker) consume(ctx context.Context) {
	c := kafka.NewConsumer(kafka.ConsumerOptions{Brokers: w.cfg.Brokers, Topic: w.cfg.Topic, Group: w.cfg.Group, Security: w.cfg.KafkaSecurity})
	defer c.Close()
	pace := ratelimit.NewUnlimited()
	if w.cfg.WriteRate > 0 {
		pace = ratelimit.New(w.cfg.WriteRate)
	}
	for {
		msgs, err := c.FetchBatch(ctx, w.cfg.Batch, w.cfg.Linger)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			w.m.errors.WithLabelValues("fetch").Inc()
			w.log.Warn("fetch reservations", "err", err)
			sleep(ctx, 500*time.Millisecond)
			continue
		}
		pace.Take()
		// The batch in hand is finished even while shutting down (its
		// offsets must be committed after its rows, never before), but
		// for ShutdownGrace at most.
		bctx, cancel := w.batchContext(ctx)
		w.handle(bctx, ctx, c, msgs)
		cancel()
	}
}

// batchContext returns the context of a batch's work: not cancelled when
// ctx is, but ShutdownGrace after it.
func (w *Worker) batchContext(ctx context.Context) (context.Context, context.CancelFunc) {
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		t := time.NewTimer(w.cfg.ShutdownGrace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-bctx.Done():
		}
	})
	return bctx, func() {
		stop()
		cancel()
	}
}

// handle writes one batch, retrying until MySQL takes it (or ctx ends, in
// which case the batch is left uncommitted and will be consumed again),
// then commits its offsets and settles its outbox entries.
func (w *Worker) handle(ctx, stop context.Context, c *kafka.Consumer, msgs []kafka.Message) {
	rs, entries := w.parse(msgs)
	// A message holds a reserve call's reservations, up to 64: the batch
	// goes to MySQL in transactions of at most Batch reservations, all of
	// them before any entry is settled.
	for chunk := rs; len(chunk) > 0; {
		n := min(len(chunk), w.cfg.Batch)
		if !w.write(ctx, stop, chunk[:n]) {
			return
		}
		chunk = chunk[n:]
	}
	if w.cfg.Written != nil && len(rs) > 0 {
		w.cfg.Written(ctx, rs)
	}
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
		err := c.Commit(ctx, msgs)
		if err == nil {
			break
		}
		w.m.errors.WithLabelValues("commit").Inc()
		w.log.Warn("commit offsets; retrying", "err", err)
		if !sleep(stop, backoff) {
			return // rows are written: a replay after restart is harmless
		}
	}
	w.settle(ctx, entries)
}

// parse reads a batch's messages: each is an outbox entry, the
// reservations of one reserve call, one a line (flashgate.ParseEntry). A
// line that does not parse, or whose order id MySQL cannot store, is
// skipped and counted malformed (no gateway writes one), and its entry is
// then not settled: its other reservations are written, and the relay
// produces the entry again, so the bad line stays visible (logged each
// period) rather than removed with the good ones.
func (w *Worker) parse(msgs []kafka.Message) ([]flashgate.Reservation, []entry) {
	rs := make([]flashgate.Reservation, 0, len(msgs))
	var entries []entry
	for _, m := range msgs {
		from, whole := len(rs), true
		for r, err := range flashgate.EntryLines(m.Value) {
			if err == nil && !mysql.ValidOrderID(r.OrderID) {
				err = errors.New("order id not storable: not 1 to 64 printable ASCII characters")
			}
			if err != nil {
				w.m.written.WithLabelValues("malformed").Inc()
				w.log.Error("skip malformed reservation", "err", err, "partition", m.Partition, "offset", m.Offset)
				whole = false
				continue
			}
			rs = append(rs, r)
		}
		if whole {
			es := rs[from:]
			entries = append(entries, entry{itemShard{es[0].ItemID, es[0].Shard}, flashgate.EntryField(es)})
		}
	}
	return rs, entries
}

// write writes reservations in one transaction, retrying until MySQL takes
// them; false when stop ended first.
func (w *Worker) write(ctx, stop context.Context, rs []flashgate.Reservation) bool {
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
		start := time.Now()
		res, err := w.db.WriteReservations(ctx, rs)
		if err == nil {
			w.m.batches.Observe(time.Since(start).Seconds())
			w.m.written.WithLabelValues("inserted").Add(float64(res.Inserted))
			w.m.written.WithLabelValues("replayed").Add(float64(res.Replayed))
			w.m.written.WithLabelValues("conflict").Add(float64(res.Conflicts))
			w.m.written.WithLabelValues("guarded").Add(float64(res.Guarded))
			w.m.written.WithLabelValues("expired").Add(float64(res.Expired))
			if res.Guarded > 0 {
				w.log.Error("MySQL stock guard refused reservations: Redis stock exceeded MySQL stock", "orders", res.Guarded)
				w.unmark(ctx, stop, res.GuardedOrders)
			}
			return true
		}
		w.m.errors.WithLabelValues("write").Inc()
		w.log.Warn("write orders; retrying", "orders", len(rs), "err", err, "backoff", backoff)
		if !sleep(stop, backoff) {
			return false
		}
	}
}

// entry names the outbox entry of a message: its shard and field.
type entry struct {
	at    itemShard
	field string
}

// unmark clears the duplicate marks of reservations the stock guard refused
// (stored cancelled), so that their buyers are not told duplicate with a
// cancelled order. It retries until Redis takes it or the worker stops.
func (w *Worker) unmark(ctx, stop context.Context, rs []flashgate.Reservation) {
	for _, r := range rs {
		for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
			_, err := w.store.Unmark(ctx, r.ItemID, r.Shard, r.UserID, r.OrderID)
			if err == nil {
				break
			}
			w.m.errors.WithLabelValues("unmark").Inc()
			w.log.Warn("clear buyer mark of a guarded order; retrying", "order", r.OrderID, "err", err)
			if !sleep(stop, backoff) {
				return
			}
		}
	}
}

// settle clears the outbox entries of written messages. A failure only
// means the relay produces them again later, which writes nothing twice.
func (w *Worker) settle(ctx context.Context, entries []entry) {
	groups := map[itemShard][]string{}
	for _, e := range entries {
		groups[e.at] = append(groups[e.at], e.field)
	}
	for k, fields := range groups {
		if _, err := w.store.Settle(ctx, k.item, k.shard, fields); err != nil {
			w.m.errors.WithLabelValues("settle").Inc()
			w.log.Warn("settle outbox", "item", k.item, "err", err)
		}
	}
}

func (w *Worker) periodic(ctx context.Context) {
	everyTick(ctx, w.cfg.Tick, func() {
		for _, j := range w.jobs {
			jctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := j.fn(jctx)
			cancel()
			w.jobFailed(ctx, j.name, err)
		}
	})
}

// everyTick calls fn every tick until ctx is done; a slow fn delays the
// next call rather than stacking calls up.
func everyTick(ctx context.Context, tick time.Duration, fn func()) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fn()
	}
}

// jobFailed counts and logs the error of a background job, unless there is
// none or the worker is shutting down (then the error is the shutdown's).
func (w *Worker) jobFailed(ctx context.Context, name string, err error) {
	if err != nil && ctx.Err() == nil {
		w.m.errors.WithLabelValues(name).Inc()
		w.log.Warn("background job failed", "job", name, "err", err)
	}
}

// measureLag sets flashgate_worker_kafka_lag every tick from the group's
// committed offsets and the partitions' ends. It has a loop of its own: a
// Kafka outage makes it wait for timeouts, which must not hold up the
// periodic jobs (the expiry and the restock need no Kafka).
func (w *Worker) measureLag(ctx context.Context) {
	m := kafka.NewLagMeter(w.cfg.KafkaSecurity, w.cfg.Brokers, w.cfg.Topic, w.cfg.Group)
	defer m.Close()
	everyTick(ctx, w.cfg.Tick, func() {
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		lag, stranded, err := m.Measure(lctx)
		cancel()
		switch {
		case err == nil:
			w.m.lag.Set(float64(lag))
		case ctx.Err() == nil:
			w.m.errors.WithLabelValues("lag").Inc()
			w.log.Warn("measure kafka lag", "err", err)
		}
		if len(stranded) > 0 {
			w.rewind(ctx, stranded)
		}
	})
}

// rewind moves the group's offsets that lie past their partition's end
// back to its first offset (kafka.RewindStranded). They come from a log
// that is gone, such as an embedded broker's after a restart: a batch read
// before it and committed after it, or the committed offsets of a group
// that outlived its topic. Until then the group's readers of those
// partitions wait for the new log to grow past them and read nothing of
// it, not even the entries the relay produces again.
func (w *Worker) rewind(ctx context.Context, stranded map[int]int64) {
	w.log.Warn("consumer group offsets past their partitions' end: the log they were committed on is gone; reading those partitions again from their first offset",
		"group", w.cfg.Group, "partitions", len(stranded))
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := kafka.RewindStranded(rctx, w.cfg.KafkaSecurity, w.cfg.Brokers, w.cfg.Topic, w.cfg.Group, stranded); err != nil && ctx.Err() == nil {
		w.m.errors.WithLabelValues("rewind").Inc()
		w.log.Warn("rewind stranded offsets", "err", err)
	}
}

// Relay produces again the outbox entries older than RelayAfter: the
// reservations whose first produce failed or never happened. It finds them
// by walking each shard's outbox (redis.Store.Stale), which costs Redis
// what the outbox holds: orders not yet rows, normally a fraction of a
// second of them, but more while the workers lag. So a walk starts at most
// every half period, and an entry is produced again between RelayAfter and
// about 1.5 RelayAfter (and a tick) after its buy. A pass goes on with each shard's walk
// where the last pass left it (a pass stops at 1,000 entries a shard), so
// that every entry gets its turn however many are due. Relays of other
// workers may walk the same outboxes meanwhile: an entry is returned to one
// of them once a period.
func (w *Worker) Relay(ctx context.Context) error {
	items, err := w.store.PublishedItems(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	walks := w.relayWalks
	w.relayWalks = map[itemShard]relayWalk{} // drops the shards of items gone
	var errs []error
	for _, id := range items {
		it, err := w.store.Items().Get(ctx, id, time.Now())
		if err != nil || it.Missing {
			errs = append(errs, err)
			continue
		}
		for shard := 0; shard < it.Shards; shard++ {
			at := itemShard{id, shard}
			walk := walks[at]
			if walk.cursor == 0 && now.Before(walk.next) {
				w.relayWalks[at] = walk
				continue
			}
			if walk.cursor == 0 {
				walk.next = now.Add(w.cfg.RelayAfter / 2)
			}
			wires, next, err := w.store.Stale(ctx, id, shard, walk.cursor, now, w.cfg.RelayAfter, 1000)
			walk.cursor = next
			w.relayWalks[at] = walk
			if err != nil {
				errs = append(errs, err) // and produce what it returned: it is stamped
			}
			if len(wires) == 0 {
				continue
			}
			msgs := make([]kafka.Message, 0, len(wires))
			n := 0
			for _, v := range wires {
				// Keyed as the gateway keys it (redis.Announcer); an entry
				// with a bad line goes too: the worker writes its others.
				first, _, _ := bytes.Cut(v, []byte{'\n'})
				var key []byte
				if r, err := flashgate.ParseReservation(first); err == nil {
					key = flashgate.EntryKey(r.OrderID)
				}
				msgs = append(msgs, kafka.Message{Key: key, Value: v})
				n += flashgate.EntryLen(v)
			}
			if err := w.producer.Write(ctx, msgs...); err != nil {
				errs = append(errs, err)
				continue
			}
			w.m.relayed.Add(float64(n))
		}
	}
	return errors.Join(errs...)
}

// Reconcile finishes stock transfers interrupted between take and ack,
// forgets old transfer ids, and clears sold-out flags raised while units
// were still somewhere (a race the gateway cannot rule out).
func (w *Worker) Reconcile(ctx context.Context) error {
	items, err := w.store.PublishedItems(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	var errs []error
	for _, id := range items {
		it, err := w.store.Items().Get(ctx, id, now)
		if err != nil || it.Missing {
			errs = append(errs, err)
			continue
		}
		// Every transfer still logged in a donor, read before any credit
		// record is trimmed: a credit record lives as long as its
		// transfer can be replayed, however long its ack takes, so that
		// the transfer is never credited twice.
		logged := map[string]bool{}
		xss := make([][]redis.Transfer, it.Shards)
		for shard := 0; shard < it.Shards; shard++ {
			xs, err := w.store.Transfers(ctx, id, shard)
			if err != nil {
				errs = append(errs, err)
				logged = nil // unknown: trim nothing this round
				continue
			}
			xss[shard] = xs
			for _, x := range xs {
				if logged != nil {
					logged[x.ID] = true
				}
			}
		}
		for shard, xs := range xss {
			for _, x := range xs {
				if now.Sub(x.TakenAt) < w.cfg.TransferAfter {
					continue
				}
				if _, err := w.store.Credit(ctx, id, x.To, x.ID, x.Units, now); err != nil {
					errs = append(errs, err)
					continue
				}
				if err := w.store.Ack(ctx, id, shard, x.ID); err != nil {
					errs = append(errs, err)
					continue
				}
				w.m.settled.Inc()
			}
		}
		for shard := 0; shard < it.Shards && logged != nil; shard++ {
			if err := w.store.TrimCredits(ctx, id, shard, now.Add(-time.Hour), logged); err != nil {
				errs = append(errs, err)
			}
		}
		soldOut, err := w.store.SoldOut(ctx, id)
		if err != nil || !soldOut {
			errs = append(errs, err)
			continue
		}
		left, err := w.store.RemainingNow(ctx, id, it.Shards)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if left > 0 {
			errs = append(errs, w.store.SetSoldOut(ctx, id, false))
		}
	}
	return errors.Join(errs...)
}

// Restock returns to Redis the units of cancelled and refunded orders not
// returned yet, lets their buyers buy again and clears the sold-out flag.
func (w *Worker) Restock(ctx context.Context) error {
	for {
		rows, err := w.db.Unrestocked(ctx, 500)
		if err != nil || len(rows) == 0 {
			return err
		}
		for _, r := range rows {
			if r.Archived { // its Redis state is gone: nothing to return to
				if err := w.db.MarkRestocked(ctx, r.OrderID); err != nil {
					return err
				}
				continue
			}
			shard := flashgate.HomeShard(r.UserID, r.Shards)
			released, err := w.store.Release(ctx, r.ItemID, shard, r.UserID, r.OrderID)
			if err != nil {
				return err
			}
			if released {
				w.m.restocked.Inc()
				if err := w.store.SetSoldOut(ctx, r.ItemID, false); err != nil {
					return err
				}
			}
			if err := w.db.MarkRestocked(ctx, r.OrderID); err != nil {
				return err
			}
		}
		if len(rows) < 500 {
			return nil
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
