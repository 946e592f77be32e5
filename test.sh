#!/usr/bin/env bash
# One command: set up (first time only) and run the whole test suite, offline.
# Any arguments go to pytest (e.g. ./test.sh -k config).
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh local-llm,memory,voice,avatar,tools,discord,dev
# Lint first (ruff, configured in pyproject.toml): a few seconds, and it fails the run like a test would.
.venv/bin/python -m ruff check --quiet companion plugins tests bench || { echo "error: ruff found problems (see above)" >&2; exit 1; }
# Type check the package and the bundled plugins (mypy, configured in pyproject.toml; cached in .mypy_cache after the first run).
.venv/bin/python -m mypy || { echo "error: mypy found problems (see above)" >&2; exit 1; }
set +e
.venv/bin/python -m pytest "$@"
code=$?
set -e
if [ "$code" -eq 5 ]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
exit "$code"
