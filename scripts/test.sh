#!/usr/bin/env bash
# Installs everything the checks need, then runs lint, types and the whole test suite.
# Tests use the real PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379), and Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh

apt_install() {
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
        echo "missing: $* (install them with your package manager)" >&2
        return 0
    fi
    export DEBIAN_FRONTEND=noninteractive
    # A failed install is reported here and again by the tests that need the tool.
    apt-get update -qq >/dev/null || echo "apt-get update failed" >&2
    apt-get install -y -qq "$@" >/dev/null || echo "could not install: $*" >&2
}

needed=()
command -v chromium >/dev/null || needed+=(chromium)
command -v docker-compose >/dev/null || needed+=(docker-compose)
if [ ${#needed[@]} -gt 0 ]; then apt_install "${needed[@]}"; fi

# Start the local services if they are installed but stopped (their commands from the machine's docs).
if command -v pg_ctlcluster >/dev/null && ! pg_isready -q -h 127.0.0.1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main start || true
fi
if command -v redis-server >/dev/null && ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
fi

ensure_venv "[dev]"
echo "== ruff"; .venv/bin/ruff check . && .venv/bin/ruff format --check .
echo "== mypy"; .venv/bin/mypy
# The EVM contracts' toolchain (solc-js, OpenZeppelin, anvil) from contracts/evm/package-lock.json;
# skipped when node_modules is already newer than the lock file, so a rerun costs nothing.
if command -v npm >/dev/null && command -v node >/dev/null; then
    if [ ! contracts/evm/node_modules/.package-lock.json -nt contracts/evm/package-lock.json ]; then
        echo "== npm ci (contracts/evm)"
        npm ci --prefix contracts/evm --no-audit --no-fund --loglevel=error \
            || echo "npm ci failed: the EVM contract tests will fail under CI=true, skip elsewhere" >&2
    fi
else
    echo "missing: node and npm (the EVM contract tests fail under CI=true, skip elsewhere)" >&2
fi
echo "== pytest"; .venv/bin/pytest "$@"
