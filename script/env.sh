# Sourced by the other scripts: creates or reuses .venv in the repo, installs what
# requirements*.txt name (only when they changed since the last install) and the project
# itself in editable mode. Safe to rerun.
# Usage: source script/env.sh [test]
set -e
ERNIE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ERNIE_VENV:-$ERNIE_ROOT/.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "[env] creating $VENV"
  "$PY" -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
reqs="$ERNIE_ROOT/requirements.txt"
[ "${1:-}" = "test" ] && reqs="$reqs $ERNIE_ROOT/requirements-test.txt"
stamp="$VENV/.ernie-installed-$( (cat $reqs "$ERNIE_ROOT/pyproject.toml") | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  echo "[env] installing $(echo $reqs | xargs -n1 basename | tr '\n' ' ')into $VENV (a few minutes the first time)"
  python -m pip install -q --upgrade pip
  for r in $reqs; do python -m pip install -q -r "$r"; done
  python -m pip install -q --no-deps -e "$ERNIE_ROOT"
  touch "$stamp"
fi
export PYTHONPATH="$ERNIE_ROOT${PYTHONPATH:+:$PYTHONPATH}"
# Quieter Paddle logs; MKL tuning for AMD CPUs is done by propeller/cpu_env.py on import.
export GLOG_minloglevel="${GLOG_minloglevel:-2}"
set +e
