# Sourced by scripts/demo and scripts/test: create .venv and install sveta into it when needed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-$(command -v python3.11 || command -v python3)}"
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv with $PY" >&2
  "$PY" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip 2>&1 | grep -v "^WARNING: Location" >&2 || true
fi
# Reinstall only when the dependency list changed, so repeated runs start at once.
STAMP=".venv/.sveta-stamp-$1"
WANT="$(sha256sum pyproject.toml | cut -c1-16)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  echo "installing sveta$2 into .venv (first run takes a minute)" >&2
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".$2" 2>&1 \
    | grep -v "^WARNING: Location" >&2 || true
  .venv/bin/python -c "import sveta" || { echo "install failed" >&2; exit 1; }
  echo "$WANT" > "$STAMP"
fi
