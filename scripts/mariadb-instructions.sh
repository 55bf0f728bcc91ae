#!/usr/bin/env bash
# `scripts/mariadb-instructions.sh [BATCHES]`: the instructions MariaDB runs
# to store an order, counted by valgrind's callgrind: a mariadbd of its own
# (fresh data directory, the settings of the benchmarks' own servers) runs
# under callgrind while BenchmarkWriteReservations (internal/mysql) writes
# BATCHES (default 30) batches of 1000 reservations into it, two writers at
# once, as the worker does. Only the writes are counted: the benchmark
# turns counting on and off around them (not the setup of its database,
# nor the writing out of dirty pages at its end, though the server's
# background threads count while the batches are written). A count of
# MariaDB's own code (not the kernel's), steadier than CPU time, which
# swings by ±20 % from one minute to the next on a busy machine: the way to
# compare two versions of the write path (run it in a `git worktree` of
# each), of the schema (BENCH_A_SQL: statements applied after the
# migrations, see the benchmark) or of the server's settings (MARIADB_ARGS,
# added to mariadbd's).
# Needs valgrind and Debian's mariadb-server; takes a minute or two.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
BATCHES=${1:-30}
# With 1, the benchmark's first run of one batch would be its only one.
[ "$BATCHES" -ge 2 ] || { echo "mariadb-instructions.sh: BATCHES must be 2 or more" >&2; exit 2; }
for bin in valgrind callgrind_control mariadb-install-db mariadbd mariadb; do
  command -v "$bin" >/dev/null || { echo "mariadb-instructions.sh: $bin is missing" >&2; exit 1; }
done
PORT=$((17600 + RANDOM % 300))
TMP=$(mktemp -d)
VG=
cleanup() {
  [ -z "$VG" ] || { kill "$VG" 2>/dev/null; wait "$VG" 2>/dev/null; } || true
  rm -rf "$TMP"
}
trap cleanup EXIT
go test -c -o "$TMP/mysql.test" ./internal/mysql
mariadb-install-db --no-defaults --datadir="$TMP/data" --auth-root-authentication-method=normal \
  --skip-test-db --user="$(id -un)" >"$TMP/install.log" 2>&1
# Native AIO is a system call valgrind does not know, and the buffer pool's
# default reservation of address space is more than valgrind can map.
# shellcheck disable=SC2086
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$TMP/callgrind.%p" mariadbd --no-defaults \
  --datadir="$TMP/data" --user="$(id -un)" --port="$PORT" --bind-address=127.0.0.1 \
  --socket="$TMP/sock" --skip-log-bin --character-set-server=utf8mb4 \
  --collation-server=utf8mb4_general_ci --skip-name-resolve \
  --innodb-use-native-aio=0 --innodb-buffer-pool-size-max=128M ${MARIADB_ARGS:-} \
  >"$TMP/mariadbd.log" 2>&1 &
VG=$!
for _ in $(seq 1 1200); do
  mariadb -h127.0.0.1 -P"$PORT" -uroot -e 'SELECT 1' >/dev/null 2>&1 && break
  kill -0 "$VG" 2>/dev/null || { grep -v '^==' "$TMP/mariadbd.log" | tail -5 >&2; exit 1; }
  sleep 0.1
done
FLASHGATE_BENCH_MARIADB=127.0.0.1:$PORT FLASHGATE_BENCH_MARIADB_PID=$VG FLASHGATE_BENCH_MARIADB_COUNT=1 \
  "$TMP/mysql.test" -test.run '^$' -test.bench 'WriteReservations/batch=1000$' -test.benchtime "${BATCHES}x" \
  >"$TMP/bench.log" 2>&1 || { cat "$TMP/bench.log" >&2; exit 1; }
callgrind_control -d "$VG" >/dev/null 2>&1
# The benchmark runs one batch first, then BATCHES.
awk -v n="$BATCHES" '$1 == "totals:" {
  printf "MariaDB ran %.0f instructions a row (%d rows)\n", $2 / ((n + 1) * 1000), (n + 1) * 1000; exit }' \
  "$(ls -t "$TMP"/callgrind.* | head -1)"
