package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// StartMariaDB starts a throwaway mariadbd of the test's own on a free
// loopback port, serving TLS with the certificate of tlsFiles and refusing
// plaintext connections, and returns the address. Its data directory is
// removed when the test ends. It costs a few seconds (mariadb-install-db):
// only tests of what the shared server cannot do (TLS) use it.
func StartMariaDB(t testing.TB, tlsFiles TLSFiles) string {
	t.Helper()
	addr, _ := startMariaDB(t, "skip-verify", "--innodb-buffer-pool-size=16M", "--require-secure-transport=ON",
		"--ssl-ca="+tlsFiles.CA, "--ssl-cert="+tlsFiles.Cert, "--ssl-key="+tlsFiles.Key)
	return addr
}

// StartPlainMariaDB starts a throwaway mariadbd of the caller's own, without
// TLS, set up as Debian's mariadb-server is (InnoDB defaults, utf8mb4), and
// returns its address and process id. Benchmarks use it to charge the
// server's CPU (/proc/<pid>/stat) to their own work only: the shared server
// on 127.0.0.1:3306 counts everyone's. Its data directory, on the same disk
// as the shared server's, is removed when the test ends. args are more
// mariadbd options.
func StartPlainMariaDB(t testing.TB, args ...string) (addr string, pid int) {
	t.Helper()
	return startMariaDB(t, "false", append([]string{"--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci",
		"--skip-name-resolve"}, args...)...)
}

// startMariaDB starts mariadbd with args on a free loopback port and waits
// until a connection with TLS setting tls ("false", "skip-verify") answers.
func startMariaDB(t testing.TB, tls string, args ...string) (string, int) {
	t.Helper()
	for _, bin := range []string{"mariadb-install-db", "mariadbd"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is required (Debian's mariadb-server, installed by scripts/services.sh): %v", bin, err)
		}
	}
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	install := exec.Command("mariadb-install-db", "--no-defaults", "--datadir="+data,
		"--auth-root-authentication-method=normal", "--skip-test-db", "--user="+me.Username)
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	port := freePort(t)
	srv := exec.Command("mariadbd", append([]string{"--no-defaults", "--datadir=" + data, "--user=" + me.Username,
		"--port=" + strconv.Itoa(port), "--bind-address=127.0.0.1", "--socket=" + filepath.Join(dir, "sock"),
		"--skip-log-bin"}, args...)...)
	if err := srv.Start(); err != nil {
		t.Fatalf("start mariadbd: %v", err)
	}
	t.Cleanup(func() {
		srv.Process.Kill()
		srv.Wait()
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	// Wait for it; with TLS, with a connection that trusts anything: the
	// test checks verification itself.
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr, cfg.TLSConfig, cfg.Timeout = "root", "tcp", addr, tls, time.Second
	deadline := time.Now().Add(30 * time.Second)
	for {
		db, err := sql.Open("mysql", cfg.FormatDSN())
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err = db.PingContext(ctx)
			cancel()
			db.Close()
		}
		if err == nil {
			return addr, srv.Process.Pid
		}
		if time.Now().After(deadline) {
			t.Fatal(fmt.Errorf("mariadbd on %s did not start: %w", addr, err))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
