#!/usr/bin/env bash
# Checks the alert rules, their unit tests and the Grafana dashboard:
#   promtool check rules   deploy/helm/action-router/files/prometheus-rules.yaml
#   promtool test rules    deploy/monitoring/tests/*.yaml
#   node deploy/monitoring/check.mjs   the dashboard's structure and queries,
#       every alert's severity, annotations and runbook section in
#       docs/runbook.md, a firing and a quiet test for every alert; prints the
#       action_router_* metric names the rules and the dashboard use.
# Installs nothing, except Debian's prometheus package (it carries promtool)
# when promtool is missing. Exits non-zero on the first failing step.
set -euo pipefail

cd "$(dirname "$0")/.."
RULES=deploy/helm/action-router/files/prometheus-rules.yaml
TESTS=(deploy/monitoring/tests/*.yaml)
started=$(date +%s)

find_promtool() {
  command -v promtool 2>/dev/null || { [ -x /usr/bin/promtool ] && echo /usr/bin/promtool; } || true
}

PROMTOOL=$(find_promtool)
if [ -z "$PROMTOOL" ]; then
  # Another apt may be installing it right now: wait for its lock first.
  for _ in $(seq 1 120); do
    PROMTOOL=$(find_promtool)
    [ -n "$PROMTOOL" ] && break
    if ! fuser /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock >/dev/null 2>&1 && ! pgrep -x 'apt-get|apt|dpkg' >/dev/null 2>&1; then
      break
    fi
    sleep 5
  done
fi
if [ -z "$PROMTOOL" ]; then
  echo "promtool missing: apt-get install -y prometheus (Debian's package carries promtool)"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  install() { $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >/dev/null; }
  # Package lists may be missing on a fresh machine: read them once, then retry.
  install || { $SUDO apt-get update >/dev/null && install; }
  # The package starts a Prometheus server where services run; only promtool is wanted.
  $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
  PROMTOOL=$(find_promtool)
fi
[ -n "$PROMTOOL" ] || { echo "promtool is still missing" >&2; exit 1; }
command -v node >/dev/null || { echo "node is missing (it checks the dashboard)" >&2; exit 1; }

echo "== $("$PROMTOOL" --version 2>&1 | head -1)"
echo "== promtool check rules"
"$PROMTOOL" check rules "$RULES"
echo "== promtool test rules (${#TESTS[@]} files)"
"$PROMTOOL" test rules "${TESTS[@]}"
echo "== dashboard, annotations, runbook anchors, test coverage"
PROMTOOL="$PROMTOOL" node deploy/monitoring/check.mjs
echo "== monitoring checks passed in $(( $(date +%s) - started )) s"
