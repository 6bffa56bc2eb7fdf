#!/usr/bin/env bash
# Installs the system tools the tests use (promtool from Debian's `prometheus` package, redis-server
# for the gateway's limits across replicas in tests/test_gateway_proxy.py) when they
# are missing and this machine can install them. In CI (CI=true) a missing tool is an error, so a
# suite never silently skips what it is meant to check.
set -uo pipefail
need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${need[*]} (apt, no recommends)..." >&2
  export DEBIAN_FRONTEND=noninteractive
  if apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; then
    exit 0
  fi
fi
msg="missing system packages: ${need[*]} (install with: sudo apt-get install --no-install-recommends ${need[*]})"
if [ "${CI:-}" = "true" ]; then echo "error: $msg" >&2; exit 1; fi
echo "warning: $msg; the tests that need them will be skipped" >&2
exit 0
