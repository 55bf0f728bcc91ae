package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashgate/flashgate/internal/app"
	"github.com/flashgate/flashgate/internal/auth"
	"github.com/flashgate/flashgate/internal/config"
	"github.com/flashgate/flashgate/internal/kafka"
	"github.com/flashgate/flashgate/internal/testenv"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func runCmd(t *testing.T, args []string, vars map[string]string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code := run(ctx, args, env(vars), &out, &errb)
	return code, out.String(), errb.String()
}

func TestBadConfigurationNamesTheSetting(t *testing.T) {
	strong := map[string]string{
		"FLASHGATE_KAFKA_BROKERS": "127.0.0.1:1",
		"FLASHGATE_AUTH_SECRET":   strings.Repeat("s", 32),
		"FLASHGATE_ADMIN_TOKEN":   strings.Repeat("a", 16),
	}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range strong {
			m[a] = b
		}
		m[k] = v
		return m
	}
	cases := []struct {
		role    string
		vars    map[string]string
		setting string
	}{
		{"gateway", with("FLASHGATE_KAFKA_BROKERS", ""), "FLASHGATE_KAFKA_BROKERS"},
		{"gateway", with("FLASHGATE_AUTH_SECRET", "short"), "FLASHGATE_AUTH_SECRET"},
		{"admin", with("FLASHGATE_ADMIN_TOKEN", ""), "FLASHGATE_ADMIN_TOKEN"},
		{"admin", with("FLASHGATE_ADMIN_TOKEN", "short"), "FLASHGATE_ADMIN_TOKEN"},
		{"worker", with("FLASHGATE_WORKER_BATCH", "many"), "FLASHGATE_WORKER_BATCH"},
		{"gateway", with("FLASHGATE_AUTOBAN_WINDOW", "10"), "FLASHGATE_AUTOBAN_WINDOW"},
		{"gateway", with("FLASHGATE_KAFKA_TLS", "maybe"), "FLASHGATE_KAFKA_TLS"},
		{"gateway", with("FLASHGATE_LOG_FORMAT", "xml"), "FLASHGATE_LOG_FORMAT"},
		{"gateway", with("FLASHGATE_HTTP_ADDR", "nonsense"), "FLASHGATE_HTTP_ADDR"},
		{"gateway", with("FLASHGATE_USER_RATE", "-1"), "FLASHGATE_USER_RATE"},
		{"gateway", with("FLASHGATE_LOG_LEVEL", "loud"), "FLASHGATE_LOG_LEVEL"},
		{"worker", with("FLASHGATE_ORDER_TTL", "soon"), "FLASHGATE_ORDER_TTL"},
		{"admin", with("FLASHGATE_MYSQL_DSN", "::::"), "FLASHGATE_MYSQL_DSN"},
		{"dev", with("FLASHGATE_REDIS_PREFIX", "a{b}"), "FLASHGATE_REDIS_PREFIX"},
		{"dev", with("FLASHGATE_PUBLIC_URL", "ftp://x"), "FLASHGATE_PUBLIC_URL"},
	}
	for _, c := range cases {
		code, _, stderr := runCmd(t, []string{c.role}, c.vars)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != 1 || len(lines) != 1 || !strings.Contains(lines[0], c.setting) {
			t.Errorf("%s with bad %s: exit %d, stderr %q", c.role, c.setting, code, stderr)
		}
		if strings.Contains(stderr, strong["FLASHGATE_AUTH_SECRET"]) {
			t.Errorf("a secret was echoed: %q", stderr)
		}
	}
	// Flags mean the same as variables, and win over them.
	code, _, stderr := runCmd(t, []string{"gateway", "--http-addr", "bad"}, strong)
	if code != 1 || !strings.Contains(stderr, "FLASHGATE_HTTP_ADDR") {
		t.Errorf("--http-addr bad: %d %q", code, stderr)
	}
}

func TestHelp(t *testing.T) {
	for _, cmd := range []string{"dev", "gateway", "worker", "admin", "migrate", "token", "bench", "broker"} {
		code, out, stderr := runCmd(t, []string{cmd, "--help"}, nil)
		if code != 0 || len(out+stderr) == 0 {
			t.Errorf("%s --help: exit %d", cmd, code)
		}
	}
	for _, cmd := range []string{"gateway", "token", "broker"} {
		for _, h := range []string{"-h", "--help", "-help"} {
			code, out, stderr := runCmd(t, []string{cmd, h}, nil)
			if code != 0 || !strings.Contains(out, "Usage: flashgate "+cmd) || stderr != "" {
				t.Errorf("%s %s: exit %d, stdout %d bytes, stderr %q", cmd, h, code, len(out), stderr)
			}
		}
		// A flag the command does not have is one line, not the help.
		code, out, stderr := runCmd(t, []string{cmd, "--no-such-flag"}, nil)
		if code == 0 || out != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "no-such-flag") {
			t.Errorf("%s --no-such-flag: exit %d, stdout %q, stderr %q", cmd, code, out, stderr)
		}
	}
	// A setting the role does not use is no flag of it: the gateway has
	// no admin token.
	if code, _, stderr := runCmd(t, []string{"gateway", "--admin-token", "x"}, nil); code == 0 || !strings.Contains(stderr, "admin-token") {
		t.Errorf("gateway --admin-token: exit %d, %q", code, stderr)
	}
	if code, out, _ := runCmd(t, []string{"--help"}, nil); code != 0 || !strings.Contains(out, "Commands:") {
		t.Errorf("--help: %d %q", code, out)
	}
	if code, _, _ := runCmd(t, []string{"frobnicate"}, nil); code != 2 {
		t.Errorf("unknown command: %d", code)
	}
}

func TestToken(t *testing.T) {
	code, out, _ := runCmd(t, []string{"token", "--user", "42", "--ttl", "2h"}, nil)
	if code != 0 {
		t.Fatalf("token: %d", code)
	}
	user, err := auth.NewSigner([]byte(config.DevAuthSecret)).Verify([]byte(strings.TrimSpace(out)), time.Now().Add(time.Hour))
	if err != nil || user != 42 {
		t.Fatalf("minted token: %d %v", user, err)
	}
	secret := strings.Repeat("k", 40)
	_, out, _ = runCmd(t, []string{"token", "--user", "7"}, map[string]string{"FLASHGATE_AUTH_SECRET": secret})
	if user, err := auth.NewSigner([]byte(secret)).Verify([]byte(strings.TrimSpace(out)), time.Now()); err != nil || user != 7 {
		t.Fatalf("token with a configured secret: %d %v", user, err)
	}
	for _, bad := range [][]string{{"token"}, {"token", "--user", "0"}, {"token", "--user", "x"}, {"token", "--user", "1", "--ttl", "-1h"}} {
		if code, _, _ := runCmd(t, bad, nil); code == 0 {
			t.Errorf("%v: exit 0", bad)
		}
	}
}

func TestMigrateIsIdempotent(t *testing.T) {
	dsn := testenv.Database(t)
	for i := 0; i < 2; i++ {
		code, out, stderr := runCmd(t, []string{"migrate"}, map[string]string{"FLASHGATE_MYSQL_DSN": dsn})
		if code != 0 || !strings.Contains(out, "up to date") {
			t.Fatalf("migrate run %d: %d %q %q", i, code, out, stderr)
		}
	}
}

// A dependency that cannot be reached at start stops the process with one
// line, not a panic.
func TestUnreachableDependency(t *testing.T) {
	vars := map[string]string{
		"FLASHGATE_KAFKA_BROKERS": "127.0.0.1:1",
		"FLASHGATE_AUTH_SECRET":   strings.Repeat("s", 32),
		"FLASHGATE_ADMIN_TOKEN":   strings.Repeat("a", 16),
		"FLASHGATE_HTTP_ADDR":     "127.0.0.1:0",
		"FLASHGATE_MYSQL_DSN":     "root@tcp(127.0.0.1:1)/x?timeout=1s",
	}
	code, _, stderr := runCmd(t, []string{"gateway"}, vars)
	if code != 1 || !strings.Contains(stderr, "mysql") || strings.Contains(stderr, "panic") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

// A worker with FLASHGATE_WORKER_ADDR serves its metrics.
func TestWorkerServesMetrics(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := testenv.Config(t)
	b, err := kafka.StartBroker(cfg.KafkaTopic, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	vars := map[string]string{
		"FLASHGATE_KAFKA_BROKERS": strings.Join(b.Addrs(), ","),
		"FLASHGATE_AUTH_SECRET":   strings.Repeat("s", 32),
		"FLASHGATE_ADMIN_TOKEN":   strings.Repeat("a", 16),
		"FLASHGATE_MYSQL_DSN":     cfg.MySQLDSN,
		"FLASHGATE_REDIS_PREFIX":  cfg.RedisPrefix,
		"FLASHGATE_WORKER_ADDR":   "127.0.0.1:0",
	}
	if code, _, stderr := runCmd(t, []string{"migrate"}, vars); code != 0 {
		t.Fatalf("migrate: %s", stderr)
	}
	c, _, err := config.Load(config.RoleWorker, nil, env(vars), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.Start(ctx, c, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		start := time.Now()
		cancel()
		a.Wait(ctx)
		t.Logf("worker shut down in %v", time.Since(start))
	}()
	resp, err := http.Get("http://" + a.WorkerAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "flashgate_kafka_produced_total") {
		t.Fatalf("worker metrics: %d", resp.StatusCode)
	}
}

// `flashgate dev` prints its URLs and tokens, and a cancelled context (what
// SIGTERM and SIGINT become) shuts it down with exit code 0.
func TestDevStartsAndStopsCleanly(t *testing.T) {
	cfg := testenv.Config(t)
	vars := map[string]string{
		"FLASHGATE_HTTP_ADDR":    "127.0.0.1:0",
		"FLASHGATE_ADMIN_ADDR":   "127.0.0.1:0",
		"FLASHGATE_PAYSIM_ADDR":  "127.0.0.1:0",
		"FLASHGATE_MYSQL_DSN":    cfg.MySQLDSN,
		"FLASHGATE_REDIS_PREFIX": cfg.RedisPrefix,
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"dev"}, env(vars), out, io.Discard) }()
	testenv.Eventually(t, 20*time.Second, func() error {
		if !strings.Contains(out.String(), "user 2") {
			return fmt.Errorf("banner not printed yet: %q", out.String())
		}
		return nil
	})
	for _, want := range []string{"gateway      http://127.0.0.1:", "admin        http://127.0.0.1:", "dev-admin-token", "user 1       ey"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, out.String())
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit code %d", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("dev did not stop")
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
