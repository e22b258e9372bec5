#!/usr/bin/env bash
# Installs SimplRefQ into .venv and serves the whole app.
# With no settings it runs the embedded default: SQLite under ./data, in-process state, demo
# sign-in in a normal browser, bot off. Set DATABASE_URL and REDIS_URL for PostgreSQL + Redis.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv ""
exec .venv/bin/simplrefq serve "$@"
