#!/usr/bin/env bash
# Create (or update) the virtualenv of the baseline servers and print its
# python. Idempotent: pip runs only when requirements.txt changed.
#   examples/setup.sh [VENV]      (default: $EXAMPLES_VENV or examples/.venv)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${1:-${EXAMPLES_VENV:-$here/.venv}}"
stamp="$venv/.installed"
if [ ! -x "$venv/bin/python" ]; then
    python3.12 -m venv "$venv" >&2
fi
if [ ! -f "$stamp" ] || [ "$here/requirements.txt" -nt "$stamp" ]; then
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$here/requirements.txt" >&2
    touch "$stamp"
fi
echo "$venv/bin/python"
