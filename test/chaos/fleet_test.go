package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
	"github.com/redis/rueidis"

	"github.com/flashgate/flashgate/internal/auth"
	"github.com/flashgate/flashgate/internal/testenv"
)

// The secrets of the suite's fleet: the roles other than dev refuse to
// start without secrets of their own.
var (
	authSecret = strings.Repeat("c", 40)
	adminToken = strings.Repeat("d", 24)
)

// buildOnce builds bin/flashgate from this tree once per test binary.
var buildOnce struct {
	sync.Once
	path string
	err  error
}

func flashgateBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "flashgate-chaos-bin")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.path = filepath.Join(dir, "flashgate")
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		cmd := exec.Command(goBin, "build", "-o", buildOnce.path, "./cmd/flashgate")
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			buildOnce.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return buildOnce.path
}

// freePort returns a loopback port nobody listened on a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// proc is one process of the fleet, restartable with the same arguments.
type proc struct {
	name string
	args []string
	env  []string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *proc) start(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(p.args[0], p.args[1:]...)
	p.cmd.Env = append(os.Environ(), p.env...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", p.name, err)
	}
	p.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		cmd.Wait()
		f.Close()
		close(done)
	}(p.cmd, p.done)
}

// signal sends sig to the process (SIGKILL waits for it to be gone).
func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %s: %v", p.name, err)
	}
	if sig == syscall.SIGKILL {
		<-p.done
	}
}

// stop ends the process gracefully, or kills it after 20 s.
func (p *proc) stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGCONT)
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// fleet is the system under test: an own redis-server with AOF, a broker,
// an admin, two gateways and two workers, each its own process, and MySQL
// behind a TCP proxy.
type fleet struct {
	t        *testing.T
	dir      string
	bin      string
	redis    *proc
	redisDir string
	rc       rueidis.Client
	broker   *proc
	admin    *proc
	gateways []*proc
	workers  []*proc
	gwURLs   []string
	adminURL string
	mysql    *testenv.Proxy
	db       *sqlx.DB
	signer   *auth.Signer
	http     *http.Client
}

func startFleet(t *testing.T, ack string) *fleet {
	t.Helper()
	dir := t.TempDir()
	if keep := os.Getenv("FLASHGATE_CHAOS_LOGS"); keep != "" {
		dir = keep
	}
	f := &fleet{t: t, dir: dir, bin: flashgateBinary(t), signer: auth.NewSigner([]byte(authSecret)),
		http: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 128}}}
	t.Cleanup(f.stopAll)

	// Redis: AOF fsynced every second with timestamp annotations, so that a
	// suffix can be cut off at a moment as a host crash would.
	f.redisDir = filepath.Join(f.dir, "redis")
	if err := os.MkdirAll(f.redisDir, 0o755); err != nil {
		t.Fatal(err)
	}
	redisPort := freePort(t)
	f.redis = &proc{name: "redis", log: filepath.Join(f.dir, "redis.log"), args: []string{"redis-server",
		"--port", strconv.Itoa(redisPort), "--bind", "127.0.0.1", "--dir", f.redisDir,
		"--appendonly", "yes", "--appendfsync", "everysec", "--aof-timestamp-enabled", "yes",
		"--save", "", "--maxmemory-policy", "noeviction"}}
	f.redis.start(t)
	redisAddr := fmt.Sprintf("127.0.0.1:%d", redisPort)
	var err error
	f.rc, err = rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{redisAddr}, DisableCache: true,
		Dialer: net.Dialer{Timeout: time.Second}, ConnWriteTimeout: 2 * time.Second})
	for deadline := time.Now().Add(10 * time.Second); err != nil && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		f.rc, err = rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{redisAddr}, DisableCache: true})
	}
	if err != nil {
		t.Fatalf("own redis-server: %v", err)
	}

	dsn := testenv.Database(t)
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	f.mysql = testenv.NewProxy(t, cfg.Addr)
	cfg.Addr = f.mysql.Addr()
	dsn = cfg.FormatDSN()
	if f.db, err = sqlx.Open("mysql", dsn); err != nil {
		t.Fatal(err)
	}

	brokerAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	common := []string{
		"FLASHGATE_REDIS_ADDR=" + redisAddr, "FLASHGATE_REDIS_PREFIX=chaos",
		"FLASHGATE_MYSQL_DSN=" + dsn, "FLASHGATE_KAFKA_BROKERS=" + brokerAddr,
		"FLASHGATE_KAFKA_PARTITIONS=4", "FLASHGATE_AUTH_SECRET=" + authSecret,
		"FLASHGATE_ADMIN_TOKEN=" + adminToken, "FLASHGATE_LOG_LEVEL=warn",
		"FLASHGATE_USER_RATE=0", "FLASHGATE_IP_RATE=0", "FLASHGATE_RELAY_AFTER=1s",
		"FLASHGATE_REPAIR_GRACE=3s", "FLASHGATE_ACK=" + ack,
	}
	f.broker = &proc{name: "broker", log: filepath.Join(f.dir, "broker.log"), env: common,
		args: []string{f.bin, "broker", "--addr", brokerAddr}}
	f.broker.start(t)
	f.waitTCP(brokerAddr)

	mig := exec.Command(f.bin, "migrate")
	mig.Env = append(os.Environ(), common...)
	if out, err := mig.CombinedOutput(); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}

	adminAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	f.adminURL = "http://" + adminAddr
	f.admin = &proc{name: "admin", log: filepath.Join(f.dir, "admin.log"),
		env: append([]string{"FLASHGATE_ADMIN_ADDR=" + adminAddr}, common...), args: []string{f.bin, "admin"}}
	for i := 0; i < 2; i++ {
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		f.gwURLs = append(f.gwURLs, "http://"+addr)
		f.gateways = append(f.gateways, &proc{name: fmt.Sprintf("gateway%d", i), log: filepath.Join(f.dir, fmt.Sprintf("gateway%d.log", i)),
			env: append([]string{"FLASHGATE_HTTP_ADDR=" + addr}, common...), args: []string{f.bin, "gateway"}})
		waddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		f.workers = append(f.workers, &proc{name: fmt.Sprintf("worker%d", i), log: filepath.Join(f.dir, fmt.Sprintf("worker%d.log", i)),
			env: append([]string{"FLASHGATE_WORKER_ADDR=" + waddr}, common...), args: []string{f.bin, "worker"}})
	}
	for _, p := range f.roles() {
		p.start(t)
	}
	for _, p := range f.roles() {
		f.waitReady(p)
	}
	return f
}

func (f *fleet) roles() []*proc {
	return append(append([]*proc{f.admin}, f.gateways...), f.workers...)
}

func (f *fleet) stopAll() {
	for _, p := range f.roles() {
		p.stop()
	}
	if f.broker != nil {
		f.broker.stop()
	}
	if f.rc != nil {
		f.rc.Close()
	}
	if f.redis != nil {
		f.redis.stop()
	}
	if f.db != nil {
		f.db.Close()
	}
	if f.t.Failed() {
		for _, name := range []string{"gateway0", "gateway1", "worker0", "worker1", "admin", "broker", "redis"} {
			b, _ := os.ReadFile(filepath.Join(f.dir, name+".log"))
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			f.t.Logf("--- %s.log (tail)\n%s", name, b)
		}
	}
}

func (f *fleet) waitTCP(addr string) {
	f.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%s not listening: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitReady waits for a role's health endpoint (a gateway's /readyz).
func (f *fleet) waitReady(p *proc) {
	f.t.Helper()
	var url string
	for _, e := range p.env {
		switch {
		case strings.HasPrefix(e, "FLASHGATE_HTTP_ADDR="):
			url = "http://" + strings.TrimPrefix(e, "FLASHGATE_HTTP_ADDR=") + "/readyz"
		case strings.HasPrefix(e, "FLASHGATE_ADMIN_ADDR="):
			url = "http://" + strings.TrimPrefix(e, "FLASHGATE_ADMIN_ADDR=") + "/healthz"
		case strings.HasPrefix(e, "FLASHGATE_WORKER_ADDR="):
			url = "http://" + strings.TrimPrefix(e, "FLASHGATE_WORKER_ADDR=") + "/healthz"
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := f.http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-p.done:
			f.t.Fatalf("%s exited while starting", p.name)
		default:
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%s not ready: %v", p.name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// restartRedis starts the suite's redis-server again on its AOF.
func (f *fleet) restartRedis() {
	f.t.Helper()
	f.redis.start(f.t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := f.rc.Do(context.Background(), f.rc.B().Ping().Build()).Error()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("redis did not come back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// truncateAOF cuts the AOF back to unix second ts, as a host crash that
// lost the writes after it would.
func (f *fleet) truncateAOF(ts int64) {
	f.t.Helper()
	manifest := filepath.Join(f.redisDir, "appendonlydir", "appendonly.aof.manifest")
	out, err := exec.Command("redis-check-aof", "--truncate-to-timestamp", strconv.FormatInt(ts, 10), manifest).CombinedOutput()
	if err != nil {
		f.t.Fatalf("redis-check-aof: %v\n%s", err, out)
	}
}

func (f *fleet) adminDo(method, path string, body any) map[string]any {
	f.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, f.adminURL+path, rd)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	for attempt := 0; ; attempt++ {
		resp, err := f.http.Do(req)
		if err == nil {
			defer resp.Body.Close()
			var m map[string]any
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode >= 300 || json.Unmarshal(raw, &m) != nil {
				f.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
			}
			return m
		}
		if attempt > 50 {
			f.t.Fatalf("%s %s: %v", method, path, err)
		}
		time.Sleep(200 * time.Millisecond)
		if body != nil {
			b, _ := json.Marshal(body)
			req.Body = io.NopCloser(bytes.NewReader(b))
		}
	}
}

// sale publishes an activity with one item on sale now.
func (f *fleet) sale(name string, stock, shards int) int64 {
	f.t.Helper()
	now := time.Now()
	a := f.adminDo("POST", "/admin/v1/activities", map[string]any{"name": name,
		"start_at": now.Add(-time.Second).Format(time.RFC3339Nano), "end_at": now.Add(time.Hour).Format(time.RFC3339Nano)})
	act := int64(a["id"].(float64))
	it := f.adminDo("POST", fmt.Sprintf("/admin/v1/activities/%d/items", act),
		map[string]any{"name": name, "price": "1.00", "stock": stock, "shards": shards})
	f.adminDo("POST", fmt.Sprintf("/admin/v1/activities/%d/publish", act), nil)
	return int64(it["id"].(float64))
}
