#!/usr/bin/env bash
# Runs a test command with a tag of its own in every Redis prefix and MySQL
# database the tests make (internal/testenv reads FLASHGATE_TEST_TAG), then
# fails if any key or database with that tag is left: tests and fuzzers must
# clean up after themselves, including fuzz workers the fuzzer kills.
#
#   scripts/leftovers.sh                          # every fuzzer of `make fuzz`, 3s each
#   scripts/leftovers.sh go test -count=1 ./gateway ./test
#
# Other people's test runs on the same machine do not disturb the check: it
# only looks at its own tag.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
REDIS_HOST=${REDIS_HOST:-127.0.0.1}
tag="lo$(od -An -N4 -tx4 /dev/urandom | tr -d ' \n')x"
export FLASHGATE_TEST_TAG=$tag

if [ $# -eq 0 ]; then
  set -- make --no-print-directory fuzz-targets FUZZTIME=3s
fi
echo "leftovers: running '$*' with FLASHGATE_TEST_TAG=$tag" >&2
"$@"
rc=$?

keys=$(redis-cli -h "$REDIS_HOST" --scan --pattern "fgtest${tag}*" | sort)
dbs=$(mysql -h127.0.0.1 -uroot -N -e "SHOW DATABASES LIKE 'fgtest\\_${tag}%'")
left=0
if [ -n "$keys" ]; then
  echo "leftovers: $(wc -l <<<"$keys") Redis keys left, under the prefixes:" >&2
  cut -d: -f1 <<<"$keys" | sort | uniq -c >&2
  left=1
fi
if [ -n "$dbs" ]; then
  echo "leftovers: databases left: $dbs" >&2
  left=1
fi
if [ $left = 1 ]; then
  exit 1
fi
echo "leftovers: none (command exit status $rc)" >&2
exit $rc
