# Sourced by scripts/*: makes .venv (Python 3.11+) and installs flowengine into it when
# pyproject.toml changed since the last install. Set PYTHON to pick an interpreter.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="${PYTHON:-python3}"
if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "flowengine needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2
  exit 2
fi
if [ ! -x .venv/bin/python ]; then
  "$py" -m venv .venv
fi
stamp=".venv/.flowengine-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)-${FLOWENGINE_EXTRAS:-test}"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[${FLOWENGINE_EXTRAS:-test}]"
  echo "$want" > "$stamp"
fi
export PATH="$root/.venv/bin:$PATH"
