#!/usr/bin/env bash
# One command: set up (first time only) and run the whole test suite, offline.
# Any arguments go to pytest (e.g. ./test.sh -k config).
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh local-llm,memory,voice,avatar,tools,discord,dev
set +e
.venv/bin/python -m pytest "$@"
code=$?
set -e
if [ "$code" -eq 5 ]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
exit "$code"
