package bench

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flashgate/flashgate/internal/testenv"
)

func TestParseRedisCPU(t *testing.T) {
	info := "# CPU\r\nused_cpu_sys:12.345678\r\nused_cpu_user:4.5\r\nused_cpu_sys_children:99.000000\r\nused_cpu_user_children:1.000000\r\nused_cpu_sys_main_thread:12.0\r\n"
	got, err := parseRedisCPU(info)
	if err != nil {
		t.Fatal(err)
	}
	if want := 16845678 * time.Microsecond; got != want {
		t.Errorf("got %v, want %v (children and main-thread lines must not count)", got, want)
	}
	for _, bad := range []string{"# CPU\r\nused_cpu_sys:1.0\r\n", "used_cpu_sys:x\r\nused_cpu_user:1\r\n", ""} {
		if _, err := parseRedisCPU(bad); err == nil {
			t.Errorf("parseRedisCPU(%q): no error", bad)
		}
	}
}

func TestListeningInodes(t *testing.T) {
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000   106        0 27345 1 0000000000000000 100 0 0 10 0
   1: 0100007F:0CEA 0100007F:9C40 01 00000000:00000000 00:00000000 00000000   106        0 99999 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:18EB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 11111 1 0000000000000000 100 0 0 10 0
`
	got := listeningInodes([]byte(table), 3306)
	if len(got) != 1 || got[0] != "27345" {
		t.Errorf("got %v, want the LISTEN socket of port 3306 only: [27345]", got)
	}
}

// TestRedisCPUReaderReal reads the machine's Redis twice: the counter is
// there and does not go backwards.
func TestRedisCPUReaderReal(t *testing.T) {
	ctx := context.Background()
	read, closeFn, err := redisCPUReader(ctx, testenv.RedisAddr(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	a, err := read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a <= 0 || b < a {
		t.Errorf("INFO cpu read %v then %v: want a positive, non-decreasing counter", a, b)
	}
}

// TestMySQLPIDReal finds the machine's MariaDB from the DSN the tests use
// and reads its CPU, and refuses a server on another host.
func TestMySQLPIDReal(t *testing.T) {
	pid, how, err := mysqlPID(testenv.MySQLServerDSN())
	if err != nil {
		t.Fatal(err)
	}
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		t.Fatal(err)
	}
	if name := strings.TrimSpace(string(comm)); name != "mariadbd" && name != "mysqld" {
		t.Errorf("pid %d (%s) is %q, not the MySQL server", pid, how, name)
	}
	if v, err := procCPUReader(pid)(context.Background()); err != nil || v <= 0 {
		t.Errorf("CPU of pid %d: %v, %v", pid, v, err)
	}
	// 192.0.2.0/24 is TEST-NET-1: never an address of this machine.
	if _, _, err := mysqlPID("root@tcp(192.0.2.7:3306)/x"); err == nil || !strings.Contains(err.Error(), "not on this machine") {
		t.Errorf("remote DSN: err %v, want 'not on this machine'", err)
	}
}

// TestCPUMetersFinish divides by the orders and says why it cannot.
func TestCPUMetersFinish(t *testing.T) {
	counter := time.Second
	fake := func(context.Context) (time.Duration, error) { return counter, nil }
	m := &cpuMeters{costs: []*CPUCost{
		{Server: "redis", read: fake, before: time.Second},
		{Server: "mariadb", Reason: "MySQL at db:3306 is not on this machine"},
	}}
	counter = time.Second + 167*time.Millisecond
	got := m.finish(context.Background(), 10000)
	if !got[0].Measured || got[0].PerOrder != 16.7 || got[0].Orders != 10000 {
		t.Errorf("redis: %+v, want 16.7 µs per order over 10000", got[0])
	}
	if got[1].Measured || got[1].Reason == "" {
		t.Errorf("mariadb: %+v, want not measured with its reason", got[1])
	}
	// An idle rate of one CPU-second per second over the last 100 ms takes
	// 100 ms of the 267 ms off: 16.7 µs net (a little less as the test
	// itself takes time).
	idle := 1.0
	m = &cpuMeters{costs: []*CPUCost{{Server: "redis", read: fake, before: time.Second, at: time.Now().Add(-100 * time.Millisecond), idle: idle, IdleCPUPerS: &idle}}}
	counter = time.Second + 267*time.Millisecond
	if got := m.finish(context.Background(), 10000); got[0].PerOrder != 26.7 || got[0].NetPerOrder == nil || *got[0].NetPerOrder > 16.7 || *got[0].NetPerOrder < 15 {
		t.Errorf("net of idle: %+v (net %v)", got[0], got[0].NetPerOrder)
	}
	m = &cpuMeters{costs: []*CPUCost{{Server: "redis", read: fake, before: 2 * time.Second}}}
	if got := m.finish(context.Background(), 5); got[0].Measured || !strings.Contains(got[0].Reason, "backwards") {
		t.Errorf("restarted server: %+v", got[0])
	}
	m = &cpuMeters{costs: []*CPUCost{{Server: "redis", read: fake}}}
	if got := m.finish(context.Background(), 0); got[0].Measured || !strings.Contains(got[0].Reason, "no orders") {
		t.Errorf("no orders: %+v", got[0])
	}
}

// TestCPUMetersStopAfterDrain: the second reading is the one stop took
// (after the drain), not what the counter reads at finish, after the
// invariant check has read the orders back.
func TestCPUMetersStopAfterDrain(t *testing.T) {
	counter := time.Second
	fake := func(context.Context) (time.Duration, error) { return counter, nil }
	m := &cpuMeters{costs: []*CPUCost{{Server: "mariadb", read: fake, before: time.Second}}}
	counter = time.Second + 50*time.Millisecond
	m.stop(context.Background())
	counter = time.Second + 80*time.Millisecond // the check's reads
	m.stop(context.Background())                // a second stop reads nothing
	if got := m.finish(context.Background(), 10000); !got[0].Measured || got[0].PerOrder != 5 {
		t.Errorf("%+v, want 5 µs per order: the reading taken at the first stop", got[0])
	}
}

func TestIsLocalHost(t *testing.T) {
	for _, h := range []string{"127.0.0.1", "::1", "localhost"} {
		if !isLocalHost(h) {
			t.Errorf("%s: not local", h)
		}
	}
	if isLocalHost("192.0.2.7") {
		t.Error("192.0.2.7 (TEST-NET-1) taken for local")
	}
}
