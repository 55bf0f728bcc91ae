// Package mysql is flashgate's MySQL (MariaDB) store: the embedded schema and
// its migrations, activities and items for the admin API, and the order rows
// written by the workers.
package mysql

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"

	"github.com/flashgate/flashgate/internal/rawnet"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is a connection pool to flashgate's database.
type DB struct {
	*sqlx.DB
	// noLocalInfile is set once the server refused LOAD DATA LOCAL
	// INFILE: orders are inserted with INSERT from then on (insertOrders).
	noLocalInfile atomic.Bool
}

// Open connects to dsn without touching the schema.
func Open(ctx context.Context, dsn string) (*DB, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse mysql dsn: %w", err)
	}
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	withTimeouts(cfg)
	// One round trip per statement instead of prepare, execute, close:
	// the worker's batch inserts are the busiest statements of the system.
	cfg.InterpolateParams = true
	// Times go into the SQL text with at most microseconds, the most a
	// MariaDB DATETIME holds: with Go's nanoseconds ('… 01:14:57.697026165')
	// the server does not read the literal as a DATETIME and cannot bound an
	// index range with it, so the expiry sweep's "created_at < cutoff"
	// scanned every unpaid order of the sale on every tick.
	if err := cfg.Apply(mysql.TimeTruncate(time.Microsecond)); err != nil {
		return nil, fmt.Errorf("parse mysql dsn: %w", err)
	}
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["time_zone"] = "'+00:00'"
	// Connections whose reads and writes leave the runtime's monitor thread
	// asleep (internal/rawnet); the driver puts TLS over them when asked.
	cfg.DialFunc = rawnet.DialContext
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("open mysql: %w", err)
	}
	db := sqlx.NewDb(sql.OpenDB(conn), "mysql")
	db.SetMaxOpenConns(64)
	db.SetMaxIdleConns(64)
	db.SetConnMaxLifetime(30 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to mysql %s: %w", cfg.Addr, err)
	}
	return &DB{DB: db}, nil
}

// Default driver timeouts, for a DSN that sets none: without them a MySQL
// that stops answering holds a statement (and the worker's batch, which
// runs without cancellation so that it finishes while shutting down)
// forever. The read timeout is far above the slowest statement flashgate
// runs (a batch of 100,000 rows).
const (
	DefaultDialTimeout  = 5 * time.Second
	DefaultReadTimeout  = 30 * time.Second
	DefaultWriteTimeout = 30 * time.Second
)

// withTimeouts sets the driver's timeout, readTimeout and writeTimeout to
// the defaults where the DSN leaves them unset.
func withTimeouts(cfg *mysql.Config) {
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultDialTimeout
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
}

// Migrate creates the database named in dsn if missing and applies every
// embedded migration not applied yet. It is idempotent and safe to run from
// several processes at once (a named lock serialises them).
func Migrate(ctx context.Context, dsn string) error {
	_, err := MigrateCreated(ctx, dsn)
	return err
}

// MigrateCreated is Migrate that also reports whether it created the
// database.
func MigrateCreated(ctx context.Context, dsn string) (created bool, err error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return false, fmt.Errorf("parse mysql dsn: %w", err)
	}
	name := cfg.DBName
	if name == "" || strings.ContainsAny(name, "`") {
		return false, fmt.Errorf("mysql dsn: bad database name %q", name)
	}
	server := cfg.Clone()
	server.DBName = ""
	root, err := sqlx.Open("mysql", server.FormatDSN())
	if err != nil {
		return false, fmt.Errorf("open mysql: %w", err)
	}
	defer root.Close()
	res, err := root.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS `"+name+"` CHARACTER SET utf8mb4")
	if err != nil {
		return false, fmt.Errorf("create database %s: %w", name, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 1 {
		created = true
	}
	db, err := Open(ctx, dsn)
	if err != nil {
		return false, err
	}
	defer db.Close()
	conn, err := db.Connx(ctx)
	if err != nil {
		return false, fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	var got int
	if err := conn.GetContext(ctx, &got, "SELECT GET_LOCK(CONCAT(DATABASE(), '.migrate'), 60)"); err != nil || got != 1 {
		return false, fmt.Errorf("migrate: take lock: %v", orLock(err))
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT RELEASE_LOCK(CONCAT(DATABASE(), '.migrate'))")

	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version VARCHAR(100) NOT NULL PRIMARY KEY,
		applied_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
	) ENGINE=InnoDB`); err != nil {
		return false, fmt.Errorf("migrate: %w", err)
	}
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return false, err
	}
	sort.Strings(files)
	for _, f := range files {
		version := strings.TrimSuffix(strings.TrimPrefix(f, "migrations/"), ".sql")
		var n int
		if err := conn.GetContext(ctx, &n, "SELECT COUNT(*) FROM schema_migrations WHERE version = ?", version); err != nil {
			return false, fmt.Errorf("migrate %s: %w", version, err)
		}
		if n > 0 {
			continue
		}
		src, _ := migrations.ReadFile(f)
		for _, stmt := range splitStatements(string(src)) {
			if _, err := conn.ExecContext(ctx, stmt); err != nil {
				return false, fmt.Errorf("migrate %s: %w", version, err)
			}
		}
		if _, err := conn.ExecContext(ctx, "INSERT INTO schema_migrations (version) VALUES (?)", version); err != nil {
			return false, fmt.Errorf("migrate %s: %w", version, err)
		}
	}
	return created, nil
}

func orLock(err error) any {
	if err == nil {
		return "timed out"
	}
	return err
}

// splitStatements splits a migration on semicolons that end a line, after
// dropping comment lines. Migrations keep to that form.
func splitStatements(src string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(src, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(t, ";") {
			out = append(out, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}
