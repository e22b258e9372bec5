#!/usr/bin/env bash
# Refreshes the gettext catalogs after texts changed in the code:
#   scripts/i18n.sh            extract into messages.pot, merge into every language's .po
#   scripts/i18n.sh init de    start a new language
# Then translate the new or fuzzy entries in backend/locales/<lang>/LC_MESSAGES/messages.po.
# Nothing is compiled: backend/i18n.py reads the .po files (tests/test_i18n.py checks them).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv "[dev]"

LOCALES=backend/locales
POT=$(mktemp --suffix=.pot)
trap 'rm -f "$POT"' EXIT

.venv/bin/pybabel extract -F babel.cfg -k gettext -k ngettext:1,2 \
    --no-location --sort-output --omit-header -o "$POT" .

if [ "${1:-}" = "init" ]; then
    .venv/bin/pybabel init -i "$POT" -d "$LOCALES" -D messages -l "$2"
else
    .venv/bin/pybabel update -i "$POT" -d "$LOCALES" -D messages --no-fuzzy-matching \
        --omit-header --ignore-obsolete
fi
