"""Pure choices for the set-up: which of the found models to use, how to describe it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["ModelInfo", "Server", "pick_model", "is_chat_model", "size_text", "param_billions"]

# Models that embed, rerank or transcribe: never a chat model.
_NOT_CHAT = re.compile(r"embed|bge-|minilm|rerank|whisper|clip|e5-|gte-|nomic-embed|snowflake-arctic-embed|tts", re.I)
_PARAMS = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*[bB](?![a-zA-Z])")


@dataclass(frozen=True)
class ModelInfo:
    name: str
    size_bytes: int | None = None  # on disk (Ollama reports it); None when the server does not say
    parameters: str = ""  # e.g. "8.0B", when known


@dataclass
class Server:
    """A local model server that answers: what it is, its OpenAI-compatible base URL and its models."""

    kind: str  # "ollama" | "lmstudio" | "openai"
    label: str
    base_url: str  # OpenAI-compatible, ending in /v1
    models: list[ModelInfo] = field(default_factory=list)


def is_chat_model(name: str) -> bool:
    return not _NOT_CHAT.search(name)


def param_billions(model: ModelInfo) -> float | None:
    """Parameters in billions from the server's metadata or the name ("llama3.1:8b" -> 8.0)."""
    for text in (model.parameters, model.name):
        match = _PARAMS.search(text or "")
        if match:
            return float(match.group(1))
    return None


def pick_model(models: list[ModelInfo], memory_bytes: int | None) -> ModelInfo | None:
    """The largest chat model that fits in memory (with room to spare), else the smallest chat model.

    Size is the file size when the server reports it, else estimated from the
    parameter count (about 0.6 bytes per parameter at the usual 4-bit quantisation).
    """
    chat = [m for m in models if is_chat_model(m.name)]
    if not chat:
        return None

    def size(m: ModelInfo) -> float:
        if m.size_bytes:
            return float(m.size_bytes)
        billions = param_billions(m)
        return billions * 0.6e9 if billions is not None else 0.0

    budget = memory_bytes * 0.6 if memory_bytes else None  # leave room for the OS, the game, the voice models
    fitting = [m for m in chat if budget is None or size(m) <= budget]
    if fitting:
        return max(fitting, key=lambda m: (size(m), m.name))
    return min(chat, key=size)


def size_text(model: ModelInfo) -> str:
    """"8.0B, 4.9 GB" or what is known of it."""
    parts = []
    if model.parameters:
        parts.append(model.parameters)
    if model.size_bytes:
        parts.append(f"{model.size_bytes / 1e9:.1f} GB")
    return ", ".join(parts)
