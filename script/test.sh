#!/usr/bin/env bash
# Runs the whole test suite (sets up .venv first). Extra arguments go to pytest,
# e.g. `bash script/test.sh tests/test_modeling.py -k relu`.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh" test
cd "$ERNIE_ROOT"
python -m pytest -q -p no:cacheprovider --durations=15 "$@"
