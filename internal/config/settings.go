package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Type is the kind of value a setting holds. It decides how the value is
// parsed and validated, how --help names it, and whether it may ever be
// shown (a Secret never is).
type Type int

// Types of settings.
const (
	String Type = iota
	Int
	Float
	Duration
	Bool
	Secret
)

// String returns the name --help shows for the type.
func (t Type) String() string {
	return [...]string{"string", "int", "float", "duration", "bool", "secret"}[t]
}

// Setting is one row of the settings table: declared once, it gives the
// environment variable, the flag (derived from the variable), the type, the
// default, the help line and the roles that use it.
type Setting struct {
	Env     string // FLASHGATE_…; the flag is its lower-case tail with dashes
	Type    Type
	Default string // as a user would write it
	Help    string // one line
	Roles   string // space-separated roles that use it
	// Min and Max bound an Int, Float or Duration (a Duration in
	// nanoseconds); both zero means unbounded.
	Min, Max float64
	// Redact, when set, returns the value with its secret part hidden, for
	// a setting that is not a Secret but may hold one (a DSN's password).
	Redact func(string) string
}

// Flag returns the flag name of the setting: FLASHGATE_HTTP_ADDR ⇒ http-addr.
func (s *Setting) Flag() string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(s.Env, "FLASHGATE_")), "_", "-")
}

// UsedBy reports whether role uses the setting.
func (s *Setting) UsedBy(role string) bool {
	return strings.Contains(" "+s.Roles+" ", " "+role+" ")
}

// Show returns the value as it may be printed: "set" or "not set" for a
// Secret, the redacted form of a value that may hold one, else the value.
func (s *Setting) Show(v string) string {
	switch {
	case s.Type == Secret && v == "":
		return "not set"
	case s.Type == Secret:
		return "set"
	case s.Redact != nil:
		return s.Redact(v)
	}
	return v
}

// parse turns a raw value into the setting's type and checks its bounds. The
// error never contains a Secret's value.
func (s *Setting) parse(raw string) (any, error) {
	switch s.Type {
	case Int:
		n, err := strconv.Atoi(raw)
		if err != nil || !s.within(float64(n)) {
			return 0, fmt.Errorf("%q is not an integer%s", raw, s.bounds(nil))
		}
		return n, nil
	case Float:
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil || !s.within(f) {
			return 0.0, fmt.Errorf("%q is not a number%s", raw, s.bounds(nil))
		}
		return f, nil
	case Duration:
		d, err := time.ParseDuration(raw)
		if err != nil || !s.within(float64(d)) {
			return time.Duration(0), fmt.Errorf("%q is not a duration%s", raw, s.bounds(func(f float64) string { return time.Duration(f).String() }))
		}
		return d, nil
	case Bool:
		if raw == "" {
			return false, nil
		}
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return false, fmt.Errorf("%q is not true or false", raw)
		}
		return b, nil
	}
	return raw, nil
}

func (s *Setting) within(f float64) bool {
	if s.Min == 0 && s.Max == 0 {
		return true
	}
	return f >= s.Min && f <= s.Max
}

func (s *Setting) bounds(format func(float64) string) string {
	if s.Min == 0 && s.Max == 0 {
		return ""
	}
	if format == nil {
		format = func(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
	}
	return " from " + format(s.Min) + " to " + format(s.Max)
}

// Roles of the binary.
const (
	RoleDev     = "dev"
	RoleGateway = "gateway"
	RoleWorker  = "worker"
	RoleAdmin   = "admin"
	RoleMigrate = "migrate"
	RoleToken   = "token"
	RoleBroker  = "broker"
)

// Role groups of the table, so that a row reads as who uses it.
const (
	services = "dev gateway worker admin" // the roles that serve
	front    = "dev gateway"
	all      = "dev gateway worker admin migrate token broker"
	kafkaAll = services + " broker"
	dbAll    = services + " migrate"
)

const maxDuration = float64(100 * 365 * 24 * time.Hour)

// settings is the table. Add a setting here, then read it in FromValues.
var settings = []Setting{
	{Env: "FLASHGATE_HTTP_ADDR", Default: "127.0.0.1:8080", Help: "public listener (host:port)", Roles: front},
	{Env: "FLASHGATE_ADMIN_ADDR", Default: "127.0.0.1:8081", Help: "admin listener (host:port)", Roles: "dev admin"},
	{Env: "FLASHGATE_WORKER_ADDR", Help: "worker listener serving /healthz, /readyz and /metrics (host:port; empty: none)", Roles: "worker"},
	{Env: "FLASHGATE_PUBLIC_URL", Help: "base of the payment notify and return URLs (default http:// + the public listener)", Roles: "dev gateway worker"},

	{Env: "FLASHGATE_REDIS_ADDR", Default: "127.0.0.1:6379", Help: "Redis addresses, comma-separated; more than one means Redis Cluster", Roles: services},
	{Env: "FLASHGATE_REDIS_PREFIX", Default: "fg", Help: "prefix of every Redis key", Roles: services},
	{Env: "FLASHGATE_REDIS_USERNAME", Help: "Redis ACL user (empty: the default user)", Roles: services},
	{Env: "FLASHGATE_REDIS_PASSWORD", Type: Secret, Help: "Redis password (ACL user's, or requirepass)", Roles: services},
	{Env: "FLASHGATE_REDIS_TLS", Type: Bool, Default: "false", Help: "connect to Redis with TLS", Roles: services},
	{Env: "FLASHGATE_REDIS_TLS_CA", Help: "PEM file of the CA that signs Redis's certificate (empty: the system's CAs)", Roles: services},

	{Env: "FLASHGATE_MYSQL_DSN", Default: "root@tcp(127.0.0.1:3306)/flashgate?parseTime=true", Help: "go-sql-driver DSN; add tls=flashgate to use FLASHGATE_MYSQL_TLS_CA", Roles: dbAll, Redact: RedactDSN},
	{Env: "FLASHGATE_MYSQL_PASSWORD", Type: Secret, Help: "password of the DSN's user, in place of one in the DSN (so the DSN can live in plain config)", Roles: dbAll},
	{Env: "FLASHGATE_MYSQL_TLS_CA", Help: "PEM file of the CA that signs MySQL's certificate, registered as the DSN's tls=flashgate", Roles: dbAll},

	{Env: "FLASHGATE_KAFKA_BROKERS", Help: "Kafka brokers, comma-separated; empty: dev embeds one, other roles refuse to start", Roles: services},
	{Env: "FLASHGATE_KAFKA_TOPIC", Default: "flashgate.reservations", Help: "topic of reservations", Roles: kafkaAll},
	{Env: "FLASHGATE_KAFKA_PARTITIONS", Type: Int, Default: "8", Help: "partitions of the reservation topic when flashgate creates it", Roles: kafkaAll, Min: 1, Max: 1024},
	{Env: "FLASHGATE_KAFKA_SASL", Help: "SASL mechanism: plain, scram-sha-256 or scram-sha-512 (empty: none)", Roles: kafkaAll},
	{Env: "FLASHGATE_KAFKA_USERNAME", Help: "SASL user", Roles: kafkaAll},
	{Env: "FLASHGATE_KAFKA_PASSWORD", Type: Secret, Help: "SASL password", Roles: kafkaAll},
	{Env: "FLASHGATE_KAFKA_TLS", Type: Bool, Default: "false", Help: "connect to Kafka with TLS", Roles: services},
	{Env: "FLASHGATE_KAFKA_TLS_CA", Help: "PEM file of the CA that signs the brokers' certificates (empty: the system's CAs)", Roles: services},

	{Env: "FLASHGATE_AUTH_SECRET", Type: Secret, Help: "HS256 key of shopper tokens, at least 32 bytes (dev has a public default)", Roles: "dev gateway token"},
	{Env: "FLASHGATE_ADMIN_TOKEN", Type: Secret, Help: "bearer token of the admin API, at least 16 bytes (dev has a public default)", Roles: "dev admin"},

	{Env: "FLASHGATE_LOG_LEVEL", Default: "info", Help: "debug, info, warn or error", Roles: all},
	{Env: "FLASHGATE_LOG_FORMAT", Default: "text", Help: "text (key=value lines) or json (one object a line)", Roles: all},
	{Env: "FLASHGATE_LOG_REPEAT_EVERY", Type: Duration, Default: "10s", Help: "a warning every request repeats (a dependency outage) is logged once, then as a count this often", Roles: front, Min: float64(10 * time.Millisecond), Max: maxDuration},
	{Env: "FLASHGATE_ACCESS_LOG", Type: Bool, Default: "false", Help: "log every HTTP request at info (method, path, status, duration, client)", Roles: "dev gateway admin"},

	{Env: "FLASHGATE_ORDER_TTL", Type: Duration, Default: "15m", Help: "an unpaid order is cancelled this long after creation", Roles: services, Min: float64(time.Second), Max: maxDuration},
	{Env: "FLASHGATE_ALIPAY_GATEWAY", Help: "Alipay gateway URL (…/gateway.do); empty: dev's sandbox in dev, no Alipay elsewhere", Roles: "dev gateway worker"},
	{Env: "FLASHGATE_ALIPAY_APP_ID", Help: "Alipay app id", Roles: "dev gateway worker"},
	{Env: "FLASHGATE_ALIPAY_PRIVATE_KEY", Type: Secret, Help: "merchant RSA private key, PEM text or file path", Roles: "dev gateway worker"},
	{Env: "FLASHGATE_ALIPAY_PUBLIC_KEY", Help: "Alipay's RSA public key, PEM text or file path", Roles: "dev gateway worker"},
	{Env: "FLASHGATE_PAYSIM_ADDR", Default: "127.0.0.1:8082", Help: "listener of dev's built-in Alipay sandbox", Roles: "dev"},

	{Env: "FLASHGATE_USER_RATE", Type: Float, Default: "5", Help: "buys per second a shopper may send, all gateways together (0: off)", Roles: front, Min: 0, Max: 1e9},
	{Env: "FLASHGATE_IP_RATE", Type: Float, Default: "500", Help: "buys per second an IP (an IPv6 /64) may send, all gateways together (0: off)", Roles: front, Min: 0, Max: 1e9},
	{Env: "FLASHGATE_TRUSTED_PROXIES", Help: "comma-separated IPs/CIDRs whose X-Forwarded-For is believed", Roles: front},
	{Env: "FLASHGATE_MAX_INFLIGHT", Type: Int, Default: "4096", Help: "buys in flight per gateway before answering 503 (0: no cap)", Roles: front, Min: 0, Max: 1e7},
	{Env: "FLASHGATE_MAX_CONNS_PER_IP", Type: Int, Default: "0", Help: "open connections one peer address may hold (0: no cap; behind a proxy all clients share its address)", Roles: front, Min: 0, Max: 1e6},
	{Env: "FLASHGATE_AUTOBAN_AFTER", Type: Int, Default: "0", Help: "ban a shopper who is rate limited this many times in the window (0: off)", Roles: front, Min: 0, Max: 1e9},
	{Env: "FLASHGATE_AUTOBAN_WINDOW", Type: Duration, Default: "10s", Help: "window of the automatic ban count", Roles: front, Min: float64(time.Second), Max: maxDuration},
	{Env: "FLASHGATE_AUTOBAN_FOR", Type: Duration, Default: "10m", Help: "length of an automatic ban", Roles: front, Min: float64(time.Second), Max: maxDuration},

	{Env: "FLASHGATE_WORKER_CONSUMERS", Type: Int, Default: "2", Help: "Kafka consumers per worker process", Roles: "dev worker", Min: 1, Max: 64},
	{Env: "FLASHGATE_WORKER_BATCH", Type: Int, Default: "1000", Help: "most reservations a worker writes in one transaction", Roles: "dev worker", Min: 1, Max: 100000},
	{Env: "FLASHGATE_WORKER_LINGER", Type: Duration, Default: "100ms", Help: "how long a worker consumer gathers reservations into one MySQL transaction once it has one", Roles: "dev worker", Min: float64(time.Millisecond), Max: float64(10 * time.Second)},
	{Env: "FLASHGATE_WORKER_WRITE_RATE", Type: Int, Default: "0", Help: "most MySQL batch transactions per second per consumer (0: unpaced)", Roles: "dev worker", Min: 0, Max: 1e6},
	{Env: "FLASHGATE_RELAY_AFTER", Type: Duration, Default: "5s", Help: "outbox entries older than this are produced again", Roles: "dev worker", Min: float64(100 * time.Millisecond), Max: maxDuration},
	{Env: "FLASHGATE_REPAIR_GRACE", Type: Duration, Default: "30s", Help: "a repair after a Redis rewind waits this long for producers' retries before reading Kafka's end", Roles: "dev worker", Min: 0, Max: maxDuration},
	{Env: "FLASHGATE_ACK", Default: "redis", Help: "a buy answers 202 once its reservation is in redis, or once kafka acknowledged it (acks=all)", Roles: "dev gateway"},
	{Env: "FLASHGATE_PUBLIC_IP_RATE", Type: Float, Default: "100", Help: "requests per second an IP may send to the item, activities, pay, refund, order WebSocket and Alipay notify/return endpoints (0: off)", Roles: front, Min: 0, Max: 1e9},
	{Env: "FLASHGATE_WS_PER_USER", Type: Int, Default: "8", Help: "order status WebSockets one shopper may hold open on a gateway (0: no cap)", Roles: front, Min: 0, Max: 1e6},
	{Env: "FLASHGATE_WS_MAX", Type: Int, Default: "20000", Help: "order status WebSockets a gateway holds open at most (0: no cap)", Roles: front, Min: 0, Max: 1e7},
	{Env: "FLASHGATE_TOKEN_MAX_TTL", Type: Duration, Default: "24h", Help: "longest a shopper token may still be valid: a token whose exp is further from now is refused (0: no maximum)", Roles: "dev gateway", Min: 0, Max: maxDuration},
	{Env: "FLASHGATE_ARCHIVE_AFTER", Type: Duration, Default: "1h", Help: "an ended, settled activity loses its Redis keys this long after its end", Roles: "dev worker", Min: 0, Max: maxDuration},
}

// Settings returns a copy of the table (for documentation and its tests).
func Settings() []Setting { return append([]Setting(nil), settings...) }

// lookup returns the row of env.
func lookup(env string) *Setting {
	for i := range settings {
		if settings[i].Env == env {
			return &settings[i]
		}
	}
	panic("config: no setting " + env) // a typo in this package
}
