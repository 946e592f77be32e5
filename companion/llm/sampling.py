"""What a local model is given, by its size and this machine's speed: samplers against loops, and its history.

A small model left to plain temperature sampling loops: it says a phrase again
("I'm so glad... I'm so glad..."), copies its previous reply, or answers with
the person's own words. llama.cpp has samplers made for that: DRY ("don't
repeat yourself") penalises extending any sequence already in the context,
presence and frequency penalties push away from words already used, and
min-p drops the long tail of unlikely tokens that a high temperature would
otherwise pick. How hard to push depends on the model: a tiny model needs it,
a large one writes worse with it (names and facts it should repeat get
penalised too). The presets below were chosen on ``bench/reply_quality.py``
(figures in README.md); ``[llm.sampling]`` overrides any value.

How much conversation a model is given is sized here too. One table tuned for the 135M embedded model
would starve a 4B model on a GPU and drown a 7B model on two CPU cores. The history budget is the prompt a
model reads within a few seconds when nothing of it is cached (a new process without a saved slot state, a
history window that slid), bounded by a third of its context window so the reply, the system prompt and
recalled memories keep room.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

__all__ = [
    "Sampling", "SMALL_MODEL_BYTES", "preset_for", "sampling_for", "SpeedRecord", "history_tokens_for", "measured_prompt_speed",
]

SMALL_MODEL_BYTES = 1_000_000_000  # a GGUF under this is a "small" model (about 1.5B parameters at 4 bits)


@dataclass(frozen=True, slots=True)
class Sampling:
    min_p: float = 0.05
    repeat_penalty: float = 1.0  # llama.cpp's multiplicative penalty on the last repeat_last_n tokens
    repeat_last_n: int = 64
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    dry_multiplier: float = 0.0
    dry_base: float = 1.75
    dry_allowed_length: int = 3
    dry_penalty_last_n: int = -1  # -1: the whole context

    def llamacpp(self, n_ctx: int) -> dict[str, Any]:
        """Every field, as llama.cpp's server names them ("the whole context" spelled out: the binding refuses -1)."""
        out = asdict(self)
        for key in ("dry_penalty_last_n", "repeat_last_n"):
            if out[key] == -1:
                out[key] = n_ctx
        return out

    def openai(self, extras: bool) -> dict[str, Any]:
        """The OpenAI API's own penalties, plus llama.cpp's names where the server takes them (``extras``)."""
        out: dict[str, Any] = {}
        if self.presence_penalty:
            out["presence_penalty"] = self.presence_penalty
        if self.frequency_penalty:
            out["frequency_penalty"] = self.frequency_penalty
        if extras:
            out.update({k: v for k, v in asdict(self).items() if k not in out})
            out["repetition_penalty"] = self.repeat_penalty  # vLLM's name for it
        return out


# Chosen by measurement (bench/reply_quality.py, embedded SmolLM2-135M, 10 turns; see README.md).
SMALL = Sampling(min_p=0.1, repeat_penalty=1.1, presence_penalty=0.3, dry_multiplier=0.8)
# A capable model needs little: mild DRY against long loops, llama.cpp's own defaults otherwise.
LARGE = Sampling(min_p=0.05, dry_multiplier=0.5, dry_allowed_length=4)


def preset_for(model_bytes: int | None) -> Sampling:
    """The preset for a model of this size (None: unknown, a server's model: the large preset)."""
    return SMALL if model_bytes is not None and model_bytes < SMALL_MODEL_BYTES else LARGE


def sampling_for(model_bytes: int | None, overrides: dict[str, Any]) -> Sampling:
    """The preset for the model's size with the user's ``[llm.sampling]`` values (those not None) over it."""
    return replace(preset_for(model_bytes), **{k: v for k, v in overrides.items() if v is not None})


# -- the history budget -------------------------------------------------------------------

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
