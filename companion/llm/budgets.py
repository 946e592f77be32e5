"""How much conversation a local model is given, from what it is and how fast this machine reads prompts.

One table tuned for the 135M embedded model would starve a 4B model on a GPU and drown a 7B model on two CPU
cores. The history budget is the prompt a model reads within a few seconds when nothing of it is cached (a new
process without a saved slot state, a history window that slid), bounded by a third of its context window so
the reply, the system prompt and recalled memories keep room.
"""

from __future__ import annotations

import json
from pathlib import Path

COLD_PREFILL_S = 3.0  # a history the model reads in this long from nothing: the worst first word after a cache miss
MIN_HISTORY_TOKENS = 512  # below this a conversation loses the thread between two replies
MIN_MEASURED_PROMPT = 64  # prompts shorter than this say more about per-request overhead than about speed
SPEEDS_FILE = "speeds.json"


def history_tokens_for(prompt_tps: float | None, n_ctx: int, *, small: bool, accelerated: bool) -> int | None:
    """Tokens of history for this model here, or None where the configured default should stand.

    A small model keeps the default: a longer history gives it more of its own lines to repeat. Without a
    measured speed, a model on a GPU gets a third of its window and one on a CPU the default.
    """
    if small:
        return None
    ceiling = max(MIN_HISTORY_TOKENS, n_ctx // 3)
    if prompt_tps and prompt_tps > 0:
        return max(MIN_HISTORY_TOKENS, min(ceiling, int(prompt_tps * COLD_PREFILL_S)))
    return ceiling if accelerated else None


def measured_prompt_speed(timings: dict[str, object]) -> float | None:
    """Prompt tokens per second from llama.cpp's timings of one request, when the prompt was long enough to tell."""
    n = timings.get("prompt_n")
    speed = timings.get("prompt_per_second")
    if isinstance(n, (int, float)) and n >= MIN_MEASURED_PROMPT and isinstance(speed, (int, float)) and speed > 0:
        return float(speed)
    return None


class SpeedRecord:
    """Measured prompt speeds per model and device, kept beside the slot states.

    A new process that restores its prompt from disk reads nothing, so it would not know its speed until the
    first cache miss; the last process's figure stands in until then.
    """

    def __init__(self, folder: Path | None) -> None:
        self.path = folder / SPEEDS_FILE if folder is not None else None

    def _all(self) -> dict[str, float]:
        if self.path is None:
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {str(k): float(v) for k, v in data.items() if isinstance(v, (int, float))} if isinstance(data, dict) else {}

    def get(self, key: str) -> float | None:
        return self._all().get(key)

    def put(self, key: str, speed: float) -> None:
        if self.path is None:
            return
        data = self._all()
        data[key] = round(speed, 1)
        tmp = self.path.with_suffix(".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
            tmp.replace(self.path)
        except OSError:
            pass  # a figure we measure again next time, never a failed reply
