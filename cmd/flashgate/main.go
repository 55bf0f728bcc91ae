// Command flashgate is the flash-sale gateway: one binary with a subcommand
// per role (dev, gateway, worker, admin), plus migrate, token and bench.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/flashgate/flashgate/bench"
	"github.com/flashgate/flashgate/internal/app"
	"github.com/flashgate/flashgate/internal/auth"
	"github.com/flashgate/flashgate/internal/config"
	"github.com/flashgate/flashgate/internal/kafka"
	"github.com/flashgate/flashgate/internal/logging"
	"github.com/flashgate/flashgate/internal/mysql"
)

const usage = `flashgate: an edge-first flash-sale gateway.

Usage: flashgate <command> [flags]

Commands:
  dev       every role in one process, with an embedded Kafka-protocol broker
  gateway   the public HTTP front door
  worker    the Kafka consumers and background jobs
  admin     the admin HTTP API
  migrate   create the database if missing and apply the schema
  token     print a shopper token: flashgate token --user ID [--ttl 1h]
  bench     the load harness
  broker    a Kafka-protocol broker in memory, for local fleets and tests

Every setting is an environment variable and a flag of the same meaning
(FLASHGATE_HTTP_ADDR <=> --http-addr). Run 'flashgate <command> --help'.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, args := args[0], args[1:]
	var err error
	switch cmd {
	case config.RoleDev, config.RoleGateway, config.RoleWorker, config.RoleAdmin:
		err = serve(ctx, cmd, args, getenv, stdout, stderr)
	case config.RoleMigrate:
		err = migrate(ctx, args, getenv, stdout, stderr)
	case config.RoleToken:
		err = token(args, getenv, stdout, stderr)
	case "bench":
		err = bench.Main(ctx, args, stdout, stderr)
	case config.RoleBroker:
		err = broker(ctx, args, getenv, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "flashgate: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, app.ErrUsage), errors.Is(err, bench.ErrUsage):
		return 2
	}
	fmt.Fprintf(stderr, "flashgate %s: %v\n", cmd, err)
	return 1
}

// load parses the settings of role; a bad one is reported as one line, and
// --help goes to stdout.
func load(role string, args []string, getenv func(string) string, stdout io.Writer) (*config.Config, error) {
	cfg, _, err := config.Load(role, args, getenv, stdout)
	return cfg, err
}

func serve(ctx context.Context, role string, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := load(role, args, getenv, stdout)
	if err != nil {
		return err
	}
	log := logging.New(stderr, cfg.LogLevel, cfg.LogFormat)
	a, err := app.Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	if role == config.RoleDev {
		printDev(stdout, a)
	} else {
		// The listeners this role has, and where its dependencies are
		// (never a credential: the DSN goes without its password).
		attrs := []any{"role", role}
		for _, kv := range [][2]string{{"http", a.HTTPAddr}, {"admin", a.AdminAddr}, {"metrics", a.WorkerAddr}} {
			if kv[1] != "" {
				attrs = append(attrs, kv[0], kv[1])
			}
		}
		attrs = append(attrs, "redis", strings.Join(cfg.RedisAddrs, ","), "kafka", strings.Join(a.Brokers, ","),
			"mysql", config.RedactDSN(cfg.MySQLDSN))
		log.Info("started", attrs...)
	}
	return a.Wait(ctx)
}

// printDev prints dev's banner. It shows dev's own public tokens, never a
// secret the user configured (contract §13).
func printDev(w io.Writer, a *app.App) {
	c := a.Config
	admin := "Authorization: Bearer " + c.AdminToken
	if c.AdminToken != config.DevAdminToken {
		admin = "Authorization: Bearer $FLASHGATE_ADMIN_TOKEN"
	}
	fmt.Fprintf(w, `flashgate dev is running.
  gateway      http://%s
  admin        http://%s   (%s)
  kafka        %v
  redis        %v prefix %q
  mysql        %s
`, a.HTTPAddr, a.AdminAddr, admin, a.Brokers, c.RedisAddrs, c.RedisPrefix, config.RedactDSN(c.MySQLDSN))
	if c.AuthSecret == config.DevAuthSecret {
		exp := time.Now().Add(24 * time.Hour)
		fmt.Fprintf(w, `shopper tokens (valid 24h), mint more with: flashgate token --user ID
  user 1       %s
  user 2       %s
`, a.Signer.Mint(1, exp), a.Signer.Mint(2, exp))
	} else {
		fmt.Fprintln(w, "shopper tokens: flashgate token --user ID (with the same FLASHGATE_AUTH_SECRET)")
	}
	if a.Paysim != nil {
		fmt.Fprintf(w, "  alipay       http://%s/   (built-in sandbox, app id %s; see docs/payments.md)\n",
			a.PaysimAddr, app.DevAlipayAppID)
	}
}

func migrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := load(config.RoleMigrate, args, getenv, stdout)
	if err != nil {
		return err
	}
	if err := mysql.Migrate(ctx, cfg.MySQLDSN); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "schema is up to date")
	return nil
}

func token(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, vals := config.FlagSet(config.RoleToken, getenv, stdout)
	user := fs.Int64("user", 0, "user id (a positive integer)")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	id := *user
	if id <= 0 {
		return fmt.Errorf("--user: must be a positive integer, got %d", id)
	}
	if *ttl <= 0 {
		return fmt.Errorf("--ttl: must be positive")
	}
	secret := *vals["FLASHGATE_AUTH_SECRET"]
	if secret == "" {
		secret = config.DevAuthSecret
		fmt.Fprintln(stderr, "flashgate token: FLASHGATE_AUTH_SECRET is unset; signing with the dev secret")
	} else if len(secret) < auth.MinSecretLen {
		return fmt.Errorf("FLASHGATE_AUTH_SECRET: must be at least %d bytes", auth.MinSecretLen)
	}
	fmt.Fprintln(stdout, auth.NewSigner([]byte(secret)).Mint(id, time.Now().Add(*ttl)))
	return nil
}

// broker runs the in-memory Kafka-protocol broker (contract §1) until ctx is
// done: the topic flashgate needs is created with the partitions the other
// roles expect, from the same settings they read.
func broker(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, vals := config.FlagSet(config.RoleBroker, getenv, stdout)
	addr := fs.String("addr", "127.0.0.1:9092", "listen address (`host:port`)")
	certFile := fs.String("tls-cert", "", "PEM certificate (chain) `file`: serve TLS only, with --tls-key")
	keyFile := fs.String("tls-key", "", "PEM private key `file` of --tls-cert")
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	cfg, err := config.FromValues(config.RoleBroker, vals)
	if err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(*addr); err != nil {
		return fmt.Errorf("--addr: %q is not host:port", *addr)
	}
	var serverTLS *tls.Config
	if *certFile != "" || *keyFile != "" {
		pair, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			return fmt.Errorf("--tls-cert, --tls-key: %w", err)
		}
		serverTLS = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	}
	log := logging.New(stderr, cfg.LogLevel, cfg.LogFormat)
	b, err := kafka.StartBrokerWith(kafka.BrokerOptions{
		Addr: *addr, Topic: cfg.KafkaTopic, Partitions: cfg.KafkaPartitions,
		SASL: cfg.KafkaSASL, Username: cfg.KafkaUsername, Password: cfg.KafkaPassword,
		TLS: serverTLS,
	})
	if err != nil {
		return err
	}
	defer b.Close()
	security := "plaintext"
	if serverTLS != nil {
		security = "TLS"
	}
	if cfg.KafkaSASL != "" {
		security += ", SASL " + cfg.KafkaSASL + " user " + cfg.KafkaUsername
	}
	// The address goes to stdout alone on its line's end, so that a script
	// (or a test) started with --addr 127.0.0.1:0 can read the port.
	fmt.Fprintf(stdout, "flashgate broker: topic %s with %d partitions, %s, in memory only; listening on %s\n",
		cfg.KafkaTopic, cfg.KafkaPartitions, security, b.Addrs()[0])
	log.Info("broker started", "addr", b.Addrs()[0], "topic", cfg.KafkaTopic, "partitions", cfg.KafkaPartitions)
	<-ctx.Done()
	log.Info("broker stopping")
	return nil
}
