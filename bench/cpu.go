package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/redis/rueidis"

	"github.com/flashgate/flashgate/internal/procstat"
)

// CPUCost is the CPU one server spent over the measured run, divided by
// the orders that run persisted. Measured is false, and Reason says why,
// when it could not be read.
type CPUCost struct {
	Server   string  `json:"server"` // "redis" or "mariadb"
	Source   string  `json:"source"` // what was read: "INFO cpu of 127.0.0.1:6379", "/proc/3807/stat"
	Measured bool    `json:"measured"`
	Reason   string  `json:"reason,omitempty"`
	CPUS     float64 `json:"cpu_s,omitempty"`        // CPU seconds between the two readings
	Orders   int64   `json:"orders,omitempty"`       // orders persisted in between
	PerOrder float64 `json:"per_order_us,omitempty"` // CPUS ÷ Orders in microseconds
	Note     string  `json:"note,omitempty"`         // e.g. shared server caveat
	// IdleCPUPerS is what the server burned per second with no load from
	// this run, sampled for --cpu-idle just before it: the stack's fixed
	// passes, and on a shared server the others' work. NetPerOrder is
	// PerOrder less that rate over the measured window.
	IdleCPUPerS *float64 `json:"idle_cpu_s_per_s,omitempty"`
	NetPerOrder *float64 `json:"net_per_order_us,omitempty"`
	idle        float64
	at          time.Time
	before      time.Duration
	read        func(context.Context) (time.Duration, error) // reads the counter again after the drain
	after       time.Duration                                // that reading, by stop
	afterAt     time.Time
	afterErr    error
}

// parseRedisCPU returns used_cpu_sys + used_cpu_user from the text of
// `INFO cpu`.
func parseRedisCPU(info string) (time.Duration, error) {
	var sys, user float64
	var have int
	for line := range strings.Lines(info) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || (k != "used_cpu_sys" && k != "used_cpu_user") {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 {
			return 0, fmt.Errorf("INFO cpu: %s: not a number of seconds: %q", k, v)
		}
		if k == "used_cpu_sys" {
			sys = f
		} else {
			user = f
		}
		have++
	}
	if have != 2 {
		return 0, errors.New("INFO cpu: no used_cpu_sys and used_cpu_user in the reply")
	}
	return time.Duration(math.Round((sys + user) * float64(time.Second))), nil
}

// redisCPUReader returns a reader of the CPU time of the Redis server at
// addr, and closes its client when ctx ends.
func redisCPUReader(ctx context.Context, addr, username, password string) (func(context.Context) (time.Duration, error), func(), error) {
	client, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress: []string{addr}, Username: username, Password: password,
		DisableCache: true, ForceSingleClient: true,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("redis %s: %w", addr, err)
	}
	read := func(ctx context.Context) (time.Duration, error) {
		info, err := client.Do(ctx, client.B().Info().Section("cpu").Build()).ToString()
		if err != nil {
			return 0, fmt.Errorf("redis %s: INFO cpu: %w", addr, err)
		}
		return parseRedisCPU(info)
	}
	return read, client.Close, nil
}

// procCPUReader returns a reader of the CPU time of process pid.
func procCPUReader(pid int) func(context.Context) (time.Duration, error) {
	return func(context.Context) (time.Duration, error) { return procstat.CPU(pid) }
}

// mysqlPID finds the local process serving the DSN: the one listening on
// its TCP port (or unix socket), else the only mariadbd or mysqld running.
// It fails, saying why, when the server is on another host or /proc does
// not tell.
func mysqlPID(dsn string) (int, string, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return 0, "", fmt.Errorf("parse --mysql-dsn: %w", err)
	}
	if cfg.Net != "unix" {
		host, port, err := net.SplitHostPort(cfg.Addr)
		if err != nil {
			return 0, "", fmt.Errorf("--mysql-dsn address %q: %w", cfg.Addr, err)
		}
		if !isLocalHost(host) {
			return 0, "", fmt.Errorf("MySQL at %s is not on this machine: its /proc is out of reach", cfg.Addr)
		}
		if p, err := strconv.Atoi(port); err == nil {
			if pid, err := listenerPID(p); err == nil {
				return pid, "listening on port " + port, nil
			}
		}
	}
	for _, name := range []string{"mariadbd", "mysqld"} {
		pids := pidsByName(name)
		if len(pids) == 1 {
			return pids[0], "the only " + name + " process", nil
		}
	}
	return 0, "", fmt.Errorf("no process found listening on %s nor a single mariadbd/mysqld in /proc", cfg.Addr)
}

// isLocalHost reports whether host names this machine: loopback, or an
// address of one of its interfaces.
func isLocalHost(host string) bool {
	if host == "localhost" || host == "" {
		return true
	}
	ip := net.ParseIP(host)
	if ip == nil {
		addrs, err := net.LookupIP(host)
		if err != nil || len(addrs) == 0 {
			return false
		}
		ip = addrs[0]
	}
	if ip.IsLoopback() || ip.IsUnspecified() {
		return true
	}
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range ifaddrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}

// listenerPID returns the process holding the socket that listens on TCP
// port: the socket's inode from /proc/net/tcp{,6}, then the process whose
// fd links to it. Reading other users' fds needs root or the same user.
func listenerPID(port int) (int, error) {
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, ino := range listeningInodes(b, port) {
			inodes[ino] = true
		}
	}
	if len(inodes) == 0 {
		return 0, fmt.Errorf("nothing listens on port %d", port)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range procs {
		l, err := os.Readlink(fd)
		if err != nil || !strings.HasPrefix(l, "socket:[") {
			continue
		}
		if inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] {
			return strconv.Atoi(strings.Split(fd, "/")[2])
		}
	}
	return 0, fmt.Errorf("no readable process holds the socket listening on port %d", port)
}

// listeningInodes returns the inodes of the sockets in LISTEN state (0A)
// on port, from the text of /proc/net/tcp or tcp6.
func listeningInodes(table []byte, port int) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(table))
	sc.Scan() // header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 10 || f[3] != "0A" {
			continue
		}
		_, hexPort, ok := strings.Cut(f[1], ":")
		if p, err := strconv.ParseUint(hexPort, 16, 16); ok && err == nil && int(p) == port {
			out = append(out, f[9])
		}
	}
	return out
}

// pidsByName returns the processes whose command name is name.
func pidsByName(name string) []int {
	var out []int
	comms, _ := filepath.Glob("/proc/[0-9]*/comm")
	for _, c := range comms {
		b, err := os.ReadFile(c)
		if err != nil || strings.TrimSpace(string(b)) != name {
			continue
		}
		if pid, err := strconv.Atoi(strings.Split(c, "/")[2]); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// cpuMeters are the CPU counters read before the load and after the drain.
type cpuMeters struct {
	costs []*CPUCost
	close []func()
}

// startCPUMeters takes the first reading of Redis (through INFO, wherever
// it runs) and of MariaDB (through /proc, when it runs here). A counter
// that cannot be read is recorded with the reason, never an error: the
// load is worth running without it.
func startCPUMeters(ctx context.Context, cfg *params) *cpuMeters {
	m := &cpuMeters{}
	rc := &CPUCost{Server: "redis", Source: "INFO cpu of " + cfg.RedisAddr,
		Note: "the whole server: other users of this Redis count too"}
	if read, closeFn, err := redisCPUReader(ctx, cfg.RedisAddr, cfg.RedisUsername, cfg.RedisPassword); err != nil {
		rc.Reason = err.Error()
	} else {
		m.close = append(m.close, closeFn)
		rc.read = read
	}
	m.costs = append(m.costs, rc)

	mc := &CPUCost{Server: "mariadb", Note: "the whole server: other users of this MariaDB count too"}
	if pid, how, err := mysqlPID(cfg.MySQLDSN); err != nil {
		mc.Reason = err.Error()
	} else {
		mc.Source = fmt.Sprintf("/proc/%d/stat (utime+stime; %s)", pid, how)
		mc.read = procCPUReader(pid)
	}
	m.costs = append(m.costs, mc)

	m.readAll(ctx)
	// A sold-out run persists no orders: nothing to net the idle rate from.
	if cfg.CPUIdle > 0 && cfg.Scenario != ScenarioSoldOut {
		first := make([]time.Duration, len(m.costs))
		for i, c := range m.costs {
			first[i] = c.before
		}
		began := time.Now()
		select {
		case <-ctx.Done():
		case <-time.After(cfg.CPUIdle):
		}
		m.readAll(ctx)
		w := time.Since(began).Seconds()
		for i, c := range m.costs {
			if c.read != nil && c.before >= first[i] {
				c.idle = (c.before - first[i]).Seconds() / w
				idle := math.Round(c.idle*10000) / 10000
				c.IdleCPUPerS = &idle
			}
		}
	}
	return m
}

// readAll takes a reading of every counter that can be read, dropping the
// ones that fail with the reason.
func (m *cpuMeters) readAll(ctx context.Context) {
	for _, c := range m.costs {
		if c.read == nil {
			continue
		}
		v, err := c.read(ctx)
		if err != nil {
			c.Reason, c.read = err.Error(), nil
			continue
		}
		c.before, c.at = v, time.Now()
	}
}

// stop takes the second reading, once the drain is over: before the
// invariant check reads the run's orders back from MySQL, which is the
// harness's work, not the cost of persisting them. A second call reads
// nothing.
func (m *cpuMeters) stop(ctx context.Context) {
	for _, c := range m.costs {
		if c.read != nil && c.afterAt.IsZero() {
			c.after, c.afterErr = c.read(ctx)
			c.afterAt = time.Now()
		}
	}
}

// finish divides the CPU between the two readings (taking the second now if
// stop did not) by orders, the orders the run persisted.
func (m *cpuMeters) finish(ctx context.Context, orders int64) []CPUCost {
	defer func() {
		for _, f := range m.close {
			f()
		}
	}()
	m.stop(ctx)
	out := make([]CPUCost, 0, len(m.costs))
	for _, c := range m.costs {
		if c.read != nil {
			after, err := c.after, c.afterErr
			switch {
			case err != nil:
				c.Reason = err.Error()
			case after < c.before:
				c.Reason = "the counter went backwards: the server restarted during the run"
			case orders <= 0:
				c.CPUS = round3((after - c.before).Seconds())
				c.Reason = "no orders persisted in this run"
			default:
				c.Measured = true
				c.CPUS = round3((after - c.before).Seconds())
				c.Orders = orders
				c.PerOrder = round1(float64((after - c.before).Nanoseconds()) / 1000 / float64(orders))
				if c.IdleCPUPerS != nil {
					busy := (after - c.before).Seconds() - c.idle*c.afterAt.Sub(c.at).Seconds()
					net := round1(busy * 1e6 / float64(orders))
					c.NetPerOrder = &net
				}
			}
		}
		out = append(out, *c)
	}
	return out
}
