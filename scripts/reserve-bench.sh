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
# RESERVE_LUA=FILE drives FILE instead of lua/reserve.lua (a previous
# version, say: git show REV:lua/reserve.lua > FILE), with the same
# arguments. RESERVE_COUNT=instructions runs each round's redis-server under
# valgrind's callgrind and prints the instructions Redis ran a call instead
# of its CPU time (its own code only, not the kernel's: the same count for
# the same script and arguments however busy the machine is; use a few
# thousand calls, valgrind runs Redis about 50 times slower).
#
# The arguments follow reserve.lua's header: now, no transfer, the entry's
# field and value when every buyer takes a unit, then user id and order id a
# buyer. redis-benchmark replaces each __rand_int__ by a random number of
# its own, so buyers and orders are fresh.
set -euo pipefail
cd "$(dirname "$0")/.."
BUYERS=${1:-6} PIPELINE=${2:-8} CALLS=${3:-50000} ROUNDS=${4:-3}
SCRIPT=${RESERVE_LUA:-lua/reserve.lua}
COUNT=${RESERVE_COUNT:-cpu}
case $COUNT in
cpu | instructions) ;;
*) echo "RESERVE_COUNT: $COUNT is neither cpu nor instructions" >&2; exit 2 ;;
esac
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
TMP=$(mktemp -d)
trap '"${R[@]}" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$TMP"' EXIT
drive() { # drive CALLS: that many calls
  redis-benchmark -p "$PORT" -c 8 -P "$PIPELINE" -n "$1" -r 1000000000 \
    EVALSHA "$sha" 4 stock buyers outbox ep "$ms" "" "" "$field" "$value" "${buyers[@]}" >/dev/null
}
for round in $(seq 1 "$ROUNDS"); do
  server=(redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --logfile /dev/null)
  if [ "$COUNT" = instructions ]; then
    command -v valgrind >/dev/null || { echo "RESERVE_COUNT=instructions needs valgrind" >&2; exit 1; }
    valgrind --tool=callgrind --callgrind-out-file="$TMP/callgrind.%p" "${server[@]}" >/dev/null 2>"$TMP/valgrind.log" &
    vg=$!
  else
    "${server[@]}" --daemonize yes >/dev/null
  fi
  for _ in $(seq 1 400); do "${R[@]}" ping >/dev/null 2>&1 && break; sleep 0.05; done
  "${R[@]}" set stock 1000000000000 >/dev/null
  run=$("${R[@]}" info server | tr -d '\r' | sed -n 's/^run_id://p')
  "${R[@]}" hset ep ls "$("${R[@]}" lastsave)" run "$run" >/dev/null
  sha=$("${R[@]}" script load "$(cat lua/fence.lua "$SCRIPT")")
  if [ "$COUNT" = instructions ]; then
    drive 200 # Lua's and the hashes' first growth
    callgrind_control -z "$vg" >/dev/null 2>&1
    drive "$CALLS"
    callgrind_control -d "$vg" >/dev/null 2>&1
    used=$(awk '$1 == "summary:" || $1 == "totals:" { print $2; exit }' "$(ls -t "$TMP"/callgrind.* | head -1)")
    unit=instructions
  else
    c0=$(cpu)
    drive "$CALLS"
    used=$(awk -v a="$c0" -v b="$(cpu)" 'BEGIN { printf "%.3f", (b - a) * 1e6 }')
    unit=µs
  fi
  awk -v used="$used" -v unit="$unit" -v n="$CALLS" -v k="$BUYERS" -v r="$round" -v p="$PIPELINE" \
    -v marks="$("${R[@]}" hlen buyers)" -v entries="$("${R[@]}" hlen outbox)" 'BEGIN {
      f = unit == "µs" ? "%.2f" : "%.0f"
      printf "round %d: %d buyers a call, -P %d: " f " %s a call, " f " %s a buyer (%d marks, %d entries)\n",
        r, k, p, used / n, unit, used / n / k, unit, marks, entries }'
  "${R[@]}" shutdown nosave >/dev/null 2>&1 || true
  [ "$COUNT" != instructions ] || wait "$vg" 2>/dev/null || true
  rm -f "$TMP"/callgrind.*
  sleep 0.2
done
