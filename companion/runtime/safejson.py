"""JSON from outside (games, browsers, cards) parsed with a nesting limit.

Python's parser raises RecursionError on very deep input (about 1,000
levels), and anything that walks a merely deep document later (schema
checks, prompt building) can hit the same wall far from where the data came
in. One depth limit at the edge turns both into a clear ``ValueError``.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["JSONInputError", "loads", "depth"]

MAX_DEPTH = 64


class JSONInputError(ValueError):
    """Input that is not JSON we accept; the text says why."""


def depth(value: Any) -> int:
    """How deeply ``value``'s lists and objects nest (a scalar is 0), walked without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item  # type: ignore[assignment]
        else:
            continue
        level += 1
        deepest = max(deepest, level)
        stack.extend((child, level) for child in children if isinstance(child, (dict, list)))
    return deepest


def loads(raw: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` that refuses nesting deeper than ``max_depth`` instead of crashing."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise JSONInputError(f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except RecursionError:
        raise JSONInputError(f"JSON nested too deeply (the limit is {max_depth} levels)") from None
    except UnicodeDecodeError:
        raise JSONInputError("not UTF-8 text") from None
    if depth(value) > max_depth:
        raise JSONInputError(f"JSON nested too deeply (the limit is {max_depth} levels)")
    return value
