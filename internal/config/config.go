// Package config reads flashgate's settings (contract §2) from the
// environment and from flags of the same meaning, and validates them for a
// role. A bad setting stops the process with one line naming it.
package config

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
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
	LogFormat    string // LogText or LogJSON
	AccessLog    bool
	// LogRepeatEvery is how often a warning repeated by every request is
	// logged, as a count, after its first line.
	LogRepeatEvery time.Duration

	// Secured dependencies (contract §13). A nil TLS config means plaintext.
	RedisUsername string
	RedisPassword string
	RedisTLS      *tls.Config
	MySQLTLS      *tls.Config // registered with the driver as tls=flashgate
	KafkaSASL     string      // "", "plain", "scram-sha-256" or "scram-sha-512"
	KafkaUsername string
	KafkaPassword string
	KafkaTLS      *tls.Config

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
	WorkerLinger    time.Duration
	WorkerWriteRate int
	WorkerConsumers int
	RelayAfter      time.Duration
	ArchiveAfter    time.Duration
	WorkerAddr      string

	// Ack is when a buy answers 202 (contract §14): AckRedis once the
	// reserve script ran, AckKafka once Kafka acknowledged the reservation.
	Ack string
	// RepairGrace: see worker.Config.
	RepairGrace time.Duration

	TokenMaxTTL time.Duration
	WSPerUser   int
	WSMax       int
	// PublicIPRate limits, per client address, the public endpoints other
	// than the buy that cost I/O or CPU.
	PublicIPRate float64
}

// Values of FLASHGATE_ACK.
const (
	AckRedis = "redis"
	AckKafka = "kafka"
)

// FlagSet returns a flag set for role with a flag per setting the role uses,
// whose values start from getenv or the default; vals holds the raw values by
// variable name after parsing. Commands with flags of their own add them
// before calling Parse. -h or --help prints to out what the role does and
// every setting with its type, variable, default and current value, a secret
// as "set" or "not set".
func FlagSet(role string, getenv func(string) string, out io.Writer) (*flag.FlagSet, map[string]*string) {
	fs := flag.NewFlagSet("flashgate "+role, flag.ContinueOnError)
	// The flag package would print an error followed by the whole help;
	// Parse returns the error as one line instead, and prints the help
	// only when asked.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	vals := map[string]*string{}
	from := map[string]string{} // where a value came from, when not the default
	help := &helpFlag{}
	for i := range settings {
		s := &settings[i]
		if !s.UsedBy(role) {
			continue
		}
		v := s.Default
		if e := getenv(s.Env); e != "" {
			v, from[s.Env] = e, s.Env
		}
		if path := getenv(s.Env + "_FILE"); path != "" && s.Type == Secret {
			// Docker and Kubernetes secrets, systemd credentials: files.
			if from[s.Env] != "" {
				help.errs = append(help.errs, fmt.Errorf("%s_FILE: set, and so is %s: set one of them", s.Env, s.Env))
			} else if b, err := os.ReadFile(path); err != nil {
				help.errs = append(help.errs, fmt.Errorf("%s_FILE: %w", s.Env, err))
			} else {
				v, from[s.Env] = strings.TrimRight(string(b), "\r\n"), s.Env+"_FILE"
			}
		}
		vals[s.Env] = &v
		fs.Var(flagValue{s, &v}, s.Flag(), s.Help)
	}
	help.print = func() { printHelp(out, role, fs, vals, from) }
	fs.Var(help, "help", "print this help")
	fs.Var(help, "h", "print this help")
	return fs, vals
}

// flagValue is a setting's flag. It keeps the raw text: FromValues parses and
// validates it, so that an error names the variable whichever way it came.
type flagValue struct {
	s *Setting
	v *string
}

func (f flagValue) String() string {
	if f.v == nil {
		return ""
	}
	return f.s.Show(*f.v)
}

func (f flagValue) Set(v string) error { *f.v = v; return nil }

// IsBoolFlag lets a bool setting be given as a bare --flag.
func (f flagValue) IsBoolFlag() bool { return f.s != nil && f.s.Type == Bool }

// helpFlag is -h and --help: it notes the request, Parse prints the help.
// It also carries what FlagSet could not read (a secret's file) for Parse to
// return.
type helpFlag struct {
	asked bool
	print func()
	errs  []error
}

func (h *helpFlag) String() string   { return "" }
func (h *helpFlag) IsBoolFlag() bool { return true }
func (h *helpFlag) Set(string) error { h.asked = true; return nil }

// Parse parses args with a flag set of FlagSet. On -h or --help it prints the
// role's help and returns flag.ErrHelp; a bad flag is one line of error.
func Parse(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	h := &helpFlag{}
	if f := fs.Lookup("help"); f != nil {
		if v, ok := f.Value.(*helpFlag); ok {
			h = v
		}
	}
	if h.asked {
		h.print()
		return flag.ErrHelp
	}
	if err != nil {
		return fmt.Errorf("%w (%s --help lists the flags)", err, fs.Name())
	}
	if len(h.errs) > 0 {
		return errors.Join(h.errs...)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (%s --help lists the flags)", fs.Arg(0), fs.Name())
	}
	return nil
}

// Load parses args (after the subcommand) for role with defaults from getenv,
// and validates the result. The error names the setting at fault. --help
// goes to out.
func Load(role string, args []string, getenv func(string) string, out io.Writer) (*Config, *flag.FlagSet, error) {
	fs, vals := FlagSet(role, getenv, out)
	if err := Parse(fs, args); err != nil {
		return nil, fs, err
	}
	c, err := FromValues(role, vals)
	return c, fs, err
}

// FromValues builds and validates a Config for role from raw values keyed by
// variable name; a missing one takes its default. Only the settings role
// uses are judged. Each error is one line that names the variable and never
// shows a secret.
func FromValues(role string, vals map[string]*string) (*Config, error) {
	r := reader{role: role, vals: vals}
	c := &Config{Role: role}

	c.HTTPAddr = r.addr("FLASHGATE_HTTP_ADDR")
	c.AdminAddr = r.addr("FLASHGATE_ADMIN_ADDR")
	c.PaysimAddr = r.addr("FLASHGATE_PAYSIM_ADDR")
	if c.WorkerAddr = r.str("FLASHGATE_WORKER_ADDR"); c.WorkerAddr != "" {
		r.addr("FLASHGATE_WORKER_ADDR")
	}

	c.RedisAddrs = r.list("FLASHGATE_REDIS_ADDR")
	if len(c.RedisAddrs) == 0 {
		r.bad("FLASHGATE_REDIS_ADDR", "empty")
	}
	for _, a := range c.RedisAddrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			r.bad("FLASHGATE_REDIS_ADDR", "%q is not host:port", a)
		}
	}
	c.RedisPrefix = r.str("FLASHGATE_REDIS_PREFIX")
	if c.RedisPrefix == "" || strings.ContainsAny(c.RedisPrefix, "{} \t\n") {
		r.bad("FLASHGATE_REDIS_PREFIX", "%q must be non-empty without braces or spaces", c.RedisPrefix)
	}
	c.RedisUsername = r.str("FLASHGATE_REDIS_USERNAME")
	c.RedisPassword = r.str("FLASHGATE_REDIS_PASSWORD")
	if c.RedisUsername != "" && c.RedisPassword == "" {
		r.bad("FLASHGATE_REDIS_PASSWORD", "required with FLASHGATE_REDIS_USERNAME")
	}
	c.RedisTLS = r.tls("FLASHGATE_REDIS_TLS", "FLASHGATE_REDIS_TLS_CA")

	c.MySQLDSN = r.str("FLASHGATE_MYSQL_DSN")
	c.MySQLTLS = r.mysqlTLS("FLASHGATE_MYSQL_TLS_CA")
	if c.MySQLTLS == nil && dsnWantsTLS(c.MySQLDSN, MySQLTLSName) {
		// Said before the driver would, with a better hint than "unknown
		// TLS config", and whatever an earlier registration left behind.
		r.bad("FLASHGATE_MYSQL_DSN", "tls=%s needs FLASHGATE_MYSQL_TLS_CA", MySQLTLSName)
	} else if dsn, err := mysql.ParseDSN(c.MySQLDSN); err != nil {
		r.bad("FLASHGATE_MYSQL_DSN", "%s", scrubDSNError(err, c.MySQLDSN))
	} else if dsn.DBName == "" {
		r.bad("FLASHGATE_MYSQL_DSN", "names no database")
	} else if c.MySQLTLS != nil && dsn.TLSConfig != MySQLTLSName {
		r.bad("FLASHGATE_MYSQL_TLS_CA", "set, but FLASHGATE_MYSQL_DSN does not say tls=%s", MySQLTLSName)
	} else if pw := r.str("FLASHGATE_MYSQL_PASSWORD"); pw != "" {
		if dsn.Passwd != "" {
			r.bad("FLASHGATE_MYSQL_PASSWORD", "set, and FLASHGATE_MYSQL_DSN has a password too: keep one")
		}
		dsn.Passwd = pw
		c.MySQLDSN = dsn.FormatDSN()
	}

	c.KafkaBrokers = r.list("FLASHGATE_KAFKA_BROKERS")
	if len(c.KafkaBrokers) == 0 && role != RoleDev {
		r.bad("FLASHGATE_KAFKA_BROKERS", "required outside dev")
	}
	c.KafkaTopic = r.str("FLASHGATE_KAFKA_TOPIC")
	if c.KafkaTopic == "" {
		r.bad("FLASHGATE_KAFKA_TOPIC", "empty")
	}
	c.KafkaPartitions = r.int("FLASHGATE_KAFKA_PARTITIONS")
	c.KafkaSASL = r.str("FLASHGATE_KAFKA_SASL")
	c.KafkaUsername = r.str("FLASHGATE_KAFKA_USERNAME")
	c.KafkaPassword = r.str("FLASHGATE_KAFKA_PASSWORD")
	switch c.KafkaSASL {
	case "":
		if c.KafkaUsername != "" || c.KafkaPassword != "" {
			r.bad("FLASHGATE_KAFKA_SASL", "empty, but a Kafka username or password is set: name the mechanism (plain, scram-sha-256 or scram-sha-512)")
		}
	case "plain", "scram-sha-256", "scram-sha-512":
		if c.KafkaUsername == "" {
			r.bad("FLASHGATE_KAFKA_USERNAME", "required with FLASHGATE_KAFKA_SASL")
		}
		if c.KafkaPassword == "" {
			r.bad("FLASHGATE_KAFKA_PASSWORD", "required with FLASHGATE_KAFKA_SASL")
		}
	default:
		r.bad("FLASHGATE_KAFKA_SASL", "%q is not plain, scram-sha-256 or scram-sha-512", c.KafkaSASL)
	}
	c.KafkaTLS = r.tls("FLASHGATE_KAFKA_TLS", "FLASHGATE_KAFKA_TLS_CA")
	if c.KafkaTLS != nil && role == RoleDev && len(c.KafkaBrokers) == 0 {
		r.bad("FLASHGATE_KAFKA_TLS", "needs FLASHGATE_KAFKA_BROKERS: dev's embedded broker speaks plaintext")
	}

	c.AuthSecret = r.str("FLASHGATE_AUTH_SECRET")
	c.AdminToken = r.str("FLASHGATE_ADMIN_TOKEN")
	if role == RoleDev {
		if c.AuthSecret == "" {
			c.AuthSecret = DevAuthSecret
		}
		if c.AdminToken == "" {
			c.AdminToken = DevAdminToken
		}
	} else {
		// Secrets are never echoed: only their length is judged.
		if len(c.AuthSecret) < 32 {
			r.bad("FLASHGATE_AUTH_SECRET", "required, at least 32 bytes (only dev has a default)")
		} else if c.AuthSecret == DevAuthSecret {
			r.bad("FLASHGATE_AUTH_SECRET", "is dev's public default; set a secret of your own")
		}
		if len(c.AdminToken) < 16 {
			r.bad("FLASHGATE_ADMIN_TOKEN", "required, at least 16 bytes (only dev has a default)")
		} else if c.AdminToken == DevAdminToken {
			r.bad("FLASHGATE_ADMIN_TOKEN", "is dev's public default; set a token of your own")
		}
	}

	if err := c.LogLevel.UnmarshalText([]byte(r.str("FLASHGATE_LOG_LEVEL"))); err != nil {
		r.bad("FLASHGATE_LOG_LEVEL", "%q is not debug, info, warn or error", r.str("FLASHGATE_LOG_LEVEL"))
	}
	switch c.LogFormat = r.str("FLASHGATE_LOG_FORMAT"); c.LogFormat {
	case LogText, LogJSON:
	default:
		r.bad("FLASHGATE_LOG_FORMAT", "%q is not text or json", c.LogFormat)
	}
	c.AccessLog = r.bool("FLASHGATE_ACCESS_LOG")
	c.LogRepeatEvery = r.duration("FLASHGATE_LOG_REPEAT_EVERY")

	c.OrderTTL = r.duration("FLASHGATE_ORDER_TTL")
	c.PublicURL = strings.TrimRight(r.str("FLASHGATE_PUBLIC_URL"), "/")
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.HTTPAddr
	} else if !isHTTPURL(c.PublicURL) {
		r.bad("FLASHGATE_PUBLIC_URL", "%q is not an http(s) URL", c.PublicURL)
	}
	c.AlipayGateway = r.str("FLASHGATE_ALIPAY_GATEWAY")
	c.AlipayAppID = r.str("FLASHGATE_ALIPAY_APP_ID")
	c.AlipayPrivateKey = r.str("FLASHGATE_ALIPAY_PRIVATE_KEY")
	c.AlipayPublicKey = r.str("FLASHGATE_ALIPAY_PUBLIC_KEY")
	if c.AlipayGateway != "" {
		if !isHTTPURL(c.AlipayGateway) {
			r.bad("FLASHGATE_ALIPAY_GATEWAY", "%q is not an http(s) URL", c.AlipayGateway)
		}
		for _, env := range []string{"FLASHGATE_ALIPAY_APP_ID", "FLASHGATE_ALIPAY_PRIVATE_KEY", "FLASHGATE_ALIPAY_PUBLIC_KEY"} {
			if r.str(env) == "" {
				r.bad(env, "required with FLASHGATE_ALIPAY_GATEWAY")
			}
		}
	}

	c.UserRate = r.float("FLASHGATE_USER_RATE")
	c.IPRate = r.float("FLASHGATE_IP_RATE")
	c.TrustedProxies = r.list("FLASHGATE_TRUSTED_PROXIES")
	if _, err := edge.NewIPResolver(c.TrustedProxies); err != nil {
		r.bad("FLASHGATE_TRUSTED_PROXIES", "%v", err)
	}
	c.MaxInflight = r.int("FLASHGATE_MAX_INFLIGHT")
	c.MaxConnsPerIP = r.int("FLASHGATE_MAX_CONNS_PER_IP")
	c.AutobanAfter = r.int("FLASHGATE_AUTOBAN_AFTER")
	c.AutobanWindow = r.duration("FLASHGATE_AUTOBAN_WINDOW")
	c.AutobanFor = r.duration("FLASHGATE_AUTOBAN_FOR")

	c.WorkerBatch = r.int("FLASHGATE_WORKER_BATCH")
	c.WorkerLinger = r.duration("FLASHGATE_WORKER_LINGER")
	c.WorkerWriteRate = r.int("FLASHGATE_WORKER_WRITE_RATE")
	c.WorkerConsumers = r.int("FLASHGATE_WORKER_CONSUMERS")
	c.RelayAfter = r.duration("FLASHGATE_RELAY_AFTER")
	c.ArchiveAfter = r.duration("FLASHGATE_ARCHIVE_AFTER")
	c.RepairGrace = r.duration("FLASHGATE_REPAIR_GRACE")
	if c.Ack = r.str("FLASHGATE_ACK"); c.Ack != AckRedis && c.Ack != AckKafka {
		r.bad("FLASHGATE_ACK", "%q is not redis or kafka", c.Ack)
	}
	c.TokenMaxTTL = r.duration("FLASHGATE_TOKEN_MAX_TTL")
	c.WSPerUser = r.int("FLASHGATE_WS_PER_USER")
	c.WSMax = r.int("FLASHGATE_WS_MAX")
	c.PublicIPRate = r.float("FLASHGATE_PUBLIC_IP_RATE")
	return c, errors.Join(r.errs...)
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// reader reads typed values out of raw ones, collecting one error a setting
// for the settings its role uses.
type reader struct {
	role string
	vals map[string]*string
	errs []error
	seen map[string]bool
}

// raw returns the trimmed raw value of env, or its default.
func (r *reader) raw(env string) string {
	if p := r.vals[env]; p != nil {
		return strings.TrimSpace(*p)
	}
	return lookup(env).Default
}

// bad records an error about env when the role uses it, once per setting.
func (r *reader) bad(env, format string, args ...any) {
	if !lookup(env).UsedBy(r.role) || r.seen[env] {
		return
	}
	if r.seen == nil {
		r.seen = map[string]bool{}
	}
	r.seen[env] = true
	r.errs = append(r.errs, fmt.Errorf("%s: %s", env, fmt.Sprintf(format, args...)))
}

// typed parses env by its row of the table.
func (r *reader) typed(env string) any {
	s := lookup(env)
	v, err := s.parse(r.raw(env))
	if err != nil {
		r.bad(env, "%v", err)
	}
	return v
}

func (r *reader) str(env string) string             { return r.raw(env) }
func (r *reader) int(env string) int                { return r.typed(env).(int) }
func (r *reader) float(env string) float64          { return r.typed(env).(float64) }
func (r *reader) duration(env string) time.Duration { return r.typed(env).(time.Duration) }
func (r *reader) bool(env string) bool              { return r.typed(env).(bool) }

func (r *reader) addr(env string) string {
	v := r.str(env)
	if _, _, err := net.SplitHostPort(v); err != nil {
		r.bad(env, "%q is not host:port", v)
	}
	return v
}

func (r *reader) list(env string) []string {
	var out []string
	for _, s := range strings.Split(r.str(env), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// DevAlipay reports whether dev should run its built-in Alipay sandbox.
func (c *Config) DevAlipay() bool { return c.Role == RoleDev && c.AlipayGateway == "" }
