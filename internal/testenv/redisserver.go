package testenv

import (
	"bufio"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// RedisServer is a redis-server of a test's own, on a free loopback port,
// for tests that need a Redis configured differently from the machine's
// (a password, ACL users, TLS). It is stopped when the test ends.
type RedisServer struct {
	Addr string
}

// StartRedisServer starts redis-server with extra config directives (each
// "name value…", as in redis.conf) and waits until it accepts connections.
// With tls set, the port speaks TLS only, with the certificate of tls.
func StartRedisServer(t testing.TB, tlsFiles *TLSFiles, directives ...string) *RedisServer {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is required (scripts/services.sh installs it): %v", err)
	}
	port := freePort(t)
	conf := []string{"port " + strconv.Itoa(port), "bind 127.0.0.1", "save \"\"", "appendonly no", "dir " + t.TempDir()}
	if tlsFiles != nil {
		conf = []string{"port 0", "tls-port " + strconv.Itoa(port), "bind 127.0.0.1", "save \"\"", "appendonly no", "dir " + t.TempDir(),
			"tls-cert-file " + tlsFiles.Cert, "tls-key-file " + tlsFiles.Key, "tls-ca-cert-file " + tlsFiles.CA, "tls-auth-clients no"}
	}
	conf = append(conf, directives...)
	cmd := exec.Command(path, "-")
	cmd.Stdin = strings.NewReader(strings.Join(conf, "\n") + "\n")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	// The log tells when the server is ready, or why it stopped.
	ready, ended := make(chan struct{}), make(chan string, 1)
	go func() {
		var log []string
		s := bufio.NewScanner(out)
		for s.Scan() {
			log = append(log, s.Text())
			if strings.Contains(s.Text(), "Ready to accept connections") {
				close(ready)
				for s.Scan() {
				}
				return
			}
		}
		ended <- strings.Join(log, "\n")
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	select {
	case <-ready:
	case log := <-ended:
		t.Fatalf("redis-server stopped at start:\n%s", log)
	case <-time.After(10 * time.Second):
		t.Fatal("redis-server did not start in 10s")
	}
	return &RedisServer{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
