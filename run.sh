#!/usr/bin/env bash
# One command: set up (first time only) and start the companion on its embedded defaults.
# Then open http://127.0.0.1:8765/ . Any arguments go to `companion run`.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh local-llm,memory,voice,avatar,tools,discord
exec .venv/bin/companion run "$@"
