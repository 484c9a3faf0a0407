#!/usr/bin/env bash
# Runs the whole test suite (sets up .venv first). Extra arguments go to pytest,
# e.g. `bash script/test.sh tests/test_modeling.py -k relu`.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh" test
# tests/test_web_demo.py drives Debian's headless Chromium; install it where we may (root with apt).
# Quietly, and never failing the run: without it that test skips, saying why.
if ! command -v chromedriver >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "[test] installing chromium and chromium-driver with apt (for the browser test)"
  { DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver \
    || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; }
  } >/dev/null 2>&1 || echo "[test] could not install chromium: the browser test will be skipped"
fi
cd "$ERNIE_ROOT"
python -m pytest -q -p no:cacheprovider --durations=15 "$@"
