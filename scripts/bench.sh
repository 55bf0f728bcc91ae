#!/usr/bin/env bash
# `make bench`: a short standard load run against a fresh dev stack on this
# machine, printing the summaries. Reports land in reports/.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=./bin/flashgate
HTTP=127.0.0.1:${BENCH_HTTP_PORT:-18480}
ADMIN=127.0.0.1:${BENCH_ADMIN_PORT:-18481}
DB=flashgate_bench
DSN="root@tcp(127.0.0.1:3306)/${DB}?parseTime=true"
DURATION=${BENCH_DURATION:-10s}
mkdir -p reports

mysql -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS ${DB}"
PREFIX="bench$$"
export FLASHGATE_HTTP_ADDR=$HTTP FLASHGATE_ADMIN_ADDR=$ADMIN FLASHGATE_PAYSIM_ADDR=127.0.0.1:0 \
  FLASHGATE_MYSQL_DSN=$DSN FLASHGATE_REDIS_PREFIX="$PREFIX" \
  FLASHGATE_USER_RATE=0 FLASHGATE_IP_RATE=0 FLASHGATE_LOG_LEVEL=warn
$BIN dev > reports/dev.log 2>&1 &
DEV=$!
cleanup() {
  kill -TERM $DEV 2>/dev/null
  wait $DEV 2>/dev/null || true
  redis-cli -h 127.0.0.1 --scan --pattern "$PREFIX:*" | xargs -r redis-cli -h 127.0.0.1 del >/dev/null
  mysql -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS ${DB}"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  curl -fs "http://$HTTP/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done

run() {
  local name=$1; shift
  echo
  $BIN bench --target "http://$HTTP" --admin "http://$ADMIN" --mysql-dsn "$DSN" \
    --duration "$DURATION" --report "reports/$name.json" --markdown "reports/$name.md" \
    --html "reports/$name.html" "$@"
}
run soldout --scenario soldout --calibrate --calibrate-duration 5s
run buy --scenario buy --calibrate --calibrate-duration 5s
run fair --scenario fair --stock 20000 --shards 16
echo
echo "reports: $(ls reports/*.html | tr '\n' ' ')"
