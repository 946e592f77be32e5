#!/usr/bin/env bash
# One command: set up (first time only) and run the whole test suite, offline.
# Any arguments go to pytest (e.g. ./test.sh -k config).
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh local-llm,memory,voice,avatar,tools,discord,pet,dev
# Lint first (ruff, configured in pyproject.toml): a few seconds, and it fails the run like a test would.
.venv/bin/python -m ruff check --quiet companion plugins tests bench || { echo "error: ruff found problems (see above)" >&2; exit 1; }
# Type check the package and the bundled plugins (mypy, configured in pyproject.toml; cached in .mypy_cache after the first run).
.venv/bin/python -m mypy || { echo "error: mypy found problems (see above)" >&2; exit 1; }
# First the tests that measure the process itself (the soak: event-loop lag, shutdown time), each on a quiet
# machine; then all the others on every core (pytest-xdist), about twice as fast as one after the other.
workers="${PYTEST_WORKERS:-auto}"
set +e
if printf '%s\n' "$@" | grep -qx -- '-m'; then  # the caller picks by marker (`./test.sh -m slow`): one run
  alone=5
  .venv/bin/python -m pytest -n "$workers" "$@"
else
  .venv/bin/python -m pytest -m alone -p no:xdist "$@"
  alone=$?
  .venv/bin/python -m pytest -m "not alone" -n "$workers" "$@"
fi
code=$?
set -e
if [ "$alone" -ne 0 ] && [ "$alone" -ne 5 ]; then
  echo "error: the tests that run alone failed (see above)" >&2
  exit "$alone"
fi
if [ "$code" -eq 5 ]; then
  [ "$alone" -eq 0 ] && exit 0  # `./test.sh -k soak`: only the lone test matched
  echo "error: pytest collected no tests" >&2
  exit 1
fi
exit "$code"
