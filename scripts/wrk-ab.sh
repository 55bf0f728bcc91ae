#!/usr/bin/env bash
# `scripts/wrk-ab.sh A B`: is checkout B faster than checkout A under wrk?
# For a change smaller than the run-to-run spread of scripts/wrk.sh's ratios
# (±10 % on a shared 2-core box). Builds both checkouts, starts a `flashgate
# dev` stack of each side by side (own redis-server and database each, on
# free ports) and the bare handler, then runs rounds of wrk: bare, one
# gateway, the other, bare again, each gateway's answers ÷ the mean of the
# round's two bare runs. The order of the two gateways alternates between
# rounds (A first in odd rounds), since whichever runs second in a round
# reads higher (about 0.05 of a sold-out ratio on the project's machine).
# Prints every round and, at the end, each side's mean ratio and B − A with
# the position effect taken out.
#   AB_SCENARIO  soldout (default: one token, a sold-out item) or buy (a
#                fresh item and fresh users for every run)
#   AB_ROUNDS    rounds, even (8)
#   AB_DURATION  each wrk run (6s); wrk 2 threads, 128 connections
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 CHECKOUT_A CHECKOUT_B" >&2; exit 2; }
A=$(cd "$1" && pwd) B=$(cd "$2" && pwd)
cd "$(dirname "$0")/.."
SCRIPTS=$PWD/scripts/wrk
export PATH=$PATH:/usr/local/go/bin
SCENARIO=${AB_SCENARIO:-soldout}
ROUNDS=${AB_ROUNDS:-8}
DURATION=${AB_DURATION:-6s}
case $SCENARIO in
soldout) SCRIPT=soldout.lua USERS=1000 ;;
buy) SCRIPT=rotate.lua USERS=$(( ${DURATION%s} * 80000 )) ;;
*) echo "AB_SCENARIO: soldout or buy" >&2; exit 2 ;;
esac
[ "$ROUNDS" -ge 2 ] && [ $((ROUNDS % 2)) = 0 ] || { echo "AB_ROUNDS: an even number, 2 or more" >&2; exit 2; }
command -v wrk >/dev/null || { echo "wrk.sh installs wrk; or: apt-get install -y wrk" >&2; exit 1; }

TMP=$(mktemp -d)
PIDS=()
DBS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  for d in "${DBS[@]}"; do mysql -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS $d"; done
  rm -rf "$TMP"
}
trap cleanup EXIT
waitready() {
  for _ in $(seq 1 200); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "wrk-ab.sh: $1 not ready" >&2; return 1
}
base=$((20000 + RANDOM % 5000))
# stack NAME CHECKOUT OFFSET: builds it and starts redis-server and dev.
stack() {
  (cd "$2" && go build -o "$TMP/$1" ./cmd/flashgate)
  local http=127.0.0.1:$(($base + $3)) admin=127.0.0.1:$(($base + $3 + 1)) rport=$(($base + $3 + 2))
  local db=flashgate_ab_$1_$$
  redis-server --bind 127.0.0.1 --port "$rport" --save "" --appendonly no > "$TMP/$1-redis.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 100); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.05; done
  DBS+=("$db")
  mysql -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS $db"
  FLASHGATE_HTTP_ADDR=$http FLASHGATE_ADMIN_ADDR=$admin FLASHGATE_PAYSIM_ADDR=127.0.0.1:0 \
    FLASHGATE_MYSQL_DSN="root@tcp(127.0.0.1:3306)/$db?parseTime=true" FLASHGATE_REDIS_PREFIX=ab$1$$ \
    FLASHGATE_REDIS_ADDR=127.0.0.1:$rport FLASHGATE_USER_RATE=0 FLASHGATE_IP_RATE=0 FLASHGATE_LOG_LEVEL=warn \
    "$TMP/$1" dev > "$TMP/$1-dev.log" 2>&1 &
  PIDS+=($!)
  waitready "http://$http/readyz"
  eval "HTTP_$1=http://$http ADMIN_$1=http://$admin"
}
stack A "$A" 0
stack B "$B" 10
BARE=http://127.0.0.1:$(($base + 20))
"$TMP/B" bench --serve-bare "${BARE#http://}" > "$TMP/bare.log" 2>&1 &
PIDS+=($!)
waitready "$BARE/"

# setup NAME: an item on stack NAME and its tokens; prints the buy path.
setup() {
  local h=HTTP_$1 a=ADMIN_$1
  "$TMP/$1" bench --target "${!h}" --admin "${!a}" --scenario "$SCENARIO" --users "$USERS" \
    --setup-only --tokens-file "$TMP/$1.tok" | sed -n 's/^path //p'
}
# run URL TOKENS: answers a second.
run() {
  WRK_TOKENS=$2 WRK_THREADS=2 wrk -t2 -c128 -d"$DURATION" -s "$SCRIPTS/$SCRIPT" "$1" |
    sed -n 's/^Requests\/sec: *//p'
}
# gw NAME PATH: NAME's rate on PATH.
gw() { local h=HTTP_$1; run "${!h}$2" "$TMP/$1.tok"; }

echo "wrk-ab: $SCENARIO, $ROUNDS rounds of $DURATION runs; A $A ($(git -C "$A" rev-parse --short HEAD 2>/dev/null || echo ?)), B $B ($(git -C "$B" rev-parse --short HEAD 2>/dev/null || echo ?)); $(uptime)"
if [ "$SCENARIO" = soldout ]; then pa=$(setup A) pb=$(setup B); fi
out=$TMP/rounds
for r in $(seq 1 "$ROUNDS"); do
  if [ "$SCENARIO" = buy ]; then pa=$(setup A) pb=$(setup B); fi
  b1=$(run "$BARE$pa" "$TMP/A.tok")
  if [ $((r % 2)) = 1 ]; then ra=$(gw A "$pa") rb=$(gw B "$pb") first=A; else rb=$(gw B "$pb") ra=$(gw A "$pa") first=B; fi
  b2=$(run "$BARE$pa" "$TMP/A.tok")
  awk -v r="$r" -v f="$first" -v b1="$b1" -v b2="$b2" -v a="$ra" -v b="$rb" 'BEGIN {
    m = (b1 + b2) / 2
    printf "round %d (%s first): bare %.0f, %.0f/s  A %.0f/s = %.3f  B %.0f/s = %.3f\n", r, f, b1, b2, a, a / m, b, b / m
    printf "%s %.5f %.5f\n", f, a / m, b / m > "/dev/stderr" }' 2>> "$out"
done
awk '{ n++; sa += $2; sb += $3; if ($1 == "A") d1 += $3 - $2; else d2 += $3 - $2; if ($1 == "A") n1++; else n2++ }
  END { printf "means: A %.3f, B %.3f; B − A %+.3f with the position taken out (B second: %+.3f, B first: %+.3f)\n",
    sa / n, sb / n, (d1 / n1 + d2 / n2) / 2, d1 / n1, d2 / n2 }' "$out"
