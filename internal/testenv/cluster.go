package testenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Cluster is a Redis Cluster of three masters (no replicas) on loopback,
// made of redis-server processes in cluster mode on free ports, with their
// files in a temporary directory. One is started per test binary, on first
// use, and shared by its tests: each test keeps to its own key prefix and
// database as usual. Main stops it when the tests are done.
type Cluster struct {
	// Addrs are the masters, host:port, in the order they were created.
	Addrs []string

	dir  string
	stop chan struct{} // closed by Stop: the owner goroutine kills the servers
	done chan struct{} // closed once the servers have exited
}

// clusterMasters is the number of masters of the test cluster.
const clusterMasters = 3

var shared struct {
	once sync.Once
	c    *Cluster
	err  error
}

// RedisCluster returns the test binary's Redis Cluster, starting it on the
// first call. A machine without redis-server or redis-cli fails the test:
// scripts/services.sh installs both.
func RedisCluster(t testing.TB) *Cluster {
	t.Helper()
	shared.once.Do(func() { shared.c, shared.err = startCluster() })
	if shared.err != nil {
		t.Fatalf("redis cluster: %v", shared.err)
	}
	return shared.c
}

// Main runs the tests of a package and then stops the Redis Cluster if a
// test started one. Call it from TestMain: os.Exit(testenv.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if shared.c != nil {
		shared.c.Stop()
	}
	return code
}

// startCluster starts the servers, joins them with redis-cli --cluster
// create and waits until every node says cluster_state:ok. A port taken
// between choosing and binding it (another test binary, another helper) is
// retried on fresh ports.
func startCluster() (*Cluster, error) {
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("%s is required (scripts/services.sh installs it): %w", bin, err)
		}
	}
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var c *Cluster
		if c, err = tryCluster(); err == nil {
			return c, nil
		}
	}
	return nil, err
}

func tryCluster() (*Cluster, error) {
	dir, err := os.MkdirTemp("", "flashgate-cluster-")
	if err != nil {
		return nil, err
	}
	ports, err := freeClusterPorts(clusterMasters)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c := &Cluster{dir: dir, stop: make(chan struct{}), done: make(chan struct{})}
	for _, p := range ports {
		c.Addrs = append(c.Addrs, net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	}
	started := make(chan error, 1)
	go c.own(ports, started)
	if err := <-started; err != nil {
		<-c.done
		os.RemoveAll(dir)
		return nil, err
	}
	if err := c.create(); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// own starts the servers and holds them until Stop. It runs on a goroutine
// locked to its OS thread, because the servers are started with a parent
// death signal, which Linux ties to the thread that forked them: should the
// test binary die without calling Stop (a panic, -timeout), the kernel
// kills the servers with it.
func (c *Cluster) own(ports []int, started chan<- error) {
	runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
	defer close(c.done)
	var procs []*exec.Cmd
	kill := func() {
		for _, p := range procs {
			p.Process.Signal(syscall.SIGTERM)
		}
		for _, p := range procs {
			waitOrKill(p, 5*time.Second)
		}
	}
	for _, port := range ports {
		p := strconv.Itoa(port)
		cmd := exec.Command("redis-server",
			"--port", p, "--bind", "127.0.0.1", "--protected-mode", "no",
			"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(c.dir, "nodes-"+p+".conf"),
			"--cluster-node-timeout", "5000",
			"--dir", c.dir, "--dbfilename", "dump-"+p+".rdb", "--save", "", "--appendonly", "no",
			"--logfile", filepath.Join(c.dir, "redis-"+p+".log"))
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			kill()
			started <- fmt.Errorf("start redis-server on %s: %w", p, err)
			return
		}
		procs = append(procs, cmd)
	}
	for _, a := range c.Addrs {
		if err := waitPing(a, 10*time.Second); err != nil {
			kill()
			started <- fmt.Errorf("%w (log: %s)", err, c.logTail(a))
			return
		}
	}
	started <- nil
	<-c.stop
	kill()
}

func waitOrKill(p *exec.Cmd, d time.Duration) {
	exited := make(chan struct{})
	go func() { p.Wait(); close(exited) }()
	select {
	case <-exited:
	case <-time.After(d):
		p.Process.Kill()
		<-exited
	}
}

// create joins the masters and waits until every node serves all slots.
func (c *Cluster) create() error {
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("redis-cli --cluster create: %v: %s", err, out)
	}
	return c.WaitOK(30 * time.Second)
}

// WaitOK waits until every node reports cluster_state:ok and knows every
// other node.
func (c *Cluster) WaitOK(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var bad error
		for _, a := range c.Addrs {
			info, err := c.CLI(a, "cluster", "info")
			switch {
			case err != nil:
				bad = err
			case !strings.Contains(info, "cluster_state:ok"):
				bad = fmt.Errorf("%s: cluster_state not ok", a)
			case !strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(len(c.Addrs))):
				bad = fmt.Errorf("%s: does not know every node yet", a)
			}
		}
		if bad == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster not ok after %v: %w", timeout, bad)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// CLI runs redis-cli against one node and returns its output.
func (c *Cluster) CLI(addr string, args ...string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	out, err := exec.Command("redis-cli", append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("redis-cli %s %v: %w: %s", addr, args, err, out)
	}
	return string(out), nil
}

// NodeID returns the cluster node id of the master at addr.
func (c *Cluster) NodeID(addr string) (string, error) {
	out, err := c.CLI(addr, "cluster", "myid")
	return strings.TrimSpace(out), err
}

// Reshard moves n slots from the master at from to the master at to with
// `redis-cli --cluster reshard`, live, keys included, and waits until the
// cluster is ok again.
func (c *Cluster) Reshard(ctx context.Context, from, to string, n int) error {
	fromID, err := c.NodeID(from)
	if err != nil {
		return err
	}
	toID, err := c.NodeID(to)
	if err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, "redis-cli", "--cluster", "reshard", from,
		"--cluster-from", fromID, "--cluster-to", toID, "--cluster-slots", strconv.Itoa(n),
		"--cluster-yes").CombinedOutput()
	if err != nil {
		return fmt.Errorf("redis-cli --cluster reshard: %v: %s", err, tail(string(out), 2000))
	}
	return c.WaitOK(30 * time.Second)
}

// Stop kills the servers and removes their files.
func (c *Cluster) Stop() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	<-c.done
	os.RemoveAll(c.dir)
}

func (c *Cluster) logTail(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	b, _ := os.ReadFile(filepath.Join(c.dir, "redis-"+port+".log"))
	return tail(string(b), 500)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// freeClusterPorts picks n ports below the kernel's ephemeral range whose
// cluster bus ports (port + 10000) are free as well.
func freeClusterPorts(n int) ([]int, error) {
	var ports []int
	for tries := 0; len(ports) < n && tries < 200; tries++ {
		p := 20000 + rand.IntN(2000)
		if free(p) && free(p+10000) && !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	if len(ports) < n {
		return nil, errors.New("no free ports for a redis cluster")
	}
	return ports, nil
}

func free(port int) bool {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// waitPing waits until the server at addr answers PING.
func waitPing(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.SetDeadline(time.Now().Add(time.Second))
			fmt.Fprint(conn, "PING\r\n")
			line, rerr := bufio.NewReader(conn).ReadString('\n')
			conn.Close()
			if rerr == nil && strings.HasPrefix(line, "+PONG") {
				return nil
			}
			err = fmt.Errorf("answered %q %v", line, rerr)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server at %s did not answer PING in %v: %w", addr, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// master is one master of the cluster as CLUSTER NODES lists it.
type master struct {
	addr, id string
	ranges   [][2]int // slots served, inclusive ranges
}

// masters lists the masters and their slots as the node at Addrs[0] sees
// them.
func (c *Cluster) masters() ([]master, error) {
	out, err := c.CLI(c.Addrs[0], "cluster", "nodes")
	if err != nil {
		return nil, err
	}
	var ms []master
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || !strings.Contains(f[2], "master") {
			continue
		}
		m := master{id: f[0]}
		m.addr, _, _ = strings.Cut(f[1], "@")
		for _, r := range f[8:] {
			if strings.HasPrefix(r, "[") { // a slot in migration, not a range
				continue
			}
			lo, hi, isRange := strings.Cut(r, "-")
			if !isRange {
				hi = lo
			}
			l, err1 := strconv.Atoi(lo)
			h, err2 := strconv.Atoi(hi)
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("cluster nodes: slots %q", r)
			}
			m.ranges = append(m.ranges, [2]int{l, h})
		}
		ms = append(ms, m)
	}
	return ms, nil
}

// Owner returns the address and node id of the master that serves slot.
func (c *Cluster) Owner(slot int) (addr, id string, err error) {
	ms, err := c.masters()
	if err != nil {
		return "", "", err
	}
	for _, m := range ms {
		for _, r := range m.ranges {
			if r[0] <= slot && slot <= r[1] {
				return m.addr, m.id, nil
			}
		}
	}
	return "", "", fmt.Errorf("no master serves slot %d", slot)
}

// Slots returns the slots that the master at addr serves, in order.
func (c *Cluster) Slots(addr string) ([]int, error) {
	ms, err := c.masters()
	if err != nil {
		return nil, err
	}
	var slots []int
	for _, m := range ms {
		if m.addr != addr {
			continue
		}
		for _, r := range m.ranges {
			for s := r[0]; s <= r[1]; s++ {
				slots = append(slots, s)
			}
		}
	}
	slices.Sort(slots)
	return slots, nil
}

// BeginMigration marks slot as migrating from the master at from to the
// master at to, as the first step of a reshard does: from then on clients
// are sent between the two with ASK, or told TRYAGAIN.
func (c *Cluster) BeginMigration(slot int, from, to string) error {
	fromID, err := c.NodeID(from)
	if err != nil {
		return err
	}
	toID, err := c.NodeID(to)
	if err != nil {
		return err
	}
	s := strconv.Itoa(slot)
	if _, err := c.CLI(to, "cluster", "setslot", s, "importing", fromID); err != nil {
		return err
	}
	_, err = c.CLI(from, "cluster", "setslot", s, "migrating", toID)
	return err
}

// MoveKeys migrates every key of slot from one master to the other (the
// slot must be migrating), as a reshard does between its two steps.
func (c *Cluster) MoveKeys(slot int, from, to string) error {
	host, port, err := net.SplitHostPort(to)
	if err != nil {
		return err
	}
	for {
		out, err := c.CLI(from, "cluster", "getkeysinslot", strconv.Itoa(slot), "100")
		if err != nil {
			return err
		}
		keys := strings.Fields(out)
		if len(keys) == 0 {
			return nil
		}
		args := append([]string{"migrate", host, port, "", "0", "5000", "keys"}, keys...)
		if out, err := c.CLI(from, args...); err != nil || !strings.Contains(out, "OK") {
			return fmt.Errorf("migrate %v: %v %s", keys, err, out)
		}
	}
}

// EndMigration gives slot to the master at to on every node, the last step
// of a reshard: clients are sent there with MOVED from then on.
func (c *Cluster) EndMigration(slot int, to string) error {
	toID, err := c.NodeID(to)
	if err != nil {
		return err
	}
	// The new owner first, so that no node points to a master that does
	// not know yet that it owns the slot.
	nodes := append([]string{to}, slices.DeleteFunc(slices.Clone(c.Addrs), func(a string) bool { return a == to })...)
	for _, a := range nodes {
		if _, err := c.CLI(a, "cluster", "setslot", strconv.Itoa(slot), "node", toID); err != nil {
			return err
		}
	}
	return nil
}
