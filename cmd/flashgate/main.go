// Command flashgate is the flash-sale gateway: one binary with a subcommand
// per role (dev, gateway, worker, admin), plus migrate, token and bench.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/flashgate/flashgate/bench"
	"github.com/flashgate/flashgate/internal/app"
	"github.com/flashgate/flashgate/internal/auth"
	"github.com/flashgate/flashgate/internal/config"
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

// load parses the settings of role; a bad one is reported as one line.
func load(role string, args []string, getenv func(string) string, stderr io.Writer) (*config.Config, error) {
	cfg, _, err := config.Load(role, args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

func serve(ctx context.Context, role string, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := load(role, args, getenv, stderr)
	if err != nil {
		return err
	}
	log := app.Logger(stderr, cfg.LogLevel)
	a, err := app.Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	if role == config.RoleDev {
		printDev(stdout, a)
	} else {
		log.Info("started", "role", role, "http", a.HTTPAddr, "admin", a.AdminAddr)
	}
	return a.Wait(ctx)
}

func printDev(w io.Writer, a *app.App) {
	exp := time.Now().Add(24 * time.Hour)
	fmt.Fprintf(w, `flashgate dev is running.
  gateway      http://%s
  admin        http://%s   (Authorization: Bearer %s)
  kafka        %v
  redis        %v prefix %q
  mysql        %s
shopper tokens (valid 24h), mint more with: flashgate token --user ID
  user 1       %s
  user 2       %s
`, a.HTTPAddr, a.AdminAddr, a.Config.AdminToken, a.Brokers, a.Config.RedisAddrs, a.Config.RedisPrefix,
		a.Config.MySQLDSN, a.Signer.Mint(1, exp), a.Signer.Mint(2, exp))
	if a.Paysim != nil {
		fmt.Fprintf(w, "  alipay       http://%s/   (built-in sandbox, app id %s; see docs/payments.md)\n",
			a.PaysimAddr, app.DevAlipayAppID)
	}
}

func migrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := load(config.RoleMigrate, args, getenv, stderr)
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
	fs, vals := config.FlagSet(config.RoleToken, getenv, stderr)
	user := fs.String("user", "", "user id (a positive integer)")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	if err := fs.Parse(args); err != nil {
		return err
	}
	id, err := strconv.ParseInt(*user, 10, 64)
	if err != nil || id <= 0 {
		return fmt.Errorf("--user: must be a positive integer, got %q", *user)
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
