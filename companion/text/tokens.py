"""How many tokens a text takes, where the model's own tokenizer is not at hand.

One estimate for every budget (history, lorebook, the prompt), so they agree;
the llama.cpp provider counts with the model's tokenizer instead (``LLM.count_tokens``).
"""

from __future__ import annotations

__all__ = ["estimate_tokens"]


def estimate_tokens(text: str) -> int:
    """About four characters a token in English for today's tokenizers; good enough for a budget."""
    return max(1, (len(text) + 3) // 4) if text else 0
