package bench

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/flashgate/flashgate/internal/config"
)

// Scenarios that --scenario accepts.
const (
	ScenarioHot     = "hot"
	ScenarioFair    = "fair"
	ScenarioSoldOut = "soldout"
	ScenarioBuy     = "buy"
	ScenarioMixed   = "mixed"
)

// ErrUsage is wrapped by the error Main returns for bad flags, so that the
// CLI can exit with its usage status.
var ErrUsage = errors.New("usage")

// DefaultMySQLDSN is the contract's default FLASHGATE_MYSQL_DSN.
const DefaultMySQLDSN = "root@tcp(127.0.0.1:3306)/flashgate?parseTime=true"

// params is everything a bench run is told, from flags and environment.
// Zero counts mean "the scenario's default"; see the usage text.
type params struct {
	Target     string // base URL of the gateway
	Admin      string // base URL of the admin API
	AuthSecret string // HS256 key the shopper tokens are signed with
	AdminToken string // bearer token of the admin API
	MySQLDSN   string // where seckill_order is read from for the invariants
	Verify     bool   // read seckill_order to check the invariants

	Scenario    string
	Duration    time.Duration
	Warmup      time.Duration
	Concurrency int           // closed loop: workers; open loop: requests in flight at most
	Rate        int           // requests per second; > 0 means open loop
	Connections int           // keep-alive connections; 0 means Concurrency
	Timeout     time.Duration // per request

	Users    int    // distinct shoppers
	UserBase int64  // first user id
	Stock    int    // units per item created
	Shards   int    // Redis shards per item created; 0 leaves the server's default
	Items    int    // mixed: items on sale
	Price    string // price of the items created
	ItemID   int64  // buy this existing item instead of creating one

	Report   string // JSON report file
	Markdown string // Markdown report file
	HTML     string // HTML report file

	DrainTimeout  time.Duration
	DrainInterval time.Duration

	Calibrate         bool
	CalibrateDuration time.Duration

	// CPU per persisted order (issue 12): Redis through INFO cpu, MariaDB
	// through /proc when it runs on this machine.
	CPU           bool
	CPUIdle       time.Duration // sample the servers' idle CPU this long first
	RedisAddr     string        // the Redis the target uses
	RedisUsername string
	RedisPassword string

	SetupOnly  bool   // create the item and write the token file, no load
	TokensFile string // --tokens-file: one Authorization value per line
	ServeBare  string // --serve-bare ADDR: serve the calibration handler
	CPUProfile string // --cpuprofile FILE: the generator's CPU profile of the measured load
}

// closedLoop reports whether the run is closed loop.
func (c *params) closedLoop() bool { return c.Rate <= 0 }

// mode names the loop for reports.
func (c *params) mode() string {
	if c.closedLoop() {
		return "closed"
	}
	return "open"
}

const usageHead = `Usage: flashgate bench [flags]

Drives a running flashgate gateway with shopper buys, then waits for the
orders to drain and checks the invariants (CONTRACT §7) against the admin
stats and the seckill_order table. Exits non-zero when one is broken.

Scenarios (--scenario):
  hot      one item, stock far below demand; users cycle and retry
           (defaults: --users 100000 --stock 1000)
  fair     as many users as units, each buys until answered: every unit
           must sell (default --stock 10000, --users = --stock)
  soldout  the item is sold out before the clock starts, then a storm of
           buys that must all be answered 410 (defaults: --stock 100
           --users 100000)
  buy      a fresh user per request and stock for all of them: measures the
           accept path; ends early when the users run out (default --users
           300000, or rate x time in open loop; --stock = --users)
  mixed    several items on sale plus an upcoming one, an ended one, an
           unknown id, invalid tokens and repeated buyers (defaults:
           --items 4 --stock 1000 --users 100000; setup waits ~2s for the
           ended item to end)

With --item ID the harness buys that existing item: fair takes as many users
as it has units left, soldout first buys what is left, buy caps --users at
what is left, mixed adds only bad tokens, repeat buyers and an unknown id.

Closed loop by default (--concurrency workers); --rate R paces R requests
per second (open loop) and measures latency from when each was due.
Unless --item is given, the activity and items are created through the admin
API. The gateway's per-IP limit (FLASHGATE_IP_RATE, default 500/s) throttles
a load test from one address: run the gateway with FLASHGATE_IP_RATE=0.

Flags:
`

// parseConfig reads args, taking defaults from getenv as the server does.
// It returns flag.ErrHelp after writing the usage to stdout for --help.
func parseConfig(args []string, getenv func(string) string, stdout io.Writer) (params, error) {
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	var c params
	fs := flag.NewFlagSet("flashgate bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.Target, "target", "", "base URL of the gateway (default: http:// + $FLASHGATE_HTTP_ADDR, else http://127.0.0.1:8080)")
	fs.StringVar(&c.Admin, "admin", "", "base URL of the admin API (default: http:// + $FLASHGATE_ADMIN_ADDR, else http://127.0.0.1:8081)")
	// Secrets take their defaults after parsing, so that --help never
	// prints them.
	fs.StringVar(&c.AuthSecret, "auth-secret", "", "HS256 secret for shopper tokens (default: $FLASHGATE_AUTH_SECRET, else the dev secret)")
	fs.StringVar(&c.AdminToken, "admin-token", "", "admin API bearer token (default: $FLASHGATE_ADMIN_TOKEN, else the dev token)")
	fs.StringVar(&c.MySQLDSN, "mysql-dsn", "", "MySQL DSN for the invariant check (default: $FLASHGATE_MYSQL_DSN, else "+DefaultMySQLDSN+")")
	fs.BoolVar(&c.Verify, "verify", true, "read seckill_order from MySQL to check the invariants (false: admin stats only)")
	fs.StringVar(&c.Scenario, "scenario", ScenarioHot, "hot, fair, soldout, buy or mixed")
	fs.DurationVar(&c.Duration, "duration", 20*time.Second, "how long the measured load runs")
	fs.DurationVar(&c.Warmup, "warmup", 0, "load before the measurement starts (its answers are not counted, its orders are checked)")
	fs.IntVar(&c.Concurrency, "concurrency", 256, "closed loop: workers; open loop: requests in flight at most (each keeps ~160 KB of histograms)")
	fs.IntVar(&c.Rate, "rate", 0, "requests per second (open loop); 0 means closed loop")
	fs.IntVar(&c.Connections, "connections", 0, "keep-alive connections (default: --concurrency)")
	fs.DurationVar(&c.Timeout, "timeout", 10*time.Second, "per-request timeout")
	fs.IntVar(&c.Users, "users", 0, "distinct shoppers (default: by scenario)")
	fs.Int64Var(&c.UserBase, "user-base", 1, "first user id; raise it to run again against the same --item")
	fs.IntVar(&c.Stock, "stock", 0, "units per item created (default: by scenario)")
	fs.IntVar(&c.Shards, "shards", 0, "Redis shards per item created, 1 to 256 (default: the server's)")
	fs.IntVar(&c.Items, "items", 0, "mixed: items on sale (default 4)")
	fs.StringVar(&c.Price, "price", "9.90", "price of the items created")
	fs.Int64Var(&c.ItemID, "item", 0, "buy this existing item instead of creating one")
	fs.StringVar(&c.Report, "report", "", "write the JSON report to this file")
	fs.StringVar(&c.Markdown, "markdown", "", "write a Markdown summary to this file")
	fs.StringVar(&c.HTML, "html", "", "write a self-contained HTML report with charts to this file")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", 60*time.Second, "how long to wait for reserved units to become orders")
	fs.DurationVar(&c.DrainInterval, "drain-interval", 250*time.Millisecond, "how often the admin stats are polled while draining")
	fs.BoolVar(&c.Calibrate, "calibrate", false, "first measure the generator against a bare in-process fasthttp handler (ceiling_rps)")
	fs.DurationVar(&c.CalibrateDuration, "calibrate-duration", 5*time.Second, "how long the calibration runs")
	fs.BoolVar(&c.CPU, "cpu", true, "report Redis (INFO cpu) and MariaDB (/proc, same machine only) CPU per persisted order")
	fs.DurationVar(&c.CPUIdle, "cpu-idle", 0, "with --cpu: first sample the servers' CPU this long with no load, and report CPU per order net of that rate too")
	fs.StringVar(&c.RedisAddr, "redis-addr", "", "the Redis the target uses, for --cpu (default: the first of $FLASHGATE_REDIS_ADDR, else 127.0.0.1:6379; credentials from $FLASHGATE_REDIS_USERNAME/PASSWORD)")
	fs.BoolVar(&c.SetupOnly, "setup-only", false, "set the scenario up (item, sold out for soldout), write --tokens-file, print the item's buy path and stop: for an outside load generator such as wrk")
	fs.StringVar(&c.TokensFile, "tokens-file", "", "with --setup-only: write the shoppers' Authorization values here, one per line")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write a Go CPU profile of the load generator itself, over the measured load and its warmup, to this file (go tool pprof)")
	fs.StringVar(&c.ServeBare, "serve-bare", "", "serve the --calibrate bare handler on ADDR until interrupted, and nothing else: the ceiling for an outside load generator")

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fmt.Fprint(stdout, usageHead)
			fs.PrintDefaults()
			return c, flag.ErrHelp
		}
		return c, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	fromEnv := func(v *string, name, def string) {
		if *v == "" {
			*v = env(name, def)
			if strings.HasSuffix(name, "_ADDR") {
				*v = "http://" + *v
			}
		}
	}
	fromEnv(&c.Target, "FLASHGATE_HTTP_ADDR", "127.0.0.1:8080")
	fromEnv(&c.Admin, "FLASHGATE_ADMIN_ADDR", "127.0.0.1:8081")
	fromEnv(&c.AuthSecret, "FLASHGATE_AUTH_SECRET", config.DevAuthSecret)
	fromEnv(&c.AdminToken, "FLASHGATE_ADMIN_TOKEN", config.DevAdminToken)
	fromEnv(&c.MySQLDSN, "FLASHGATE_MYSQL_DSN", DefaultMySQLDSN)
	if c.RedisAddr == "" {
		c.RedisAddr, _, _ = strings.Cut(env("FLASHGATE_REDIS_ADDR", "127.0.0.1:6379"), ",")
		c.RedisAddr = strings.TrimSpace(c.RedisAddr)
	}
	c.RedisUsername, c.RedisPassword = getenv("FLASHGATE_REDIS_USERNAME"), getenv("FLASHGATE_REDIS_PASSWORD")
	if fs.NArg() > 0 {
		return c, fmt.Errorf("%w: unexpected argument %q", ErrUsage, fs.Arg(0))
	}
	if err := c.resolve(); err != nil {
		return c, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	return c, nil
}

// resolve fills the scenario's defaults and checks the settings, naming the
// flag at fault.
func (c *params) resolve() error {
	for _, u := range []struct{ name, v string }{{"--target", c.Target}, {"--admin", c.Admin}} {
		p, err := url.Parse(u.v)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("%s: want an http(s) URL, got %q", u.name, u.v)
		}
	}
	c.Target = strings.TrimRight(c.Target, "/")
	c.Admin = strings.TrimRight(c.Admin, "/")
	switch {
	case c.Duration <= 0:
		return errors.New("--duration: must be positive")
	case c.Warmup < 0:
		return errors.New("--warmup: must not be negative")
	case c.Concurrency <= 0:
		return errors.New("--concurrency: must be positive")
	case c.Rate < 0:
		return errors.New("--rate: must not be negative")
	case c.Connections < 0:
		return errors.New("--connections: must not be negative")
	case c.Timeout <= 0:
		return errors.New("--timeout: must be positive")
	case c.Users < 0, c.Stock < 0, c.Items < 0:
		return errors.New("--users, --stock, --items: must not be negative")
	case c.Shards < 0 || c.Shards > 256:
		return errors.New("--shards: must be 1 to 256")
	case c.UserBase <= 0:
		return errors.New("--user-base: must be positive")
	case c.ItemID < 0:
		return errors.New("--item: must be a positive id")
	case c.DrainTimeout <= 0 || c.DrainInterval <= 0:
		return errors.New("--drain-timeout, --drain-interval: must be positive")
	case c.Calibrate && c.CalibrateDuration <= 0:
		return errors.New("--calibrate-duration: must be positive")
	case c.CPUIdle < 0:
		return errors.New("--cpu-idle: must not be negative")
	case c.SetupOnly && c.TokensFile == "":
		return errors.New("--setup-only: needs --tokens-file")
	case c.TokensFile != "" && !c.SetupOnly:
		return errors.New("--tokens-file: only with --setup-only")
	}
	if _, _, err := net.SplitHostPort(c.RedisAddr); err != nil {
		return fmt.Errorf("--redis-addr: want host:port, got %q", c.RedisAddr)
	}
	if _, err := strconv.ParseFloat(c.Price, 64); err != nil {
		return fmt.Errorf("--price: want a decimal like 9.90, got %q", c.Price)
	}
	if c.Connections == 0 {
		c.Connections = c.Concurrency
	}
	switch c.Scenario {
	case ScenarioHot:
		c.Users = orDefault(c.Users, 100000)
		c.Stock = orDefault(c.Stock, 1000)
	case ScenarioFair:
		switch {
		case c.Users == 0 && c.Stock == 0:
			c.Stock, c.Users = 10000, 10000
		case c.Users == 0:
			c.Users = c.Stock
		case c.Stock == 0:
			c.Stock = c.Users
		case c.Users != c.Stock:
			return errors.New("--users: the fair scenario needs as many users as units (--stock)")
		}
	case ScenarioSoldOut:
		c.Users = orDefault(c.Users, 100000)
		c.Stock = orDefault(c.Stock, 100)
	case ScenarioBuy:
		if c.Users == 0 {
			c.Users = 300000
			if !c.closedLoop() {
				c.Users = int(float64(c.Rate)*(c.Duration+c.Warmup).Seconds()*1.05) + c.Concurrency
			}
		}
		c.Stock = orDefault(c.Stock, c.Users)
	case ScenarioMixed:
		c.Users = orDefault(c.Users, 100000)
		c.Stock = orDefault(c.Stock, 1000)
		c.Items = orDefault(c.Items, 4)
	default:
		return fmt.Errorf("--scenario: want hot, fair, soldout, buy or mixed, got %q", c.Scenario)
	}
	return nil
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}
