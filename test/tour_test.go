package test

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/flashgate/flashgate/internal/testenv"
)

// shBlocks returns the ```sh blocks of the markdown file at path, from the
// "## " section named section on (to the end of that section), or of the
// whole file when section is empty.
func shBlocks(t *testing.T, path, section string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	in, inBlock := section == "", false
	for _, line := range strings.Split(string(raw), "\n") {
		switch {
		case inBlock && strings.HasPrefix(line, "```"):
			inBlock = false
		case inBlock:
			out.WriteString(line + "\n")
		case section != "" && strings.HasPrefix(line, "## "):
			in = line == "## "+section
		case in && line == "```sh":
			inBlock = true
		}
	}
	if out.Len() == 0 {
		t.Fatalf("%s: no sh blocks in %q", path, section)
	}
	return out.String()
}

// devProcess is a `flashgate dev` built from the tree and started as a
// process of its own, as a user runs it.
type devProcess struct {
	dir               string // holds bin/flashgate
	gw, admin, paysim string // http://host:port
	database          string
}

// buildBinary builds flashgate from the tree into dir/bin/flashgate, as
// `make build` does, and returns dir.
func buildBinary(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	build := exec.Command(goBin, "build", "-o", filepath.Join(dir, "bin", "flashgate"), "./cmd/flashgate")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

// startDev builds the binary and starts `flashgate dev` on free ports with
// a prefix and database of the test's own, waiting for its banner.
func startDev(t *testing.T) *devProcess {
	t.Helper()
	d := &devProcess{dir: buildBinary(t)}
	dsn := testenv.Database(t)
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	d.database = cfg.DBName
	cmd := exec.Command(filepath.Join(d.dir, "bin", "flashgate"), "dev")
	cmd.Env = append(os.Environ(),
		"FLASHGATE_HTTP_ADDR=127.0.0.1:0", "FLASHGATE_ADMIN_ADDR=127.0.0.1:0", "FLASHGATE_PAYSIM_ADDR=127.0.0.1:0",
		"FLASHGATE_REDIS_ADDR="+testenv.RedisAddr(), "FLASHGATE_REDIS_PREFIX="+testenv.Prefix(t),
		"FLASHGATE_MYSQL_DSN="+dsn, "FLASHGATE_KAFKA_BROKERS=", "FLASHGATE_LOG_LEVEL=warn")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &testLog{t: t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// Registered after testenv's cleanups, so it runs before them: the
	// process is gone before its prefix and database are.
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("flashgate dev exited with %v after SIGTERM", err)
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Errorf("flashgate dev did not exit within 30s of SIGTERM")
		}
	})

	banner := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			banner <- sc.Text()
		}
		close(banner)
		io.Copy(io.Discard, stdout)
	}()
	url := regexp.MustCompile(`^  (gateway|admin|alipay) +(http://[^ /]+)`)
	deadline := time.After(60 * time.Second)
	for d.gw == "" || d.admin == "" || d.paysim == "" {
		select {
		case line, ok := <-banner:
			if !ok {
				t.Fatalf("flashgate dev ended before its banner was complete")
			}
			if m := url.FindStringSubmatch(line); m != nil {
				switch m[1] {
				case "gateway":
					d.gw = m[2]
				case "admin":
					d.admin = m[2]
				case "alipay":
					d.paysim = m[2]
				}
			}
		case <-deadline:
			t.Fatalf("no banner from flashgate dev within 60s")
		}
	}
	return d
}

// testLog writes a process's stderr to the test log.
type testLog struct{ t *testing.T }

func (w *testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestToursRunAsWritten runs the README's tour, then the payments tour,
// then the sale operations' tour, in one bash, as a user pasting them would (but stopping at the first failing
// step), against a `flashgate dev` built from the tree; the answers the
// tours promise must come, in order.
func TestToursRunAsWritten(t *testing.T) {
	script := "# README.md\n" + shBlocks(t, "../README.md", "A five-minute tour with curl") +
		"# docs/payments.md\n" + shBlocks(t, "../docs/payments.md", "") +
		"# docs/sale.md\n" + shBlocks(t, "../docs/sale.md", "") +
		"# docs/pages.md\n" + shBlocks(t, "../docs/pages.md", "The captcha")
	d := startDev(t)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bash := exec.CommandContext(ctx, "bash", "-e", "-o", "pipefail", "-s")
	bash.Dir = d.dir
	bash.Stdin = strings.NewReader(script)
	bash.Env = append(os.Environ(), "GW="+d.gw, "ADMIN="+d.admin, "SIM="+d.paysim, "DB="+d.database,
		"MYSQL_PWD=", "ADMIN_TOKEN=")
	out, err := bash.CombinedOutput()
	if err != nil {
		t.Fatalf("the tours stopped: %v\n--- script\n%s\n--- output\n%s", err, script, out)
	}
	// What the tours say the reader sees, in order.
	want := []string{
		`"code":"ok","id":`, // publish
		`"code":"duplicate"`, `"order_id":"`,
		`"user_id":42`,
		`"stats":{"stock":100,"remaining":99`,
		`"paid"`, "TRADE_SUCCESS",
		`"refunded"`, `"refunded":1`,
		`"balance":1000`, `"paid"`, `"balance":500`, `"refunded"`, `"balance":1000`,
		`"code":"conflict"`,
		"method=alipay.trade.wap.pay", "alipay.trade.wap.pay", "method=alipay.trade.wap.pay.return",
		// docs/sale.md
		`"status":"draft"`, `"remaining":60,"stock":60`, `"status":"scheduled"`, `"status":"draft"`,
		`"published_at"`, `"status":"live"`, `"status":"ended"`,
		`"stats":{"stock":60,"remaining":60`, `"drift":0`,
		// docs/pages.md: the path without a captcha, the buy without the
		// path, then the path with a wrong answer
		`"code":"forbidden"`, `"code":"forbidden"`, `"code":"forbidden"`,
	}
	rest := string(out)
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("the tours' output lacks %s where the docs promise it\n--- output\n%s", w, out)
		}
		rest = rest[i+len(w):]
	}
	// The order id the README's tour printed is the one it was told was a
	// duplicate.
	id := regexp.MustCompile(`(?m)^([0-9A-Z]{26}-[0-9]+)$`).FindStringSubmatch(string(out))
	if id == nil || !strings.Contains(string(out), `"order_id":"`+id[1]+`"`) {
		t.Fatalf("the README's tour did not print its order id, or the duplicate named another\n%s", out)
	}
}

// freePort returns a loopback port nobody listens on right now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// TestFleetTourRunsAsWritten runs the local fleet of docs/operations.md (a
// broker, migrate, two gateways, two workers and an admin, started by its
// block), then the README's tour against it as that page says, then stops
// the fleet: every process must exit 0. Only the ports, the database and
// the prefix are the test's own, and `make build` is the test's build.
func TestFleetTourRunsAsWritten(t *testing.T) {
	fleet := shBlocks(t, "../docs/operations.md", "A local fleet")
	tour := shBlocks(t, "../README.md", "A five-minute tour with curl")
	dir := buildBinary(t)
	dsn := testenv.Database(t)
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	ports := map[string]string{}
	for _, p := range []string{"19092", "18080", "18180", "18081"} {
		ports[p] = freePort(t)
	}
	for _, old := range []string{"make build\n", "flashgate_fleet", "FLASHGATE_REDIS_PREFIX=fleet", "19092", "18080", "18180", "18081"} {
		if !strings.Contains(fleet, old) {
			t.Fatalf("docs/operations.md's fleet block no longer has %q; update this test", old)
		}
	}
	fleet = strings.NewReplacer("make build\n", "",
		"flashgate_fleet", cfg.DBName, "FLASHGATE_REDIS_PREFIX=fleet", "FLASHGATE_REDIS_PREFIX="+testenv.Prefix(t),
		"19092", ports["19092"], "18080", ports["18080"], "18180", ports["18180"], "18081", ports["18081"]).Replace(fleet)
	gw, admin := "http://127.0.0.1:"+ports["18080"], "http://127.0.0.1:"+ports["18081"]
	script := "set -e -o pipefail\n" + fleet +
		// A reader waits until the fleet answers; so does the test.
		"for _ in $(seq 1 300); do curl -fs " + gw + "/readyz >/dev/null && curl -fs " + admin + "/healthz >/dev/null && break; sleep 0.1; done\n" +
		"GW=" + gw + " ADMIN=" + admin + " ADMIN_TOKEN=$FLASHGATE_ADMIN_TOKEN\n" + tour +
		// Stop everything; every process must exit 0.
		"for p in $(jobs -p); do kill $p; done\nfor p in $(jobs -p); do wait $p; done\necho fleet stopped\n"

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	bash := exec.CommandContext(ctx, "bash", "-s")
	bash.Dir = dir
	bash.Stdin = strings.NewReader(script)
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FLASHGATE_") {
			env = append(env, kv)
		}
	}
	bash.Env = append(env, "FLASHGATE_LOG_LEVEL=warn")
	out, err := bash.CombinedOutput()
	if err != nil {
		t.Fatalf("the fleet tour stopped: %v\n--- script\n%s\n--- output\n%s", err, script, out)
	}
	for _, want := range []string{`"code":"duplicate"`, `"stats":{"stock":100,"remaining":99`, "fleet stopped"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("the fleet tour's output lacks %s\n%s", want, out)
		}
	}
}
