package config_test

import (
	"bytes"
	"context"
	"flag"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/flashgate/flashgate/internal/config"
	fgmysql "github.com/flashgate/flashgate/internal/mysql"
	"github.com/flashgate/flashgate/internal/testenv"
)

var roles = []string{config.RoleDev, config.RoleGateway, config.RoleWorker, config.RoleAdmin, config.RoleMigrate, config.RoleToken, config.RoleBroker}

// secretValue is a distinctive value for a secret setting, long and strong
// enough to pass every check on it.
func secretValue(env string) string { return "S3CRET-" + env + "-do-not-print-me" }

// help returns the --help of role with getenv.
func help(t *testing.T, role string, getenv func(string) string) string {
	t.Helper()
	var out bytes.Buffer
	fs, _ := config.FlagSet(role, getenv, &out)
	if err := config.Parse(fs, []string{"--help"}); err != flag.ErrHelp {
		t.Fatalf("%s --help: %v", role, err)
	}
	return out.String()
}

// Every secret setting, for every role that uses it, shows in --help as set
// or not set, never its value; a DSN shows without its password.
func TestHelpNeverShowsASecret(t *testing.T) {
	secrets := 0
	for _, s := range config.Settings() {
		if s.Type != config.Secret {
			continue
		}
		secrets++
		for _, role := range roles {
			if !s.UsedBy(role) {
				continue
			}
			v := secretValue(s.Env)
			out := help(t, role, func(k string) string {
				if k == s.Env {
					return v
				}
				return ""
			})
			if strings.Contains(out, v) || strings.Contains(out, "do-not-print-me") {
				t.Errorf("%s --help shows %s", role, s.Env)
			}
			if !strings.Contains(out, s.Env+": set\n") {
				t.Errorf("%s --help does not say %s is set:\n%s", role, s.Env, out)
			}
			if out := help(t, role, func(string) string { return "" }); !strings.Contains(out, s.Env+": not set\n") {
				t.Errorf("%s --help does not say %s is not set", role, s.Env)
			}
		}
	}
	// The auth secret, the admin token, the Redis, Kafka and Alipay secrets.
	if secrets < 5 {
		t.Fatalf("only %d secret settings in the table", secrets)
	}
	dsn := "flashgate:dsn-password-do-not-print-me@tcp(db.internal:3306)/flashgate?parseTime=true"
	for _, role := range []string{config.RoleGateway, config.RoleMigrate} {
		out := help(t, role, func(k string) string {
			if k == "FLASHGATE_MYSQL_DSN" {
				return dsn
			}
			return ""
		})
		if strings.Contains(out, "do-not-print-me") || !strings.Contains(out, "flashgate:xxxxx@tcp(db.internal:3306)") {
			t.Errorf("%s --help with a DSN password:\n%s", role, out)
		}
	}
}

// --help says what the role does and shows each setting with its type.
func TestHelpShowsTypesAndTheRole(t *testing.T) {
	out := help(t, config.RoleGateway, func(k string) string {
		if k == "FLASHGATE_USER_RATE" {
			return "7"
		}
		return ""
	})
	for _, want := range []string{
		"public HTTP front door",
		"--user-rate float", "FLASHGATE_USER_RATE=7 (default 5)",
		"--max-inflight int", "FLASHGATE_MAX_INFLIGHT (default 4096)",
		"--autoban-window duration", "(default 10s)",
		"--redis-tls bool", "--auth-secret secret", "--http-addr string",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("gateway --help lacks %q:\n%s", want, out)
		}
	}
	// The gateway does not use the admin token, so it neither shows nor
	// asks for it.
	if strings.Contains(out, "ADMIN_TOKEN") {
		t.Errorf("gateway --help lists the admin token")
	}
	for _, role := range roles {
		if out := help(t, role, func(string) string { return "" }); !strings.Contains(out, "Usage: flashgate "+role) || len(strings.Split(out, "\n")) < 10 {
			t.Errorf("%s --help:\n%s", role, out)
		}
	}
}

// No configuration error shows a secret: each secret is set to a
// distinctive value while every other setting is wrong, and the DSN's
// password is kept out of the driver's parse errors.
func TestErrorsNeverShowASecret(t *testing.T) {
	vals := map[string]*string{}
	for _, s := range config.Settings() {
		v := "not valid at all {}"
		if s.Type == config.Secret {
			v = secretValue(s.Env)
		}
		vals[s.Env] = &v
	}
	for _, role := range roles {
		_, err := config.FromValues(role, vals)
		if err == nil {
			t.Fatalf("%s accepted nonsense", role)
		}
		if strings.Contains(err.Error(), "do-not-print-me") {
			t.Errorf("%s: error shows a secret: %v", role, err)
		}
	}
	// Secrets that are wrong in themselves (too short, or set without
	// what they need) are judged without being shown.
	for env, v := range map[string]string{
		"FLASHGATE_AUTH_SECRET":    "short-do-not-print-me",
		"FLASHGATE_ADMIN_TOKEN":    "do-not-print-me",
		"FLASHGATE_KAFKA_PASSWORD": "kafka-do-not-print-me", // without FLASHGATE_KAFKA_SASL
	} {
		_, err := config.FromValues(config.RoleDev, values(map[string]string{env: v}))
		if env != "FLASHGATE_AUTH_SECRET" && env != "FLASHGATE_ADMIN_TOKEN" && err == nil {
			t.Errorf("%s alone accepted", env)
		}
		for _, role := range []string{config.RoleGateway, config.RoleAdmin} {
			if _, err := config.FromValues(role, values(map[string]string{env: v})); err != nil && strings.Contains(err.Error(), "do-not-print-me") {
				t.Errorf("%s, %s: error shows the secret: %v", role, env, err)
			}
		}
	}
	for _, dsn := range []string{
		"root:dsn-do-not-print-me@tcp(127.0.0.1:3306/flashgate",        // unclosed address
		"root:dsn-do-not-print-me@tcp(127.0.0.1:3306)/flashgate?x=%zz", // bad escape
		"root:dsn-do-not-print-me@tcp(127.0.0.1:3306)/",                // no database
		"root:dsn-do-not-print-me@tcp(127.0.0.1:3306)/flashgate?tls=flashgate",
	} {
		_, err := config.FromValues(config.RoleMigrate, values(map[string]string{"FLASHGATE_MYSQL_DSN": dsn}))
		if err == nil || !strings.HasPrefix(err.Error(), "FLASHGATE_MYSQL_DSN: ") || strings.Contains(err.Error(), "do-not-print-me") {
			t.Errorf("DSN %q: %v", dsn, err)
		}
	}
	_, err := config.FromValues(config.RoleGateway, values(map[string]string{
		"FLASHGATE_MYSQL_DSN":      "root:dsn-do-not-print-me@tcp(127.0.0.1:3306)/flashgate",
		"FLASHGATE_MYSQL_PASSWORD": "pw-do-not-print-me",
	}))
	if err == nil || !strings.HasPrefix(err.Error(), "FLASHGATE_MYSQL_PASSWORD: ") || strings.Contains(err.Error(), "do-not-print-me") {
		t.Errorf("two MySQL passwords: %v", err)
	}
	if got := config.RedactDSN("u:p@ss:w@rd@tcp(h:1)/db"); got != "u:xxxxx@tcp(h:1)/db" {
		t.Errorf("RedactDSN: %q", got)
	}
}

// FLASHGATE_MYSQL_TLS_CA registers tls=flashgate with the driver: a
// throwaway MariaDB that refuses plaintext is reached over TLS with the CA,
// and not with another CA.
func TestMySQLTLS(t *testing.T) {
	files := testenv.NewTLSFiles(t)
	addr := testenv.StartMariaDB(t, files)
	dsn := "root@tcp(" + addr + ")/fgtls?parseTime=true&tls=flashgate"

	if _, err := config.FromValues(config.RoleMigrate, values(map[string]string{"FLASHGATE_MYSQL_DSN": "root@tcp(" + addr + ")/fgtls", "FLASHGATE_MYSQL_TLS_CA": files.CA})); err == nil || !strings.Contains(err.Error(), "FLASHGATE_MYSQL_TLS_CA") {
		t.Errorf("a CA with a DSN that does not use it: %v", err)
	}
	if _, err := config.FromValues(config.RoleMigrate, values(map[string]string{"FLASHGATE_MYSQL_TLS_CA": "/nonexistent/ca.pem", "FLASHGATE_MYSQL_DSN": dsn})); err == nil || !strings.Contains(err.Error(), "FLASHGATE_MYSQL_TLS_CA") {
		t.Errorf("a missing CA file: %v", err)
	}

	ctx := context.Background()
	c, err := config.FromValues(config.RoleMigrate, values(map[string]string{"FLASHGATE_MYSQL_DSN": dsn, "FLASHGATE_MYSQL_TLS_CA": files.CA}))
	if err != nil {
		t.Fatal(err)
	}
	if err := fgmysql.Migrate(ctx, c.MySQLDSN); err != nil {
		t.Fatalf("migrate over TLS: %v", err)
	}
	db, err := fgmysql.Open(ctx, c.MySQLDSN)
	if err != nil {
		t.Fatal(err)
	}
	var name, cipher string
	err = db.QueryRowxContext(ctx, "SHOW STATUS LIKE 'Ssl_cipher'").Scan(&name, &cipher)
	db.Close()
	if err != nil || cipher == "" {
		t.Fatalf("connection is not TLS: cipher %q, %v", cipher, err)
	}

	// The server refuses plaintext, and another CA does not trust it.
	if err := fgmysql.Migrate(ctx, "root@tcp("+addr+")/fgtls?timeout=2s"); err == nil {
		t.Error("plaintext connection accepted")
	}
	other := testenv.NewTLSFiles(t)
	if _, err := config.FromValues(config.RoleMigrate, values(map[string]string{"FLASHGATE_MYSQL_DSN": dsn + "&timeout=2s", "FLASHGATE_MYSQL_TLS_CA": other.CA})); err != nil {
		t.Fatal(err)
	}
	if err := fgmysql.Migrate(ctx, dsn+"&timeout=2s"); err == nil {
		t.Error("a server certificate from another CA was trusted")
	}
}

// A secret may come from a file named by FLASHGATE_…_FILE (Docker and
// Kubernetes secrets, systemd credentials); the file's trailing newline is
// not part of it, and it still shows only as set.
func TestSecretsFromFiles(t *testing.T) {
	dir := t.TempDir()
	base := map[string]string{
		"FLASHGATE_KAFKA_BROKERS":  "127.0.0.1:9092",
		"FLASHGATE_KAFKA_SASL":     "plain",
		"FLASHGATE_KAFKA_USERNAME": "u",
	}
	fields := map[string]func(*config.Config) string{
		"FLASHGATE_AUTH_SECRET":        func(c *config.Config) string { return c.AuthSecret },
		"FLASHGATE_ADMIN_TOKEN":        func(c *config.Config) string { return c.AdminToken },
		"FLASHGATE_REDIS_PASSWORD":     func(c *config.Config) string { return c.RedisPassword },
		"FLASHGATE_KAFKA_PASSWORD":     func(c *config.Config) string { return c.KafkaPassword },
		"FLASHGATE_ALIPAY_PRIVATE_KEY": func(c *config.Config) string { return c.AlipayPrivateKey },
		"FLASHGATE_MYSQL_PASSWORD": func(c *config.Config) string {
			dsn, err := mysql.ParseDSN(c.MySQLDSN)
			if err != nil {
				t.Fatal(err)
			}
			return dsn.Passwd
		},
	}
	for _, s := range config.Settings() {
		if s.Type != config.Secret {
			continue
		}
		field := fields[s.Env]
		if field == nil {
			t.Fatalf("no field for %s in this test", s.Env)
		}
		v := secretValue(s.Env)
		path := dir + "/" + s.Env
		if err := os.WriteFile(path, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, role := range []string{config.RoleDev, config.RoleGateway, config.RoleAdmin, config.RoleWorker} {
			if !s.UsedBy(role) {
				continue
			}
			vars := map[string]string{s.Env + "_FILE": path,
				"FLASHGATE_AUTH_SECRET": secretValue("FLASHGATE_AUTH_SECRET"), "FLASHGATE_ADMIN_TOKEN": secretValue("FLASHGATE_ADMIN_TOKEN"),
				"FLASHGATE_KAFKA_PASSWORD": "k"}
			delete(vars, s.Env)
			if s.Env == "FLASHGATE_ALIPAY_PRIVATE_KEY" {
				vars["FLASHGATE_ALIPAY_GATEWAY"], vars["FLASHGATE_ALIPAY_APP_ID"], vars["FLASHGATE_ALIPAY_PUBLIC_KEY"] = "https://alipay.example/gateway.do", "1", "k"
			}
			for k, v := range base {
				vars[k] = v
			}
			getenv := func(k string) string { return vars[k] }
			c, _, err := config.Load(role, nil, getenv, io.Discard)
			if err != nil {
				t.Fatalf("%s with %s_FILE: %v", role, s.Env, err)
			}
			if got := field(c); got != v {
				t.Errorf("%s: %s from its file is %q", role, s.Env, got)
			}
			if out := help(t, role, getenv); strings.Contains(out, v) || !strings.Contains(out, s.Env+": set (from "+s.Env+"_FILE)") {
				t.Errorf("%s --help with %s_FILE:\n%s", role, s.Env, out)
			}
			// Both ways at once is ambiguous; a file that cannot be
			// read is an error naming the variable.
			vars[s.Env] = "another-value-of-enough-length-0123456789"
			if _, _, err := config.Load(role, nil, getenv, io.Discard); err == nil || !strings.Contains(err.Error(), s.Env+"_FILE") {
				t.Errorf("%s with %s and %s_FILE: %v", role, s.Env, s.Env, err)
			}
			delete(vars, s.Env)
			vars[s.Env+"_FILE"] = dir + "/missing"
			if _, _, err := config.Load(role, nil, getenv, io.Discard); err == nil || !strings.Contains(err.Error(), s.Env+"_FILE") {
				t.Errorf("%s with a missing %s_FILE: %v", role, s.Env, err)
			}
		}
	}
}
