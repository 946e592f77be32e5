"""Sampler settings against loops, by model size (pure): what llama.cpp and compatible servers are sent.

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
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

__all__ = ["Sampling", "SMALL_MODEL_BYTES", "preset_for", "sampling_for"]

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
