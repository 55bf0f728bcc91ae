#!/usr/bin/env bash
# `scripts/redis-instructions.sh [ORDERS]`: the instructions Redis runs for
# an order on the whole buy path, counted by valgrind's callgrind: a
# redis-server of its own runs under callgrind while
# BenchmarkBuySettleRedisCPU (internal/redis) buys and settles ORDERS
# orders (20000) on it, 128 buyers at once over 8 shards, with the relay's
# passes. A count of Redis's own code (not the kernel's), the same for the
# same code however busy the machine is, where CPU time swings by ±20 %
# from one minute to the next: the way to compare two versions (run it in a
# `git worktree` of each). The count includes the benchmark's setup (an
# item, its shards), a few hundred instructions an order at 20000.
# Needs valgrind, redis-server and redis-cli.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
ORDERS=${1:-20000}
for bin in valgrind callgrind_control redis-server redis-cli; do
  command -v "$bin" >/dev/null || { echo "redis-instructions.sh: $bin is missing" >&2; exit 1; }
done
PORT=$((17600 + RANDOM % 300))
TMP=$(mktemp -d)
VG=
cleanup() {
  redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
  [ -z "$VG" ] || wait "$VG" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
go test -c -o "$TMP/redis.test" ./internal/redis
valgrind --tool=callgrind --callgrind-out-file="$TMP/callgrind.%p" redis-server --port "$PORT" \
  --bind 127.0.0.1 --save "" --appendonly no --logfile /dev/null >/dev/null 2>"$TMP/valgrind.log" &
VG=$!
for _ in $(seq 1 400); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
# The fence arms its fast path only once the clock is past the server's
# LASTSAVE, its start here (lua/fence.lua): before that, every call reads
# INFO, which a Redis that has run for a second never does again.
sleep 1.2
callgrind_control -z "$VG" >/dev/null 2>&1
FLASHGATE_TEST_REDIS=127.0.0.1:$PORT "$TMP/redis.test" -test.run '^$' -test.bench BuySettleRedisCPU \
  -test.benchtime "${ORDERS}x" | grep '^Benchmark'
callgrind_control -d "$VG" >/dev/null 2>&1
out=$(ls -t "$TMP"/callgrind.* | head -1)
awk -v n="$ORDERS" '$1 == "summary:" || $1 == "totals:" {
  printf "Redis ran %.0f instructions an order (%d orders)\n", $2 / n, n; exit }' "$out"
