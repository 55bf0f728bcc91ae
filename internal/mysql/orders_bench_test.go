package mysql_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashgate/flashgate"
	"github.com/flashgate/flashgate/internal/mysql"
	"github.com/flashgate/flashgate/internal/procstat"
	"github.com/flashgate/flashgate/internal/testenv"
)

// The worker's shape under a sale of ~20k orders/s (worker.Config
// defaults): two consumers, each writing what one 20 ms linger gathers.
const benchWriters = 2

// benchPhase is how many batches each variant writes before the other's
// turn: short phases spread a busy machine's swings over both alike.
const benchPhase = 8

// BenchmarkWriteReservations writes reservations of one item the way the
// worker does (benchWriters concurrent writers, batches of the
// sub-benchmark's size, time-ordered order ids from flashgate.OrderIDs,
// buyers scattered over the user ids) into a fresh database on a mariadbd
// of the benchmark's own, and reports that server's CPU per row written
// (/proc/<pid>/stat, user + system): issue 12's "MariaDB CPU per persisted
// order" without the rest of the stack and without the shared server's
// other users. An op is one batch; run it with a fixed count, so that
// every run writes as many rows into a table of the same size:
//
//	go test -run '^$' -bench WriteReservations -benchtime 800x ./internal/mysql
//
// mariadb-µs/row is the CPU while the batches were written; mariadb-µs/row+flush
// adds the writing out of the dirty pages afterwards (the server does it
// sooner or later; narrower rows and fewer indexes mean fewer pages).
//
// CPU time per row on a busy machine swings by ±15 % from one run to the
// next, more than most changes move it. To compare two ways, the
// benchmark writes a second database B side by side with the first, in
// alternating phases of benchPhase batches on the same server, and
// reports both (B's metrics end in "-B"). B is the schema as migrated
// with the statements of $BENCH_B_SQL applied (';'-separated), and with
// $BENCH_B_INSERT=1 inserts with INSERT instead of LOAD DATA. For
// example, the schema and write path before migration 005:
//
//	BENCH_B_INSERT=1 BENCH_B_SQL="$(cat internal/mysql/testdata/before_005.sql)" \
//	  go test -run '^$' -bench WriteReservations -benchtime 800x ./internal/mysql
//
// scripts/mariadb-instructions.sh counts the instructions the server runs a
// row instead, which do not swing with the machine. It counts both
// databases as one, so there a schema change goes into $BENCH_A_SQL, which
// is applied to the first database as $BENCH_B_SQL is to B.
func BenchmarkWriteReservations(b *testing.B) {
	addr, pid := benchServer(b)
	for _, size := range []int{250, 1000} {
		b.Run("batch="+strconv.Itoa(size), func(b *testing.B) {
			vs := []*benchVariant{newVariant(b, addr, "", b.N*size, os.Getenv("BENCH_A_SQL"), false)}
			if sql, insert := os.Getenv("BENCH_B_SQL"), os.Getenv("BENCH_B_INSERT") == "1"; sql != "" || insert {
				vs = append(vs, newVariant(b, addr, "-B", b.N*size, sql, insert))
			}
			ctx := context.Background()
			b.ResetTimer()
			for done := 0; done < b.N; done += benchPhase {
				for _, v := range vs {
					before := serverCPU(b, pid)
					counting(b, pid, "on")
					v.write(ctx, b, size, min(benchPhase, b.N-done))
					counting(b, pid, "off")
					v.cpu += serverCPU(b, pid) - before
				}
			}
			b.StopTimer()
			rows := float64(b.N * size)
			for _, v := range vs {
				b.ReportMetric(float64(v.cpu.Microseconds())/rows, "mariadb-µs/row"+v.suffix)
			}
			if len(vs) == 1 {
				before := serverCPU(b, pid)
				flushDirty(b, vs[0].db)
				flush := serverCPU(b, pid) - before
				b.ReportMetric(float64((vs[0].cpu+flush).Microseconds())/rows, "mariadb-µs/row+flush")
			}
		})
	}
}

// benchVariant is one database the benchmark writes into, and the server
// CPU its phases took.
type benchVariant struct {
	suffix string
	db     *mysql.DB
	item   int64
	ids    *flashgate.OrderIDs
	user   atomic.Int64
	cpu    time.Duration
}

// newVariant migrates a fresh database on addr, applies the statements of
// sql to it, and creates an item with stock units.
func newVariant(b *testing.B, addr, suffix string, stock int, sql string, insert bool) *benchVariant {
	b.Helper()
	name := "bench_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	db, item := itemDB(b, "root@tcp("+addr+")/"+name+"?parseTime=true", int64(stock))
	for _, q := range strings.Split(sql, ";") {
		if strings.TrimSpace(q) == "" {
			continue
		}
		if _, err := db.Exec(q); err != nil {
			b.Fatalf("BENCH_B_SQL: %s: %v", q, err)
		}
	}
	if insert {
		mysql.DisableLoadData(db)
	}
	return &benchVariant{suffix: suffix, db: db, item: item, ids: flashgate.NewOrderIDs()}
}

// write writes n batches of size fresh reservations with benchWriters
// concurrent writers.
func (v *benchVariant) write(ctx context.Context, b *testing.B, size, n int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range benchWriters {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				now := time.Now()
				rs := make([]flashgate.Reservation, size)
				for i := range rs {
					rs[i] = flashgate.Reservation{OrderID: string(v.ids.Append(nil, v.item, now)), ItemID: v.item,
						UserID: spread(v.user.Add(1)), Amount: 9900, Shard: i % 8, At: now.Truncate(time.Millisecond)}
				}
				res, err := v.db.WriteReservations(ctx, rs)
				if err != nil || res.Inserted != len(rs) {
					b.Errorf("write: %+v, %v", res, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// spread maps 1, 2, 3, … to distinct user ids scattered over the positive
// int64s (multiplying by an odd constant is a bijection modulo 2^63), as a
// sale's buyers are: sequential ids would only ever append to
// uk_order_live, which no real sale does.
func spread(i int64) int64 {
	return int64(uint64(i) * 0x9E3779B97F4A7C15 & (1<<63 - 1))
}

// benchServer returns the address and process id of the mariadbd that
// BenchmarkWriteReservations writes into: one of its own, or the one at
// $FLASHGATE_BENCH_MARIADB whose process is $FLASHGATE_BENCH_MARIADB_PID
// (scripts/mariadb-instructions.sh runs one under callgrind). The
// benchmark's databases are dropped when it ends.
func benchServer(b *testing.B) (string, int) {
	addr := os.Getenv("FLASHGATE_BENCH_MARIADB")
	if addr == "" {
		return testenv.StartPlainMariaDB(b)
	}
	pid, err := strconv.Atoi(os.Getenv("FLASHGATE_BENCH_MARIADB_PID"))
	if err != nil {
		b.Fatalf("FLASHGATE_BENCH_MARIADB_PID: %v", err)
	}
	return addr, pid
}

// counting turns on or off the counting of instructions of a mariadbd that
// runs under callgrind, when $FLASHGATE_BENCH_MARIADB_COUNT is set
// (scripts/mariadb-instructions.sh): only the batches' writes are counted,
// not a database's setup nor the polls of flushDirty.
func counting(b *testing.B, pid int, onOff string) {
	b.Helper()
	if os.Getenv("FLASHGATE_BENCH_MARIADB_COUNT") == "" {
		return
	}
	if out, err := exec.Command("callgrind_control", "-i", onOff, strconv.Itoa(pid)).CombinedOutput(); err != nil {
		b.Fatalf("callgrind_control -i %s: %v\n%s", onOff, err, out)
	}
}

func serverCPU(b *testing.B, pid int) time.Duration {
	b.Helper()
	d, err := procstat.CPU(pid)
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// flushDirty has InnoDB write out every dirty page now (the benchmark's
// own server: its settings are ours to change) and waits until it has.
func flushDirty(b *testing.B, db *mysql.DB) {
	b.Helper()
	if _, err := db.Exec("SET GLOBAL innodb_max_dirty_pages_pct = 0"); err != nil {
		b.Fatal(err)
	}
	defer db.Exec("SET GLOBAL innodb_max_dirty_pages_pct = DEFAULT")
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		var name string
		var dirty int64
		if err := db.QueryRow("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'").Scan(&name, &dirty); err != nil {
			b.Fatal(err)
		}
		if dirty == 0 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatal(fmt.Errorf("%d pages still dirty after a minute", dirty))
		}
	}
}
