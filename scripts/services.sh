#!/usr/bin/env bash
# Makes sure the tools (make, gcc, curl, jq) and the local services flashgate
# needs are installed, and the services running:
# Redis on 127.0.0.1:6379 (no persistence) and MariaDB on 127.0.0.1:3306 with
# root and an empty password over TCP. Installs them from Debian's packages
# when missing. Idempotent; used by `make run`, `make test` and CI.
set -euo pipefail

log() { echo "services: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
# The tools `make test` and the README's tours need (Go itself comes from
# go.dev: Debian's is too old).
command -v make >/dev/null 2>&1 || missing+=(make)
command -v gcc >/dev/null 2>&1 || missing+=(gcc libc6-dev) # -race needs cgo
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v jq >/dev/null 2>&1 || missing+=(jq)
command -v openssl >/dev/null 2>&1 || missing+=(openssl) # the fleet tour of docs/operations.md
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v redis-check-aof >/dev/null 2>&1 || missing+=(redis-tools)
[ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)
command -v mysql >/dev/null 2>&1 || missing+=(mariadb-client)
# The browser test drives Debian's chromium; CJK fonts let it draw the
# Alipay sandbox's cashier as a person sees it.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
dpkg -s fonts-noto-cjk >/dev/null 2>&1 || missing+=(fonts-noto-cjk)
# A standard Kafka client reads the reservations topic in the tests
# (test/kcat_test.go), as an operator would.
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
# make deploy-check: promtool checks the alert rules, systemd-analyze the units.
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
if ! command -v go >/dev/null 2>&1 && [ ! -x /usr/local/go/bin/go ]; then
  log "Go 1.26 is not installed: get it from https://go.dev/dl/ (Debian's golang-go is too old)"
fi
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  as_root apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  log "starting redis"
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/flashgate.log
fi

mysql_tcp() { mysql -h127.0.0.1 -P3306 -uroot --connect-timeout=2 "$@"; }
if ! mysql_tcp -e 'SELECT 1' >/dev/null 2>&1; then
  if ! mysqladmin --connect-timeout=2 ping >/dev/null 2>&1; then
    log "starting mariadb"
    as_root mkdir -p /run/mysqld
    as_root chown mysql:mysql /run/mysqld 2>/dev/null || true
    as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  fi
  for _ in $(seq 1 60); do
    mysqladmin --connect-timeout=2 ping >/dev/null 2>&1 && break
    sleep 0.5
  done
  if ! mysql_tcp -e 'SELECT 1' >/dev/null 2>&1; then
    # A fresh Debian MariaDB lets root in over its unix socket only.
    log "allowing root with an empty password over TCP"
    as_root mysql -uroot -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('')"
  fi
fi

for _ in $(seq 1 60); do
  if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && mysql_tcp -e 'SELECT 1' >/dev/null 2>&1; then
    log "redis and mariadb are up"
    exit 0
  fi
  sleep 0.5
done
log "redis or mariadb did not come up" && exit 1
