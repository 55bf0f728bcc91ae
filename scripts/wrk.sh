#!/usr/bin/env bash
# `make wrk`: issue 12's figures measured with an outside load generator.
# Runs wrk (2 threads, 128 keep-alive connections, 8 s by default) against a
# bare fasthttp handler (`flashgate bench --serve-bare`, the --calibrate
# handler) and against flashgate in the same run, and prints the ratios:
#   soldout  one token, an item sold out beforehand  (scripts/wrk/soldout.lua)
#   buy      a fresh user per request, all 202       (scripts/wrk/rotate.lua)
#   paced    buys at half the rate of the buy run, sent at that rate by
#            wrk (scripts/wrk/paced.lua): p99 at half rate
# plus, for the buy run, Redis and MariaDB CPU per persisted order, how
# long the storm took to settle, and the budget: the CPU of each process
# (wrk, the dev process, Redis, MariaDB; wrk and the bare handler in the
# bare run) a request, against what the machine's cores give a request at
# the rate measured and at half the bare ceiling (the buys goal), and how
# many transactions the workers wrote the orders in and how many requests
# the embedded Kafka broker took. Installs wrk from Debian when missing.
#
# Starts its own dev stack on free ports with its own database and its own
# redis-server (so that INFO cpu counts this run only, not the other users
# of a shared Redis), unless WRK_TARGET and WRK_ADMIN name a running gateway and admin
# API (then FLASHGATE_MYSQL_DSN, FLASHGATE_AUTH_SECRET, FLASHGATE_ADMIN_TOKEN
# as for `flashgate bench`; the gateway needs FLASHGATE_IP_RATE=0 and
# FLASHGATE_USER_RATE=0). Other settings: WRK_DURATION (8s), WRK_THREADS (2),
# WRK_CONNECTIONS (128), WRK_USERS (tokens for the buy run, 600000),
# WRK_REPEAT (1), WRK_SHARDS (Redis shards of the items created: the
# server's default, 8, when unset), REDIS_ADDR (with WRK_TARGET: the gateway's Redis, for the
# CPU reading; 127.0.0.1:6379). WRK_BENCH=1 also runs `flashgate bench`
# (sold-out and buy with --calibrate, then open loop at half the buy rate)
# in each round, so both generators are measured on the same stack.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin

DURATION=${WRK_DURATION:-8s}
THREADS=${WRK_THREADS:-2}
CONNS=${WRK_CONNECTIONS:-128}
USERS=${WRK_USERS:-600000}
REPEAT=${WRK_REPEAT:-1}
REDIS=${REDIS_ADDR:-127.0.0.1:6379}
BIN=./bin/flashgate
export WRK_THREADS=$THREADS

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v wrk >/dev/null 2>&1; then
  echo "wrk: installing Debian's wrk" >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
go build -o "$BIN" ./cmd/flashgate

TMP=$(mktemp -d)
PIDS=()
DB=
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -z "$DB" ] || mysql -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS ${DB}"
  rm -rf "$TMP"
}
trap cleanup EXIT

waitready() { # url
  for _ in $(seq 1 200); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "wrk.sh: $1 not ready" >&2; return 1
}

port() { echo $((18000 + RANDOM % 1000 + $1 * 1000)); }
if [ -z "${WRK_TARGET:-}" ]; then
  HTTP=127.0.0.1:$(port 0) ADMIN=127.0.0.1:$(port 1)
  DB=flashgate_wrk_$$
  REDIS=127.0.0.1:$(port 3)
  redis-server --bind 127.0.0.1 --port "${REDIS##*:}" --save "" --appendonly no --daemonize no \
    > "$TMP/redis.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 100); do redis-cli -p "${REDIS##*:}" ping >/dev/null 2>&1 && break; sleep 0.05; done
  export FLASHGATE_HTTP_ADDR=$HTTP FLASHGATE_ADMIN_ADDR=$ADMIN FLASHGATE_PAYSIM_ADDR=127.0.0.1:0 \
    FLASHGATE_MYSQL_DSN="root@tcp(127.0.0.1:3306)/${DB}?parseTime=true" FLASHGATE_REDIS_PREFIX=wrk$$ \
    FLASHGATE_REDIS_ADDR=$REDIS FLASHGATE_USER_RATE=0 FLASHGATE_IP_RATE=0 FLASHGATE_LOG_LEVEL=warn
  mysql -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS ${DB}"
  $BIN dev > "$TMP/dev.log" 2>&1 &
  PIDS+=($!)
  DEVPID=$!
  WRK_TARGET=http://$HTTP WRK_ADMIN=http://$ADMIN
  waitready "$WRK_TARGET/readyz"
fi
: "${WRK_ADMIN:?set WRK_ADMIN with WRK_TARGET}"
BARE=127.0.0.1:$(port 2)
$BIN bench --serve-bare "$BARE" > "$TMP/bare.log" 2>&1 &
PIDS+=($!)
BAREPID=$!
waitready "http://$BARE/"

bench() { $BIN bench --target "$WRK_TARGET" --admin "$WRK_ADMIN" "$@"; }
# setup SCENARIO USERS FILE: creates the item, writes the tokens, prints the
# buy path.
setup() { bench --scenario "$1" --users "$2" ${WRK_SHARDS:+--shards "$WRK_SHARDS"} --setup-only --tokens-file "$3" | sed -n 's/^path //p'; }
# run SCRIPT URL TOKENS: wrk's output; wrk's own CPU seconds (user +
# system) go to $TMP/wrk.cpu.
run() {
  local TIMEFORMAT='%U %S'
  { time WRK_TOKENS=$3 wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s "scripts/wrk/$1" "$2" \
      > "$TMP/wrk.out" 2> "$TMP/wrk.err"; } 2> "$TMP/wrk.time"
  tail -1 "$TMP/wrk.time" | awk '{ print $1 + $2 }' > "$TMP/wrk.cpu"
  cat "$TMP/wrk.err" >&2
  cat "$TMP/wrk.out"
}
rps() { sed -n 's/^Requests\/sec: *//p' <<<"$1"; }
reqs() { sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' <<<"$1"; }
non2xx() { sed -n 's/^ *Non-2xx or 3xx responses: *//p' <<<"$1" | grep . || echo 0; }
p99() { sed -n 's/^ *99% *//p' <<<"$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'; }
stats() { # item field
  curl -fs -H "Authorization: Bearer ${FLASHGATE_ADMIN_TOKEN:-dev-admin-token}" "$WRK_ADMIN/admin/v1/items/$1/stats" |
    sed -n "s/.*\"$2\": *\([0-9]*\).*/\1/p"
}
# batches: the worker's transactions so far and the reservations they
# inserted, from the dev process's /metrics (empty with WRK_TARGET, where
# the workers are not ours to read).
batches() {
  [ -n "${DEVPID:-}" ] || return 0
  { curl -fs "$WRK_TARGET/metrics" || true; } | awk '$1 == "flashgate_worker_batch_seconds_count" { b = $2 }
    $1 == "flashgate_worker_reservations_total{result=\"inserted\"}" { n = $2 } END { if (b != "") print b, n }'
}
# kafka_requests: the requests the dev process's embedded broker has
# received so far on each of its connections, as "peer=count" words (data
# segments into its sockets, `ss -tin`; a request is one segment at these
# sizes), empty with WRK_TARGET or without ss. kafka_delta adds up two
# readings' differences connection by connection: a client that closes a
# connection between them takes its count away, which a plain sum read as
# fewer requests, or fewer than none.
kafka_requests() {
  [ -n "${DEVPID:-}" ] && command -v ss >/dev/null 2>&1 || return 0
  local port
  port=$(sed -n 's/^  kafka *\[127\.0\.0\.1:\([0-9]*\)\]$/\1/p' "$TMP/dev.log")
  [ -n "$port" ] || return 0
  { ss -Htin "sport = :$port" || true; } | awk '/^[^ \t]/ { peer = $NF; next }
    match($0, /data_segs_in:[0-9]+/) { printf "%s=%s ", peer, substr($0, RSTART + 13, RLENGTH - 13) }
    END { print "" }'
}
kafka_delta() { # before after: the requests of the connections open at the second reading
  awk -v a="$1" -v b="$2" 'BEGIN { n = split(a, x, " "); for (i = 1; i <= n; i++) { split(x[i], kv, "="); before[kv[1]] = kv[2] }
    n = split(b, y, " "); for (i = 1; i <= n; i++) { split(y[i], kv, "="); s += kv[2] - before[kv[1]] }; print s + 0 }'
}
redis_cpu() {
  redis-cli -h "${REDIS%:*}" -p "${REDIS##*:}" info cpu | tr -d '\r' |
    awk -F: '$1 == "used_cpu_sys" || $1 == "used_cpu_user" { s += $2 } END { printf "%.6f", s }'
}
rcli() { redis-cli -h "${REDIS%:*}" -p "${REDIS##*:}" "$@"; }
cmdstats() { # orders: each command's calls and µs inside Redis, per order
  rcli info commandstats | tr -d '\r' | sed -n 's/^cmdstat_\([^:]*\):calls=\([0-9]*\),usec=\([0-9]*\),usec_per_call=\([0-9.]*\).*/\1 \2 \3 \4/p' |
    sort -k3 -nr | head -12 | awk -v n="$1" '{ printf "           %-12s %9d calls %8.2f µs/call %6.3f calls/order %6.2f µs/order\n", $1, $2, $4, (n > 0 ? $2 / n : 0), (n > 0 ? $3 / n : 0) }'
}
# The server listening on MariaDB's port: pidof lists every mariadbd, and
# tests may run servers of their own.
MYSQLD=$(ss -Hltnp 'sport = :3306' 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2 || true)
[ -n "$MYSQLD" ] || MYSQLD=$(pidof -s mariadbd || pidof -s mysqld || true)
proc_cpu() { # PID → its utime+stime in seconds, fields counted after the ')'; NA without one
  [ -n "$1" ] && [ -r "/proc/$1/stat" ] || { echo NA; return; }
  sed 's/.*) //' "/proc/$1/stat" | awk '{ printf "%.2f", ($12 + $13) / 100 }'
}
mysql_cpu() { proc_cpu "$MYSQLD"; }
# budget: where a request's CPU goes, µs a request of each process, against
# what two cores (nproc) give a request at a rate.
us() { # before after requests → µs a request, or NA
  [ "$1" != NA ] && [ "$2" != NA ] || { echo NA; return; }
  awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.1f", (n > 0 ? (b - a) * 1e6 / n : 0) }'
}
cores_us() { awk -v c="$(nproc)" -v r="$1" 'BEGIN { printf "%.1f", (r > 0 ? c * 1e6 / r : 0) }'; }
sum_us() { awk 'BEGIN { s = 0; for (i = 1; i < ARGC; i++) if (ARGV[i] != "NA") s += ARGV[i]; printf "%.1f", s }' "$@"; }
now() { date +%s.%N; }
# stack_us WRK DEV REDIS MARIADB: a buy's µs of each process, and their sum.
stack_us() { echo "wrk $1 + flashgate dev $2 + Redis $3 + MariaDB $4 = $(sum_us "$@")"; }
# cpu_jiffies: the machine's CPU time so far, all of it and the idle part
# (idle and iowait), from the first line of /proc/stat.
cpu_jiffies() { awk '$1 == "cpu" { print $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9, $5 + $6; exit }' /proc/stat; }
per_order() { # before after orders [idle-CPU-s-per-s window-s] → µs, and net of the idle rate
  [ "$1" != NA ] && [ "$2" != NA ] || { echo "not measured (no /proc of the server here)"; return; }
  awk -v a="$1" -v b="$2" -v n="$3" -v idle="${4:-0}" -v w="${5:-0}" 'BEGIN {
    if (n <= 0) { print "n/a"; exit }
    printf "%.1f µs", (b - a) * 1e6 / n
    if (w > 0) printf " (%.1f µs net of its idle %.0f ms/s)", (b - a - idle * w) * 1e6 / n, idle * 1000 }'
}
rate() { # before after seconds → CPU-s per s
  [ "$1" != NA ] && [ "$2" != NA ] || { echo 0; return; }
  awk -v a="$1" -v b="$2" -v w="$3" 'BEGIN { printf "%.4f", (b - a) / w }'
}

echo "wrk ${THREADS} threads, ${CONNS} connections, ${DURATION}; target $WRK_TARGET, bare handler $BARE; $(uptime)"
for round in $(seq 1 "$REPEAT"); do
  echo
  echo "== round $round"
  path=$(setup soldout 1000 "$TMP/soldout.tok")
  bare=$(run soldout.lua "http://$BARE$path" "$TMP/soldout.tok")
  gw=$(run soldout.lua "$WRK_TARGET$path" "$TMP/soldout.tok")
  if [ "$(non2xx "$gw")" != "$(reqs "$gw")" ]; then
    echo "soldout: $(reqs "$gw") requests but $(non2xx "$gw") non-2xx: some buy was accepted after sold out?" >&2
  fi
  echo "soldout  flashgate $(rps "$gw")/s (p99 $(p99 "$gw")) ÷ bare $(rps "$bare")/s (p99 $(p99 "$bare")) = $(ratio "$(rps "$gw")" "$(rps "$bare")")  (goal ≥ 0.90)"

  path=$(setup buy "$USERS" "$TMP/buy.tok")
  item=${path##*/}
  h0=$(proc_cpu "$BAREPID")
  bare=$(run rotate.lua "http://$BARE$path" "$TMP/buy.tok")
  h1=$(proc_cpu "$BAREPID") bwrk=$(cat "$TMP/wrk.cpu")
  # What the servers burn with no load from us, over 4 s: the stack's
  # fixed per-second passes, and on a shared MariaDB the others' work.
  r0=$(redis_cpu) m0=$(mysql_cpu) t0=$(now)
  sleep 4
  r1=$(redis_cpu) m1=$(mysql_cpu) t1=$(now)
  w=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
  ridle=$(rate "$r0" "$r1" "$w") midle=$(rate "$m0" "$m1" "$w")
  rcli CONFIG RESETSTAT >/dev/null
  r0=$(redis_cpu) m0=$(mysql_cpu) t0=$(now) d0=$(proc_cpu "${DEVPID:-}") w0=$(batches) k0=$(kafka_requests)
  gw=$(run rotate.lua "$WRK_TARGET$path" "$TMP/buy.tok")
  ended=$(now) gwrk=$(cat "$TMP/wrk.cpu")
  accepted=$(( $(reqs "$gw") - $(non2xx "$gw") ))
  # Settled: nothing reserved and every 202 a row (wrk's counts include
  # the answers to requests cut off at the end, so at least that many).
  orders=0
  for _ in $(seq 1 600); do
    orders=$(stats "$item" orders) reserved=$(stats "$item" reserved)
    [ "$reserved" = 0 ] && [ "$orders" -ge "$accepted" ] && break
    sleep 0.1
  done
  settled=$(awk -v a="$ended" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
  r1=$(redis_cpu) m1=$(mysql_cpu) t1=$(now) d1=$(proc_cpu "${DEVPID:-}") w1=$(batches) k1=$(kafka_requests)
  w=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
  echo "buy      flashgate $(rps "$gw")/s (p99 $(p99 "$gw"), $(non2xx "$gw") non-2xx) ÷ bare $(rps "$bare")/s = $(ratio "$(rps "$gw")" "$(rps "$bare")")  (goal ≥ 0.50)"
  echo "         $accepted accepted, $orders orders, settled ${settled}s after the storm (goal ≤ 20s); CPU per order: Redis $(per_order "$r0" "$r1" "$orders" "$ridle" "$w") (goal ≤ 5), MariaDB $(per_order "$m0" "$m1" "$orders" "$midle" "$w") (goal ≤ 6)"

  # The budget: the buy run's processes (the drain included, as for the
  # servers' figures above; gross, not net of idle) per order, and wrk's
  # per request; the bare run's wrk and handler per request. With
  # WRK_TARGET the gateway is not ours to read: its share shows NA.
  bn=$(reqs "$bare") gn=$(reqs "$gw")
  b_wrk=$(us 0 "$bwrk" "$bn") b_h=$(us "$h0" "$h1" "$bn")
  g_wrk=$(us 0 "$gwrk" "$gn") g_dev=$(us "$d0" "$d1" "$orders") g_r=$(us "$r0" "$r1" "$orders") g_m=$(us "$m0" "$m1" "$orders")
  echo "         budget, µs of CPU a request: bare run: wrk $b_wrk + handler $b_h = $(sum_us "$b_wrk" "$b_h");" \
    "buy run: $(stack_us "$g_wrk" "$g_dev" "$g_r" "$g_m")" \
    "($(nproc) cores give $(cores_us "$(rps "$gw")") at this rate; buys ÷ ceiling ≥ 0.50 needs ≤ $(cores_us "$(awk -v r="$(rps "$bare")" 'BEGIN { print r / 2 }')"))"
  if [ -n "$w0" ] && [ -n "$w1" ]; then
    awk -v a="$w0" -v b="$w1" 'BEGIN { split(a, x, " "); split(b, y, " "); n = y[1] - x[1]
      printf "         the workers wrote them in %d transactions, %.0f orders a transaction (FLASHGATE_WORKER_LINGER)\n", n, (n > 0 ? (y[2] - x[2]) / n : 0) }'
  fi
  if [ -n "$k1" ]; then
    awk -v k="$(kafka_delta "$k0" "$k1")" -v n="$orders" 'BEGIN {
      printf "         the embedded broker took %d Kafka requests, %.1f a 1,000 orders (docs/performance.md, \"One partition a window\")\n", k, (n > 0 ? k * 1000 / n : 0) }'
  fi
  echo "         Redis commands during the buy run and its drain, per order (INFO commandstats):"
  cmdstats "$orders"

  # p99 at half the buy rate just measured, paced by wrk itself (paced.lua)
  # on a fresh item: the threads send at that rate, arrivals a random gap
  # apart, whatever the answers take.
  half=$(awk -v r="$(rps "$gw")" 'BEGIN { printf "%d", r / 2 }')
  if [ "$half" -gt 0 ]; then
    path=$(setup buy $((half * ${DURATION%s} * 3 / 2 + 1000)) "$TMP/paced.tok")
    r0=$(redis_cpu) m0=$(mysql_cpu) d0=$(proc_cpu "${DEVPID:-}") s0=$(cpu_jiffies)
    paced=$(WRK_RATE=$half run paced.lua "$WRK_TARGET$path" "$TMP/paced.tok")
    r1=$(redis_cpu) m1=$(mysql_cpu) d1=$(proc_cpu "${DEVPID:-}") s1=$(cpu_jiffies) pwrk=$(cat "$TMP/wrk.cpu")
    echo "paced    flashgate $(rps "$paced")/s, $(ratio "$(rps "$paced")" "$(rps "$gw")") of the buy rate above: p50 $(sed -n 's/^ *50% *//p' <<<"$paced"), p90 $(sed -n 's/^ *90% *//p' <<<"$paced"), p99 $(p99 "$paced") (goal ≤ 5ms at half; $(non2xx "$paced") non-2xx)"
    # The same budget at this rate (the workers' last batch may fall after
    # the run), and how busy the machine's cores were: the tail is their
    # queue (docs/performance.md, "Where a buy waits at half rate").
    pn=$(reqs "$paced")
    p_wrk=$(us 0 "$pwrk" "$pn") p_dev=$(us "$d0" "$d1" "$pn") p_r=$(us "$r0" "$r1" "$pn") p_m=$(us "$m0" "$m1" "$pn")
    echo "         budget, µs of CPU a buy at this rate: $(stack_us "$p_wrk" "$p_dev" "$p_r" "$p_m");" \
      "the $(nproc) cores were $(awk -v a="$s0" -v b="$s1" 'BEGIN { split(a, x, " "); split(b, y, " "); t = y[1] - x[1]; printf "%.0f", (t > 0 ? 100 * (1 - (y[2] - x[2]) / t) : 0) }') % busy"
  fi

  if [ "${WRK_BENCH:-0}" = 1 ]; then
    gen() { bench --redis-addr "$REDIS" --cpu-idle 4s --duration "$DURATION" "$@" | grep -E '^  (requests|latency|cpu|goal|result)' || true; }
    echo "-- flashgate bench, same stack"
    gen --scenario soldout --calibrate --calibrate-duration 5s
    out=$(gen --scenario buy --users "$USERS" --calibrate --calibrate-duration 5s)
    echo "$out"
    max=$(sed -n 's/^  requests .* = \([0-9]*\) req\/s.*/\1/p' <<<"$out")
    if [ -n "$max" ] && [ "$max" -gt 0 ]; then
      echo "-- open loop at half the buy rate: $((max / 2))/s"
      gen --scenario buy --rate $((max / 2)) --warmup 1s
    fi
  fi
done
