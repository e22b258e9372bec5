# Sourced by run.sh and test.sh: creates .venv and installs the project into it when needed.
# Nothing here downloads torch or a browser build; see README "Dependencies".

ensure_venv() {
    local extras="$1"
    local stamp=".venv/.installed${extras}"
    if [ ! -x .venv/bin/pip ]; then
        rm -rf .venv  # a half-made one (e.g. venv failed for want of ensurepip)
        local python
        python=$(command -v python3.11 || command -v python3 || true)
        if [ -z "$python" ] || ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
            echo "SimplRefQ needs Python 3.11 (found: ${python:-none})" >&2
            return 1
        fi
        if ! "$python" -m venv .venv; then
            echo "python -m venv failed: on Debian, apt-get install python3.11-venv" >&2
            rm -rf .venv
            return 1
        fi
    fi
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        .venv/bin/python -m pip install --quiet --upgrade pip
        .venv/bin/python -m pip install --quiet -e ".${extras}"
        touch "$stamp"
    fi
}
