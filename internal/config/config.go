// Package config reads flashgate's settings (contract §2) from the
// environment and from flags of the same meaning, and validates them for a
// role. A bad setting stops the process with one line naming it.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/flashgate/flashgate/internal/edge"
)

// Config is every setting of every role. Roles ignore what they do not use.
type Config struct {
	Role string

	HTTPAddr     string
	AdminAddr    string
	RedisAddrs   []string
	RedisPrefix  string
	MySQLDSN     string
	KafkaBrokers []string
	KafkaTopic   string
	AuthSecret   string
	AdminToken   string
	LogLevel     slog.Level

	OrderTTL  time.Duration
	PublicURL string

	AlipayGateway    string
	AlipayAppID      string
	AlipayPrivateKey string
	AlipayPublicKey  string
	PaysimAddr       string

	UserRate       float64
	IPRate         float64
	TrustedProxies []string
	MaxInflight    int
	MaxConnsPerIP  int
	AutobanAfter   int
	AutobanWindow  time.Duration
	AutobanFor     time.Duration

	KafkaPartitions int
	WorkerBatch     int
	WorkerWriteRate int
	WorkerConsumers int
	RelayAfter      time.Duration
	ArchiveAfter    time.Duration
	WorkerAddr      string
}

// setting describes one variable/flag pair.
type setting struct {
	env, flag, def, usage string
	roles                 string // roles that use it: "" means all
}

// Roles of the binary that run services.
const (
	RoleDev     = "dev"
	RoleGateway = "gateway"
	RoleWorker  = "worker"
	RoleAdmin   = "admin"
	RoleMigrate = "migrate"
	RoleToken   = "token"
)

var settings = []setting{
	{"FLASHGATE_HTTP_ADDR", "http-addr", "127.0.0.1:8080", "public listener", "dev gateway"},
	{"FLASHGATE_ADMIN_ADDR", "admin-addr", "127.0.0.1:8081", "admin listener", "dev admin"},
	{"FLASHGATE_REDIS_ADDR", "redis-addr", "127.0.0.1:6379", "Redis addresses, comma-separated; more than one means Redis Cluster", "dev gateway worker admin"},
	{"FLASHGATE_REDIS_PREFIX", "redis-prefix", "fg", "prefix of every Redis key", "dev gateway worker admin"},
	{"FLASHGATE_MYSQL_DSN", "mysql-dsn", "root@tcp(127.0.0.1:3306)/flashgate?parseTime=true", "go-sql-driver DSN", "dev gateway worker admin migrate"},
	{"FLASHGATE_KAFKA_BROKERS", "kafka-brokers", "", "Kafka brokers, comma-separated; empty: dev embeds one", "dev gateway worker admin"},
	{"FLASHGATE_KAFKA_TOPIC", "kafka-topic", "flashgate.reservations", "topic of reservations", "dev gateway worker admin"},
	{"FLASHGATE_AUTH_SECRET", "auth-secret", "", "HS256 key of shopper tokens (at least 32 bytes)", "dev gateway worker admin token"},
	{"FLASHGATE_ADMIN_TOKEN", "admin-token", "", "bearer token of the admin API (at least 16 bytes)", "dev gateway worker admin"},
	{"FLASHGATE_LOG_LEVEL", "log-level", "info", "debug, info, warn or error", ""},
	{"FLASHGATE_ORDER_TTL", "order-ttl", "15m", "an unpaid order is cancelled this long after creation", "dev gateway worker admin"},
	{"FLASHGATE_PUBLIC_URL", "public-url", "", "base of the payment notify and return URLs (default http:// + http addr)", "dev gateway worker"},
	{"FLASHGATE_ALIPAY_GATEWAY", "alipay-gateway", "", "Alipay gateway URL (…/gateway.do)", "dev gateway worker"},
	{"FLASHGATE_ALIPAY_APP_ID", "alipay-app-id", "", "Alipay app id", "dev gateway worker"},
	{"FLASHGATE_ALIPAY_PRIVATE_KEY", "alipay-private-key", "", "merchant RSA private key, PEM text or file path", "dev gateway worker"},
	{"FLASHGATE_ALIPAY_PUBLIC_KEY", "alipay-public-key", "", "Alipay's RSA public key, PEM text or file path", "dev gateway worker"},
	{"FLASHGATE_PAYSIM_ADDR", "paysim-addr", "127.0.0.1:8082", "listener of dev's built-in Alipay sandbox", "dev"},
	{"FLASHGATE_USER_RATE", "user-rate", "5", "buys per second a shopper may send (0: off)", "dev gateway"},
	{"FLASHGATE_IP_RATE", "ip-rate", "500", "buys per second an IP may send (0: off)", "dev gateway"},
	{"FLASHGATE_TRUSTED_PROXIES", "trusted-proxies", "", "comma-separated IPs/CIDRs whose X-Forwarded-For is believed", "dev gateway"},
	{"FLASHGATE_MAX_INFLIGHT", "max-inflight", "4096", "buys in flight per gateway before answering 503 (0: no cap)", "dev gateway"},
	{"FLASHGATE_MAX_CONNS_PER_IP", "max-conns-per-ip", "0", "open connections one peer address may hold (0: no cap; behind a proxy all clients share its address)", "dev gateway"},
	{"FLASHGATE_AUTOBAN_AFTER", "autoban-after", "0", "ban a shopper who is rate limited this many times in the window (0: off)", "dev gateway"},
	{"FLASHGATE_AUTOBAN_WINDOW", "autoban-window", "10s", "window of the automatic ban count", "dev gateway"},
	{"FLASHGATE_AUTOBAN_FOR", "autoban-for", "10m", "length of an automatic ban", "dev gateway"},
	{"FLASHGATE_KAFKA_PARTITIONS", "kafka-partitions", "8", "partitions of the reservation topic when flashgate creates it", "dev gateway worker admin"},
	{"FLASHGATE_WORKER_BATCH", "worker-batch", "1000", "most reservations a worker writes in one transaction", "dev worker"},
	{"FLASHGATE_WORKER_WRITE_RATE", "worker-write-rate", "0", "most MySQL batch transactions per second per consumer (0: unpaced)", "dev worker"},
	{"FLASHGATE_WORKER_CONSUMERS", "worker-consumers", "2", "Kafka consumers per worker process", "dev worker"},
	{"FLASHGATE_WORKER_ADDR", "worker-addr", "", "worker listener serving /healthz and /metrics (empty: none)", "worker"},
	{"FLASHGATE_RELAY_AFTER", "relay-after", "5s", "outbox entries older than this are produced again", "dev worker"},
	{"FLASHGATE_ARCHIVE_AFTER", "archive-after", "1h", "an ended, settled activity loses its Redis keys this long after its end", "dev worker"},
}

// FlagSet returns a flag set for role whose defaults come from getenv. Load
// parses it; commands with flags of their own add them before calling Load.
func FlagSet(role string, getenv func(string) string, out io.Writer) (*flag.FlagSet, map[string]*string) {
	fs := flag.NewFlagSet("flashgate "+role, flag.ContinueOnError)
	fs.SetOutput(out)
	vals := map[string]*string{}
	for _, s := range settings {
		if s.roles != "" && !strings.Contains(" "+s.roles+" ", " "+role+" ") {
			continue
		}
		def := s.def
		if v := getenv(s.env); v != "" {
			def = v
		}
		vals[s.env] = fs.String(s.flag, def, s.usage+" ("+s.env+")")
	}
	return fs, vals
}

// Load parses args (after the subcommand) for role with defaults from getenv,
// and validates the result. The error names the setting at fault.
func Load(role string, args []string, getenv func(string) string, out io.Writer) (*Config, *flag.FlagSet, error) {
	fs, vals := FlagSet(role, getenv, out)
	if err := fs.Parse(args); err != nil {
		return nil, fs, err
	}
	if fs.NArg() > 0 {
		return nil, fs, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	c, err := FromValues(role, vals)
	return c, fs, err
}

// FromValues builds and validates a Config from parsed values keyed by
// variable name.
func FromValues(role string, vals map[string]*string) (*Config, error) {
	get := func(env string) string {
		if p := vals[env]; p != nil {
			return strings.TrimSpace(*p)
		}
		for _, s := range settings {
			if s.env == env {
				return s.def
			}
		}
		return ""
	}
	c := &Config{Role: role}
	var errs []error
	bad := func(env, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", env, fmt.Sprintf(format, args...)))
	}
	addr := func(env string) string {
		v := get(env)
		if _, _, err := net.SplitHostPort(v); err != nil {
			bad(env, "%q is not host:port", v)
		}
		return v
	}
	dur := func(env string, min time.Duration) time.Duration {
		d, err := time.ParseDuration(get(env))
		if err != nil || d < min {
			bad(env, "%q is not a duration of at least %v", get(env), min)
		}
		return d
	}
	num := func(env string, min, max float64) float64 {
		v, err := strconv.ParseFloat(get(env), 64)
		if err != nil || v < min || v > max {
			bad(env, "%q is not a number from %v to %v", get(env), min, max)
		}
		return v
	}
	list := func(env string) []string {
		var out []string
		for _, s := range strings.Split(get(env), ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out
	}

	c.HTTPAddr = addr("FLASHGATE_HTTP_ADDR")
	c.AdminAddr = addr("FLASHGATE_ADMIN_ADDR")
	c.PaysimAddr = addr("FLASHGATE_PAYSIM_ADDR")
	c.RedisAddrs = list("FLASHGATE_REDIS_ADDR")
	if len(c.RedisAddrs) == 0 {
		bad("FLASHGATE_REDIS_ADDR", "empty")
	}
	for _, a := range c.RedisAddrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			bad("FLASHGATE_REDIS_ADDR", "%q is not host:port", a)
		}
	}
	c.RedisPrefix = get("FLASHGATE_REDIS_PREFIX")
	if c.RedisPrefix == "" || strings.ContainsAny(c.RedisPrefix, "{} \t\n") {
		bad("FLASHGATE_REDIS_PREFIX", "%q must be non-empty without braces or spaces", c.RedisPrefix)
	}
	c.MySQLDSN = get("FLASHGATE_MYSQL_DSN")
	if dsn, err := mysql.ParseDSN(c.MySQLDSN); err != nil {
		bad("FLASHGATE_MYSQL_DSN", "%v", err)
	} else if dsn.DBName == "" {
		bad("FLASHGATE_MYSQL_DSN", "names no database")
	}
	c.KafkaBrokers = list("FLASHGATE_KAFKA_BROKERS")
	if len(c.KafkaBrokers) == 0 && (role == RoleGateway || role == RoleWorker || role == RoleAdmin) {
		bad("FLASHGATE_KAFKA_BROKERS", "required outside dev")
	}
	c.KafkaTopic = get("FLASHGATE_KAFKA_TOPIC")
	if c.KafkaTopic == "" {
		bad("FLASHGATE_KAFKA_TOPIC", "empty")
	}
	c.AuthSecret = get("FLASHGATE_AUTH_SECRET")
	c.AdminToken = get("FLASHGATE_ADMIN_TOKEN")
	if role == RoleDev {
		if c.AuthSecret == "" {
			c.AuthSecret = DevAuthSecret
		}
		if c.AdminToken == "" {
			c.AdminToken = DevAdminToken
		}
	}
	if role != RoleDev && role != RoleMigrate {
		// Secrets are never echoed, only their length is judged.
		if len(c.AuthSecret) < 32 {
			bad("FLASHGATE_AUTH_SECRET", "required, at least 32 bytes (only dev has a default)")
		} else if c.AuthSecret == DevAuthSecret {
			bad("FLASHGATE_AUTH_SECRET", "is dev's public default; set a secret of your own")
		}
		if len(c.AdminToken) < 16 {
			bad("FLASHGATE_ADMIN_TOKEN", "required, at least 16 bytes (only dev has a default)")
		}
	}
	if err := c.LogLevel.UnmarshalText([]byte(get("FLASHGATE_LOG_LEVEL"))); err != nil {
		bad("FLASHGATE_LOG_LEVEL", "%q is not debug, info, warn or error", get("FLASHGATE_LOG_LEVEL"))
	}
	c.OrderTTL = dur("FLASHGATE_ORDER_TTL", time.Second)
	c.PublicURL = strings.TrimRight(get("FLASHGATE_PUBLIC_URL"), "/")
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.HTTPAddr
	} else if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("FLASHGATE_PUBLIC_URL", "%q is not an http(s) URL", c.PublicURL)
	}
	c.AlipayGateway = get("FLASHGATE_ALIPAY_GATEWAY")
	c.AlipayAppID = get("FLASHGATE_ALIPAY_APP_ID")
	c.AlipayPrivateKey = get("FLASHGATE_ALIPAY_PRIVATE_KEY")
	c.AlipayPublicKey = get("FLASHGATE_ALIPAY_PUBLIC_KEY")
	if c.AlipayGateway != "" {
		if u, err := url.Parse(c.AlipayGateway); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("FLASHGATE_ALIPAY_GATEWAY", "%q is not an http(s) URL", c.AlipayGateway)
		}
		for env, v := range map[string]string{"FLASHGATE_ALIPAY_APP_ID": c.AlipayAppID, "FLASHGATE_ALIPAY_PRIVATE_KEY": c.AlipayPrivateKey, "FLASHGATE_ALIPAY_PUBLIC_KEY": c.AlipayPublicKey} {
			if v == "" {
				bad(env, "required with FLASHGATE_ALIPAY_GATEWAY")
			}
		}
	}
	c.UserRate = num("FLASHGATE_USER_RATE", 0, 1e9)
	c.IPRate = num("FLASHGATE_IP_RATE", 0, 1e9)
	c.TrustedProxies = list("FLASHGATE_TRUSTED_PROXIES")
	if _, err := edge.NewIPResolver(c.TrustedProxies); err != nil {
		bad("FLASHGATE_TRUSTED_PROXIES", "%v", err)
	}
	c.MaxInflight = int(num("FLASHGATE_MAX_INFLIGHT", 0, 1e7))
	c.MaxConnsPerIP = int(num("FLASHGATE_MAX_CONNS_PER_IP", 0, 1e6))
	c.AutobanAfter = int(num("FLASHGATE_AUTOBAN_AFTER", 0, 1e9))
	c.AutobanWindow = dur("FLASHGATE_AUTOBAN_WINDOW", time.Second)
	c.AutobanFor = dur("FLASHGATE_AUTOBAN_FOR", time.Second)
	c.KafkaPartitions = int(num("FLASHGATE_KAFKA_PARTITIONS", 1, 1024))
	c.WorkerBatch = int(num("FLASHGATE_WORKER_BATCH", 1, 100000))
	c.WorkerWriteRate = int(num("FLASHGATE_WORKER_WRITE_RATE", 0, 1e6))
	c.WorkerConsumers = int(num("FLASHGATE_WORKER_CONSUMERS", 1, 64))
	c.RelayAfter = dur("FLASHGATE_RELAY_AFTER", 100*time.Millisecond)
	c.ArchiveAfter = dur("FLASHGATE_ARCHIVE_AFTER", 0)
	if c.WorkerAddr = get("FLASHGATE_WORKER_ADDR"); c.WorkerAddr != "" {
		addr("FLASHGATE_WORKER_ADDR")
	}
	return c, errors.Join(errs...)
}

// DevAlipay reports whether dev should run its built-in Alipay sandbox.
func (c *Config) DevAlipay() bool { return c.Role == RoleDev && c.AlipayGateway == "" }
