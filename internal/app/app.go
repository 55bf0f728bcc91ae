// Package app wires flashgate's roles: it builds the dependencies a role
// needs from its Config, binds the listeners first (so a busy port fails at
// once), runs the servers and workers, and on shutdown closes everything in
// reverse: stop accepting, drain, flush Kafka, commit offsets, close Redis,
// then MySQL.
package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flashgate/flashgate/admin"
	"github.com/flashgate/flashgate/gateway"
	"github.com/flashgate/flashgate/internal/auth"
	"github.com/flashgate/flashgate/internal/config"
	"github.com/flashgate/flashgate/internal/kafka"
	"github.com/flashgate/flashgate/internal/logging"
	"github.com/flashgate/flashgate/internal/mysql"
	"github.com/flashgate/flashgate/internal/paysim"
	"github.com/flashgate/flashgate/internal/redis"
	"github.com/flashgate/flashgate/payment"
	"github.com/flashgate/flashgate/worker"
)

// asyncLinger is how long a reservation acknowledged by Redis waits in the
// gateway's producer for its batch (FLASHGATE_ACK=redis): nobody waits for
// it, and fewer, fuller produce requests cost the gateway and the broker
// less.
const asyncLinger = 20 * time.Millisecond

// App is a running role.
type App struct {
	Config    *config.Config
	HTTPAddr  string // bound public address, when the role serves it
	AdminAddr string // bound admin address, when the role serves it
	// WorkerAddr is the bound address of a worker's /healthz and /metrics.
	WorkerAddr string
	Brokers    []string

	Store    *redis.Store
	DB       *mysql.DB
	Producer *kafka.Producer
	Gateway  *gateway.Gateway
	Admin    *admin.Server
	Worker   *worker.Worker
	Signer   *auth.Signer // nil in roles without FLASHGATE_AUTH_SECRET
	Payment  *payment.Service

	// Paysim is dev's Alipay sandbox, on PaysimAddr, when it runs.
	Paysim     *paysim.Sim
	PaysimAddr string

	log     *slog.Logger
	stop    context.CancelFunc
	wg      sync.WaitGroup
	errs    chan error
	closers []func()
}

func (a *App) serves(roles ...string) bool {
	for _, r := range roles {
		if a.Config.Role == r || a.Config.Role == config.RoleDev {
			return true
		}
	}
	return false
}

// Start builds and starts the role of cfg. It returns once every listener
// is bound and every goroutine started; Wait returns after ctx is done and
// everything has shut down.
func Start(ctx context.Context, cfg *config.Config, log *slog.Logger) (_ *App, err error) {
	a := &App{Config: cfg, log: log, errs: make(chan error, 8), Brokers: cfg.KafkaBrokers}
	defer func() {
		if err != nil {
			a.closeAll()
		}
	}()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// Listen before anything slow, so that a busy port fails at once.
	var httpLn, adminLn net.Listener
	if a.serves(config.RoleGateway) {
		if httpLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			return nil, fmt.Errorf("FLASHGATE_HTTP_ADDR: listen: %w", err)
		}
		a.closers = append(a.closers, func() { httpLn.Close() })
		a.HTTPAddr = httpLn.Addr().String()
	}
	if a.serves(config.RoleAdmin) {
		if adminLn, err = net.Listen("tcp", cfg.AdminAddr); err != nil {
			return nil, fmt.Errorf("FLASHGATE_ADMIN_ADDR: listen: %w", err)
		}
		a.closers = append(a.closers, func() { adminLn.Close() })
		a.AdminAddr = adminLn.Addr().String()
	}
	var workerLn net.Listener
	if cfg.Role == config.RoleWorker && cfg.WorkerAddr != "" {
		if workerLn, err = net.Listen("tcp", cfg.WorkerAddr); err != nil {
			return nil, fmt.Errorf("FLASHGATE_WORKER_ADDR: listen: %w", err)
		}
		a.closers = append(a.closers, func() { workerLn.Close() })
		a.WorkerAddr = workerLn.Addr().String()
	}
	var paysimLn net.Listener
	if cfg.DevAlipay() {
		if paysimLn, err = net.Listen("tcp", cfg.PaysimAddr); err != nil {
			return nil, fmt.Errorf("FLASHGATE_PAYSIM_ADDR: listen: %w", err)
		}
		a.closers = append(a.closers, func() { paysimLn.Close() })
		a.PaysimAddr = paysimLn.Addr().String()
	}

	ksec, err := kafka.NewSecurity(cfg.KafkaSASL, cfg.KafkaUsername, cfg.KafkaPassword, cfg.KafkaTLS)
	if err != nil {
		return nil, fmt.Errorf("FLASHGATE_KAFKA_SASL: %w", err)
	}
	if len(a.Brokers) == 0 {
		// dev's embedded broker asks for the credentials its clients use.
		b, err := kafka.StartBrokerWith(kafka.BrokerOptions{
			Topic: cfg.KafkaTopic, Partitions: cfg.KafkaPartitions,
			SASL: cfg.KafkaSASL, Username: cfg.KafkaUsername, Password: cfg.KafkaPassword,
		})
		if err != nil {
			return nil, err
		}
		a.closers = append(a.closers, b.Close)
		a.Brokers = b.Addrs()
	}
	var freshDB bool
	if cfg.Role == config.RoleDev {
		if freshDB, err = mysql.MigrateCreated(ctx, cfg.MySQLDSN); err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
	}
	if a.DB, err = mysql.Open(ctx, cfg.MySQLDSN); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, func() { a.DB.Close() })
	// Connection pool waits and use: the MySQL side of the latency panels.
	reg.MustRegister(collectors.NewDBStatsCollector(a.DB.DB.DB, "flashgate"))
	if a.Store, err = redis.Open(ctx, redis.Options{
		Addrs: cfg.RedisAddrs, Prefix: cfg.RedisPrefix, Logger: log,
		Username: cfg.RedisUsername, Password: cfg.RedisPassword, TLS: cfg.RedisTLS,
	}); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, a.Store.Close)
	if freshDB {
		// A new database under a Redis that kept an older one's keys
		// would show that one's items: start clean.
		if err := a.Store.FlushPrefix(ctx); err != nil {
			return nil, err
		}
	}
	kctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := kafka.EnsureTopic(kctx, ksec, a.Brokers, cfg.KafkaTopic, cfg.KafkaPartitions); err != nil {
		return nil, err
	}
	if cfg.AuthSecret != "" {
		// Only the roles that use the secret have one (config); the others
		// get no signer rather than one keyed with nothing.
		a.Signer = auth.NewSigner([]byte(cfg.AuthSecret))
		a.Signer.SetMaxLifetime(cfg.TokenMaxTTL)
	}
	if err := a.newPayments(cfg, log, reg); err != nil {
		return nil, err
	}

	if a.serves(config.RoleGateway, config.RoleWorker) {
		// A buy acknowledged by Redis does not wait for Kafka, so its
		// message may wait longer for a fuller batch: at 20 ms rather than
		// 1 ms the dev process spent 35-43 µs a buy instead of 54-64 µs
		// under wrk (docs/performance.md). A buy acknowledged by Kafka
		// waits for its batch: the default 1 ms.
		linger := time.Duration(0)
		if cfg.Ack != config.AckKafka {
			linger = asyncLinger
		}
		a.Producer = kafka.NewProducer(kafka.ProducerOptions{Brokers: a.Brokers, Topic: cfg.KafkaTopic, Logger: log, Security: ksec, Linger: linger})
		a.closers = append(a.closers, func() { a.Producer.Close() })
		p := a.Producer
		for _, c := range []struct {
			name, help string
			fn         func() float64
		}{
			{"flashgate_kafka_produced_total", "Reservations the producer wrote to Kafka.",
				func() float64 { n, _, _ := p.Stats(); return float64(n) }},
			{"flashgate_kafka_failed_total", "Reservations the producer failed to write to Kafka (their outbox entries stay; the relay produces them later).",
				func() float64 { _, n, _ := p.Stats(); return float64(n) }},
			{"flashgate_kafka_dropped_total", "Reservations the producer dropped because its queue was full (the relay produces them later).",
				func() float64 { _, _, n := p.Stats(); return float64(n) }},
		} {
			reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help}, c.fn))
		}
	}

	// From here on, goroutines run: a failure to start stops them through
	// their context.
	runCtx, stop := context.WithCancel(ctx)
	a.stop = stop
	if a.serves(config.RoleWorker) {
		a.Worker = worker.New(worker.Config{
			Brokers: a.Brokers, KafkaSecurity: ksec, Topic: cfg.KafkaTopic, Consumers: cfg.WorkerConsumers,
			Batch: cfg.WorkerBatch, Linger: cfg.WorkerLinger, WriteRate: cfg.WorkerWriteRate, RelayAfter: cfg.RelayAfter,
			ArchiveAfter: cfg.ArchiveAfter,
			RepairGrace:  cfg.RepairGrace,
			Written:      a.Payment.OrdersWritten,
		}, a.DB, a.Store, a.Producer, log, reg)
		a.Worker.AddJob("expire", a.Payment.Expire)
		a.Worker.AddJob("refund_repair", a.Payment.RepairRefunds)
	}
	if a.serves(config.RoleGateway) {
		brokers := a.Brokers
		a.Gateway = gateway.New(gateway.Config{
			MaxInflight: cfg.MaxInflight,
			KafkaReady:  func(ctx context.Context) error { return kafka.Ping(ctx, ksec, brokers) },
			UserRate:    cfg.UserRate, IPRate: cfg.IPRate, TrustedProxies: cfg.TrustedProxies,
			AutobanAfter: cfg.AutobanAfter, AutobanWindow: cfg.AutobanWindow, AutobanFor: cfg.AutobanFor,
			PathSecret: []byte(cfg.AuthSecret), MaxConnsPerIP: cfg.MaxConnsPerIP,
			AccessLog: cfg.AccessLog, WarnEvery: cfg.LogRepeatEvery,
			AckKafka:     cfg.Ack == config.AckKafka,
			PublicIPRate: cfg.PublicIPRate,
		}, a.Store, a.DB, a.Producer, a.Signer, log, reg)
		a.Payment.MountGateway(a.Gateway, a.Signer)
		if cfg.Role == config.RoleDev {
			// The storefront's demo sign-in (contract §12): dev only.
			a.Gateway.Handle("POST", gateway.DevTokenPath, gateway.DevToken(a.Signer, 24*time.Hour))
		}
	}
	if a.serves(config.RoleAdmin) {
		a.Admin = admin.New(a.DB, a.Store, cfg.AdminToken, log, reg)
		if cfg.AccessLog {
			a.Admin.AccessLog = log
		}
		reg.MustRegister(admin.NewStockCollector(a.Store, log))
		a.Payment.MountAdmin(a.Admin)
	}

	a.goRun("payment", func() error { return a.Payment.Run(runCtx) })
	if a.Paysim != nil {
		a.goRun("paysim", func() error { return a.Paysim.Run(runCtx, paysimLn) })
	}
	workerDone := make(chan struct{})
	if a.Worker != nil {
		a.goRun("worker", func() error {
			defer close(workerDone)
			return a.Worker.Run(runCtx)
		})
	}
	if a.Gateway != nil {
		a.goRun("gateway", func() error { return a.Gateway.Serve(runCtx, httpLn) })
	}
	if a.Admin != nil {
		a.goRun("admin", func() error { return a.Admin.Serve(runCtx, adminLn) })
	}
	if workerLn != nil {
		brokers := a.Brokers
		ready := func(ctx context.Context) error {
			if err := a.Store.Ping(ctx); err != nil {
				return fmt.Errorf("redis unreachable: %w", err)
			}
			if err := a.DB.PingContext(ctx); err != nil {
				return fmt.Errorf("mysql unreachable: %w", err)
			}
			return kafka.Ping(ctx, ksec, brokers)
		}
		a.goRun("worker listener", func() error { return serveWorker(runCtx, workerDone, workerLn, reg, ready) })
	}
	return a, nil
}

func (a *App) goRun(name string, fn func() error) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := fn(); err != nil {
			a.errs <- fmt.Errorf("%s: %w", name, err)
		}
	}()
}

// Wait blocks until ctx is done or a component fails, then shuts everything
// down in order and returns the first error.
func (a *App) Wait(ctx context.Context) error {
	var err error
	select {
	case <-ctx.Done():
	case err = <-a.errs:
		a.log.Error("component failed; shutting down", "err", err)
	}
	a.closeAll()
	return err
}

// closeAll stops the goroutines (servers drain, consumers commit), then
// closes the dependencies in reverse order of opening: the producer flushes
// before Redis, MySQL and the embedded broker go.
func (a *App) closeAll() {
	if a.stop != nil {
		a.stop()
		a.wg.Wait()
	}
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}

// serveWorker answers a worker's /healthz, /readyz and /metrics on ln. Once
// ctx is done /readyz fails, but the listener serves on until the worker has
// drained (done is closed), so that its last metrics can still be scraped
// and a liveness probe does not kill it mid-batch.
func serveWorker(ctx context.Context, done <-chan struct{}, ln net.Listener, reg *prometheus.Registry, ready func(context.Context) error) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	answer := func(w http.ResponseWriter, status int, body string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(body))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		answer(w, 200, `{"code":"ok"}`)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if ctx.Err() != nil {
			answer(w, 503, `{"code":"unavailable","message":"shutting down"}`)
			return
		}
		rctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := ready(rctx); err != nil {
			// The error names the dependency; it carries no secret (the
			// addresses are not secret, the DSN is not in it).
			b, _ := json.Marshal(map[string]string{"code": "unavailable", "message": err.Error()})
			answer(w, 503, string(b))
			return
		}
		answer(w, 200, `{"code":"ok"}`)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		<-done
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Logger returns a text logger at level writing to w.
func Logger(w io.Writer, level slog.Level) *slog.Logger {
	return logging.New(w, level, logging.Text)
}

// ErrUsage marks a command-line mistake (exit code 2).
var ErrUsage = errors.New("usage")
