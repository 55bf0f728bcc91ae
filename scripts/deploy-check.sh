#!/usr/bin/env bash
# Validates the deploy files (make deploy-check, part of make test):
#   - alert rules: promtool check rules, and their unit tests (promtool test rules);
#   - Prometheus configs: promtool check config (the Kubernetes one needs
#     kubernetes_sd, which Debian's promtool is built without: deploy/check
#     reads it instead);
#   - systemd units: systemd-analyze verify, any warning fails;
#   - Kubernetes manifests and compose: the deploy/check module (kustomize's
#     API and the Kubernetes types, compose-go and the Compose schema).
# The metric names the dashboard and rules use are checked against a live
# process by deploy/monitoring_test.go (make unit).
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
fail() { echo "deploy-check: $*" >&2; exit 1; }

for tool in promtool systemd-analyze; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool missing: run scripts/services.sh"
done

(cd deploy/monitoring &&
  promtool check rules alerts.yaml &&
  promtool test rules alerts_test.yaml &&
  promtool check config --syntax-only prometheus.yml &&
  promtool check config --syntax-only prometheus-hosts.yml) >/dev/null ||
  fail "promtool: see above (cd deploy/monitoring && promtool check rules alerts.yaml)"

# systemd-analyze verify wants ExecStart to exist: point the copies at a
# binary that does, and treat any message as a failure (it exits 0 on
# unknown keys and bad values).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp deploy/systemd/*.service "$tmp/"
sed -i "s#/usr/local/bin/flashgate#$(command -v true)#" "$tmp"/*.service
out=$(systemd-analyze verify --man=no "$tmp"/*.service 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify: $out"

(cd deploy/check && $GO vet ./... && $GO test -count=1 ./...)
echo "deploy-check: ok"
