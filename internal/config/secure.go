package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// Log formats of FLASHGATE_LOG_FORMAT.
const (
	LogText = "text"
	LogJSON = "json"
)

// MySQLTLSName is the name under which FLASHGATE_MYSQL_TLS_CA is registered
// with the MySQL driver: a DSN opts in with tls=flashgate.
const MySQLTLSName = "flashgate"

// tls reads a pair of settings "connect with TLS" and "CA file" into a
// client TLS config: nil when TLS is off. A CA file without TLS on is a
// mistake worth a line, not a silent plaintext connection.
func (r *reader) tls(onEnv, caEnv string) *tls.Config {
	on := r.bool(onEnv)
	ca := r.str(caEnv)
	if !on {
		if ca != "" {
			r.bad(caEnv, "set, but %s is not true", onEnv)
		}
		return nil
	}
	cfg, err := ClientTLS(ca)
	if err != nil {
		r.bad(caEnv, "%v", err)
	}
	return cfg
}

// mysqlTLS reads the MySQL CA file and registers it with the driver as
// tls=flashgate. The driver keeps TLS configs in a registry of its own, keyed
// by the name a DSN gives, so registering is the only way to hand it one;
// it is done here, while the settings are read, so that every role that
// parses the DSN (migrate included) finds it.
func (r *reader) mysqlTLS(caEnv string) *tls.Config {
	ca := r.str(caEnv)
	if ca == "" || !lookup(caEnv).UsedBy(r.role) {
		return nil
	}
	cfg, err := ClientTLS(ca)
	if err != nil {
		r.bad(caEnv, "%v", err)
		return nil
	}
	if err := mysql.RegisterTLSConfig(MySQLTLSName, cfg); err != nil {
		r.bad(caEnv, "register with the MySQL driver: %v", err)
		return nil
	}
	return cfg
}

// ClientTLS returns a client TLS config trusting the CAs of the PEM file
// caFile, or the system's CAs when caFile is empty.
func ClientTLS(caFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// RedactDSN returns a go-sql-driver DSN with its password replaced by
// "xxxxx", whether or not the rest of it parses.
func RedactDSN(dsn string) string {
	if i, j, ok := dsnPassword(dsn); ok {
		return dsn[:i] + "xxxxx" + dsn[j:]
	}
	return dsn
}

// dsnPassword locates the password of user:password@… as the driver reads
// it: the credentials end at the last '@' before the last '/', the user at
// the first ':'.
func dsnPassword(dsn string) (start, end int, ok bool) {
	slash := strings.LastIndex(dsn, "/")
	if slash < 0 {
		slash = len(dsn)
	}
	at := strings.LastIndex(dsn[:slash], "@")
	if at < 0 {
		return 0, 0, false
	}
	colon := strings.Index(dsn[:at], ":")
	if colon < 0 || colon+1 == at {
		return 0, 0, false
	}
	return colon + 1, at, true
}

// scrubDSNError returns the driver's error about dsn without the DSN's
// password in it, should the driver ever quote it.
func scrubDSNError(err error, dsn string) string {
	msg := err.Error()
	if i, j, ok := dsnPassword(dsn); ok {
		msg = strings.ReplaceAll(msg, dsn[i:j], "xxxxx")
	}
	return msg
}

// dsnWantsTLS reports whether a DSN's parameters say tls=name.
func dsnWantsTLS(dsn, name string) bool {
	i := strings.LastIndex(dsn, "?")
	if i < 0 {
		return false
	}
	q, err := url.ParseQuery(dsn[i+1:])
	return err == nil && q.Get("tls") == name
}
