#!/usr/bin/env bash
# `scripts/reserve-bench.sh [BUYERS] [PIPELINE] [CALLS] [ROUNDS]`: what one
# reserve call costs Redis, the script alone, as the store sends it
# (lua/fence.lua + lua/reserve.lua), with BUYERS fresh buyers a call (6:
# a call's size at the storm on 8 shards). redis-benchmark drives it from 8
# clients, PIPELINE calls in flight each (8; 1 is a call a round trip, as at
# moderate rates), for CALLS calls (50000), on a redis-server of its own
# started fresh for each of ROUNDS rounds (3), so that the marks hash starts
# empty each time and nothing else runs on it. Prints Redis's CPU (INFO cpu,
# user + system) per call and per buyer, and the keys' sizes as a check
# that every buyer took a unit. Needs redis-server, redis-cli and
# redis-benchmark (Debian's redis-server and redis-tools).
#
# The arguments follow reserve.lua's header: now, no transfer, the entry's
# field and value when every buyer takes a unit, then user id and order id a
# buyer. redis-benchmark replaces each __rand_int__ by a random number of
# its own, so buyers and orders are fresh.
set -euo pipefail
cd "$(dirname "$0")/.."
BUYERS=${1:-6} PIPELINE=${2:-8} CALLS=${3:-50000} ROUNDS=${4:-3}
PORT=$((17600 + RANDOM % 300))
R=(redis-cli -p "$PORT")
ms=1764496000000
ids=() wires=() buyers=()
for _ in $(seq 1 "$BUYERS"); do
  order="1-$ms-__rand_int__"
  ids+=("$order")
  wires+=("r1|$order|1|__rand_int__|990|3|$ms")
  buyers+=(__rand_int__ "$order")
done
field=$(IFS=' '; echo "${ids[*]}")
value=$(printf '%s\n' "${wires[@]}")
cpu() { "${R[@]}" info cpu | tr -d '\r' | awk -F: '$1 == "used_cpu_sys" || $1 == "used_cpu_user" { s += $2 } END { printf "%.6f", s }'; }
trap '"${R[@]}" shutdown nosave >/dev/null 2>&1 || true' EXIT
for round in $(seq 1 "$ROUNDS"); do
  redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
    --logfile /dev/null >/dev/null
  for _ in $(seq 1 100); do "${R[@]}" ping >/dev/null 2>&1 && break; sleep 0.05; done
  "${R[@]}" set stock 1000000000000 >/dev/null
  run=$("${R[@]}" info server | tr -d '\r' | sed -n 's/^run_id://p')
  "${R[@]}" hset ep ls "$("${R[@]}" lastsave)" run "$run" >/dev/null
  sha=$("${R[@]}" script load "$(cat lua/fence.lua lua/reserve.lua)")
  c0=$(cpu)
  redis-benchmark -p "$PORT" -c 8 -P "$PIPELINE" -n "$CALLS" -r 1000000000 \
    EVALSHA "$sha" 4 stock buyers outbox ep "$ms" "" "" "$field" "$value" "${buyers[@]}" >/dev/null
  c1=$(cpu)
  awk -v a="$c0" -v b="$c1" -v n="$CALLS" -v k="$BUYERS" -v r="$round" -v p="$PIPELINE" \
    -v marks="$("${R[@]}" hlen buyers)" -v entries="$("${R[@]}" hlen outbox)" 'BEGIN {
      printf "round %d: %d buyers a call, -P %d: %.2f µs a call, %.2f µs a buyer (%d marks, %d entries)\n",
        r, k, p, (b - a) * 1e6 / n, (b - a) * 1e6 / n / k, marks, entries }'
  "${R[@]}" shutdown nosave >/dev/null 2>&1 || true
  sleep 0.2
done
