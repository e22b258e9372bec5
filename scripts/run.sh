#!/usr/bin/env bash
# Installs SimplRefQ into .venv and serves the whole app.
# With no settings it runs the embedded default: SQLite under ./data, in-process state, demo
# sign-in in a normal browser, bot off, two local chains (anvil) with the vault deployed.
# Set DATABASE_URL and REDIS_URL for PostgreSQL + Redis.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv ""
# anvil for the demo's two local chains (README): installed from contracts/evm/package-lock.json
# when node_modules is older than the lock, as test.sh does; without npm the demo runs without
# them (deposits stay closed), never fails.
if command -v npm >/dev/null && command -v node >/dev/null; then
    if [ ! contracts/evm/node_modules/.package-lock.json -nt contracts/evm/package-lock.json ]; then
        npm ci --prefix contracts/evm --no-audit --no-fund --loglevel=error \
            || echo "npm ci failed: the demo runs without its local chains" >&2
    fi
fi
exec .venv/bin/simplrefq serve "$@"
