#!/usr/bin/env bash
# Compares FLASHGATE_ACK=redis and FLASHGATE_ACK=kafka (docs/performance.md):
# for each round, a fresh dev stack per mode, back to back, then a closed-loop
# buy storm (throughput) and an open-loop one at a fixed rate (latency).
# ROUNDS, DURATION and RATE tune it; reports land in reports/ack-*.json.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=./bin/flashgate
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8s}
RATE=${RATE:-10000}
PORT=${BENCH_PORT:-18580}
HTTP=127.0.0.1:$PORT
ADMIN=127.0.0.1:$((PORT + 1))
DB=flashgate_bench_ack
DSN="root@tcp(127.0.0.1:3306)/${DB}?parseTime=true"
mkdir -p reports
DEV=
cleanup() {
  [ -n "$DEV" ] && { kill -TERM "$DEV" 2>/dev/null; wait "$DEV" 2>/dev/null || true; }
  DEV=
  redis-cli -h 127.0.0.1 --scan --pattern "benchack$$:*" | xargs -r redis-cli -h 127.0.0.1 del >/dev/null
  mysql -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS ${DB}"
}
trap cleanup EXIT
printf '%-6s %-5s %-6s %10s %8s %8s %8s\n' round mode load rps p50_ms p99_ms p999_ms
for round in $(seq 1 "$ROUNDS"); do
  for mode in redis kafka; do
    cleanup
    FLASHGATE_HTTP_ADDR=$HTTP FLASHGATE_ADMIN_ADDR=$ADMIN FLASHGATE_PAYSIM_ADDR=127.0.0.1:0 \
      FLASHGATE_MYSQL_DSN=$DSN FLASHGATE_REDIS_PREFIX="benchack$$" FLASHGATE_ACK=$mode \
      FLASHGATE_USER_RATE=0 FLASHGATE_IP_RATE=0 FLASHGATE_LOG_LEVEL=warn \
      $BIN dev > "reports/ack-dev-$mode.log" 2>&1 &
    DEV=$!
    for _ in $(seq 1 200); do curl -fs "http://$HTTP/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
    for load in closed open; do
      extra=()
      [ "$load" = open ] && extra=(--rate "$RATE" --warmup 1s)
      out=reports/ack-$mode-$load-$round.json
      $BIN bench --target "http://$HTTP" --admin "http://$ADMIN" --mysql-dsn "$DSN" \
        --scenario buy --duration "$DURATION" --report "$out" "${extra[@]}" >/dev/null
      jq -r --arg r "$round" --arg m "$mode" --arg l "$load" \
        '[$r, $m, $l, (.throughput_rps|floor), .latency_ms.p50, .latency_ms.p99, .latency_ms.p999] | @tsv' "$out" |
        awk '{printf "%-6s %-5s %-6s %10s %8.2f %8.2f %8.2f\n", $1, $2, $3, $4, $5, $6, $7}'
    done
  done
done
