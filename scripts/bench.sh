#!/usr/bin/env bash
# `make bench`: a short standard load run against a fresh dev stack on this
# machine, printing the summaries. Reports land in reports/.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=./bin/flashgate
# Free ports unless told: dev's banner says which it bound.
HTTP=127.0.0.1:${BENCH_HTTP_PORT:-0}
ADMIN=127.0.0.1:${BENCH_ADMIN_PORT:-0}
# A database and a prefix of this run's own, dropped at the end: two runs on
# one machine (two people, or two checkouts) never touch each other's data.
RUN_ID="$(id -un | tr -c 'a-zA-Z0-9_\n' _)_$$"
DB="flashgate_bench_${RUN_ID}"
DSN="root@tcp(127.0.0.1:3306)/${DB}?parseTime=true"
DURATION=${BENCH_DURATION:-10s}
mkdir -p reports

PREFIX="bench_${RUN_ID}"
export FLASHGATE_HTTP_ADDR=$HTTP FLASHGATE_ADMIN_ADDR=$ADMIN FLASHGATE_PAYSIM_ADDR=127.0.0.1:0 \
  FLASHGATE_MYSQL_DSN=$DSN FLASHGATE_REDIS_PREFIX="$PREFIX" \
  FLASHGATE_USER_RATE=0 FLASHGATE_IP_RATE=0 FLASHGATE_LOG_LEVEL=warn
$BIN dev > reports/dev.log 2>&1 &
DEV=$!
cleanup() {
  kill -TERM $DEV 2>/dev/null
  wait $DEV 2>/dev/null || true
  redis-cli -h 127.0.0.1 --scan --pattern "$PREFIX:*" | xargs -r redis-cli -h 127.0.0.1 del >/dev/null
  mysql -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS \`${DB}\`"
}
trap cleanup EXIT
for _ in $(seq 1 300); do
  HTTP_BOUND=$(sed -n 's#^  gateway *http://##p' reports/dev.log)
  ADMIN_BOUND=$(sed -n 's#^  admin *http://\([^ ]*\).*#\1#p' reports/dev.log)
  if [ -n "$HTTP_BOUND" ] && curl -fs "http://$HTTP_BOUND/readyz" >/dev/null 2>&1; then
    break
  fi
  kill -0 $DEV 2>/dev/null || { cat reports/dev.log >&2; exit 1; }
  sleep 0.1
done
[ -n "$HTTP_BOUND" ] || { echo "bench: flashgate dev did not start; see reports/dev.log" >&2; exit 1; }
HTTP=$HTTP_BOUND ADMIN=$ADMIN_BOUND

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
