#!/usr/bin/env bash
# System packages the test suite needs, installed only when needed:
# - Debian's chromium + chromium-driver when a test is marked `browser` (the UI tests drive headless
#   Chromium; browser builds cannot be downloaded from anywhere else here).
# - Debian's postgresql + redis-server when a test is marked `scale` (tests/scale starts its own
#   PostgreSQL and Redis for the CeleryExecutor scale-out environment; services are not started here).
# - Debian's redis-server (redis-server + redis-cli) when a test is marked `redis` (the Redis session
#   store's tests start their own server on a free loopback port, see tests/redis_helpers.py).
# Needs root and apt-get (true on the dev machines and CI); otherwise it says what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

needed=()
if grep -rqsE 'mark\.browser' tests/ 2>/dev/null && ! command -v chromium >/dev/null 2>&1; then
  needed+=(chromium chromium-driver)
fi
if grep -rqsE 'mark\.scale' tests/ 2>/dev/null; then
  # The harness runs initdb/pg_ctl from /usr/lib/postgresql/<version>/bin (not on PATH on Debian).
  if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || ! compgen -G '/usr/lib/postgresql/*/bin/pg_dump' >/dev/null; then
    needed+=(postgresql)
  fi
fi
if grep -rqsE 'mark\.(scale|redis)' tests/ 2>/dev/null; then
  if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    needed+=(redis-server)
  fi
fi
if [ ${#needed[@]} -eq 0 ]; then
  echo "[system-deps] nothing to install"
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "error: tests need ${needed[*]} (Debian packages) and this is not root with apt-get; install them" >&2
  exit 1
fi
echo "[system-deps] apt-get install ${needed[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${needed[@]}" >/dev/null
echo "[system-deps] installed: ${needed[*]}"
