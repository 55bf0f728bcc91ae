// Package testenv gives integration tests their own corner of the machine's
// real services: a unique Redis key prefix, a unique MariaDB database, and a
// flashgate started in-process on free ports with an embedded broker. A
// service that cannot be reached fails the test; it never skips.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
	"github.com/redis/rueidis"

	"github.com/flashgate/flashgate/internal/app"
	"github.com/flashgate/flashgate/internal/config"
)

// RedisAddr and MySQLDSN are the machine's services; FLASHGATE_TEST_REDIS
// and FLASHGATE_TEST_MYSQL override them.
func RedisAddr() string {
	if v := os.Getenv("FLASHGATE_TEST_REDIS"); v != "" {
		return v
	}
	return "127.0.0.1:6379"
}

// MySQLServerDSN is the DSN of the server without a database.
func MySQLServerDSN() string {
	if v := os.Getenv("FLASHGATE_TEST_MYSQL"); v != "" {
		return v
	}
	return "root@tcp(127.0.0.1:3306)/?parseTime=true"
}

// randomName is a fresh name for a prefix or a database. It starts with
// FLASHGATE_TEST_TAG when that is set, so that scripts/leftovers.sh can find
// what one run of the tests left behind.
func randomName() string {
	var b [6]byte
	rand.Read(b[:])
	return os.Getenv("FLASHGATE_TEST_TAG") + hex.EncodeToString(b[:])
}

// Prefix returns a fresh Redis key prefix on the machine's Redis and
// deletes its keys when the test ends.
func Prefix(t testing.TB) string {
	t.Helper()
	return PrefixOn(t, []string{RedisAddr()})
}

// PrefixOn returns a fresh key prefix on the Redis at addrs (a Redis
// Cluster when there are several) and deletes its keys, on every master,
// when the test ends.
func PrefixOn(t testing.TB, addrs []string) string {
	t.Helper()
	prefix := "fgtest" + randomName()
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: addrs, DisableCache: true})
	if err != nil {
		t.Fatalf("redis at %s is required: %v", strings.Join(addrs, ","), err)
	}
	t.Cleanup(func() {
		defer c.Close()
		ctx := context.Background()
		for _, node := range c.Nodes() { // SCAN sees one node's keys
			var cursor uint64
			for {
				e, err := node.Do(ctx, node.B().Scan().Cursor(cursor).Match(prefix+":*").Count(1000).Build()).AsScanEntry()
				if err != nil {
					break
				}
				// One key a DEL, pipelined: the keys of a node span slots.
				dels := make(rueidis.Commands, 0, len(e.Elements))
				for _, k := range e.Elements {
					dels = append(dels, c.B().Del().Key(k).Build())
				}
				c.DoMulti(ctx, dels...)
				if cursor = e.Cursor; cursor == 0 {
					break
				}
			}
		}
	})
	return prefix
}

// SharedPrefix is Prefix for a fuzz target. Its body runs again in every
// fuzz worker process, and the coordinator may kill a worker before its
// cleanups run: so the first process (the coordinator, or a plain test run)
// makes the prefix and deletes its keys at its end, and the workers, which
// it starts with its environment, inherit the prefix and leave the keys to
// it.
func SharedPrefix(t testing.TB) string {
	t.Helper()
	env := "FLASHGATE_TEST_PREFIX_" + strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, t.Name())
	if p := os.Getenv(env); p != "" {
		return p
	}
	p := Prefix(t)
	t.Setenv(env, p)
	return p
}

// Database creates a fresh database and returns its DSN; it is dropped when
// the test ends.
func Database(t testing.TB) string {
	t.Helper()
	cfg, err := mysql.ParseDSN(MySQLServerDSN())
	if err != nil {
		t.Fatal(err)
	}
	name := "fgtest_" + randomName()
	server, err := sqlx.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	if err := server.Ping(); err != nil {
		t.Fatalf("mariadb at %s is required: %v", cfg.Addr, err)
	}
	t.Cleanup(func() {
		server.Exec("DROP DATABASE IF EXISTS `" + name + "`")
		server.Close()
	})
	cfg.DBName = name
	cfg.ParseTime = true
	return cfg.FormatDSN()
}

// Config returns a dev config on free ports, with its own prefix and
// database, for mutate to adjust.
func Config(t testing.TB) *config.Config {
	t.Helper()
	return ConfigOn(t, []string{RedisAddr()})
}

// ClusterConfig is Config on the test binary's Redis Cluster.
func ClusterConfig(t testing.TB) *config.Config {
	t.Helper()
	return ConfigOn(t, RedisCluster(t).Addrs)
}

// ConfigOn is Config with the Redis at addrs.
func ConfigOn(t testing.TB, addrs []string) *config.Config {
	t.Helper()
	vals := map[string]*string{}
	set := func(k, v string) { vals[k] = &v }
	set("FLASHGATE_HTTP_ADDR", "127.0.0.1:0")
	set("FLASHGATE_ADMIN_ADDR", "127.0.0.1:0")
	set("FLASHGATE_PAYSIM_ADDR", "127.0.0.1:0")
	set("FLASHGATE_REDIS_ADDR", strings.Join(addrs, ","))
	set("FLASHGATE_REDIS_PREFIX", PrefixOn(t, addrs))
	set("FLASHGATE_MYSQL_DSN", Database(t))
	set("FLASHGATE_USER_RATE", "0")
	set("FLASHGATE_IP_RATE", "0")
	set("FLASHGATE_PUBLIC_IP_RATE", "0")
	set("FLASHGATE_RELAY_AFTER", "1s")
	cfg, err := config.FromValues(config.RoleDev, vals)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Logger returns a logger that writes to the test log when -v is given and
// on failure.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tbWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tbWriter struct{ t testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Start runs flashgate with cfg in-process until the test ends.
func Start(t testing.TB, cfg *config.Config) *app.App {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.Start(ctx, cfg, Logger(t))
	if err != nil {
		cancel()
		t.Fatalf("start flashgate: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Wait(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("flashgate shut down with: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("flashgate did not shut down in 30s")
		}
	})
	return a
}

// Eventually polls cond every 20ms until it returns nil or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not true after %v: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
