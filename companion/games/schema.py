"""Action schemas: validate what the LLM chose, and build a valid fallback.

Validation uses the real ``jsonschema`` library. The fallback generator covers
the subset the Neuro spec recommends (objects, arrays, strings, numbers,
booleans, enum/const), so a game always gets a schema-valid action even when
the model never produces one.
"""

from __future__ import annotations

import json
import math
import random
import re
import string
from typing import Any

try:  # the regex parser ships with Python; its module name changed in 3.11
    from re import _parser as _re_parser  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python < 3.11
    import sre_parse as _re_parser

from companion.runtime.jsonschemas import check_schema, validation_error

__all__ = ["validation_error", "example_for", "check_schema", "shape_of", "bounded", "refusal"]


def refusal(schema: dict[str, Any] | None) -> str | None:
    """Why an action with ``schema`` cannot be played (None: it can).

    Checked when a game registers the action, so a bad schema is refused with
    a clear line then, and every registered action is one we can always
    answer: the fallback value is proven buildable here.
    """
    if schema is None:
        return None
    problem = check_schema(schema)
    if problem is not None:
        return f"not a valid JSON schema: {problem}"
    try:
        example_for(schema, random.Random(0))
    except ValueError as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - e.g. an unresolvable $ref: refuse, never crash
        return f"cannot be used: {type(exc).__name__}: {exc}"
    return None


def example_for(schema: dict[str, Any] | None, rng: random.Random | None = None) -> Any:
    """A value that validates against ``schema`` (None when the action takes no data).

    Raises ValueError when no value can be built (e.g. an unsatisfiable pattern).
    """
    if schema is None:
        return None
    rng = rng or random.Random(0)
    problem: str | None = "no attempt"
    # Random choices (pattern repeats, numbers) may miss a length or a bound; a
    # few tries, then the fixed seed that ``refusal`` checked at registration.
    for generator in [rng] * 8 + [random.Random(0)]:
        try:
            value = _example(schema, generator, depth=0)
        except _Unsupported as exc:
            raise ValueError(f"cannot build a valid value for this schema ({exc})") from None
        problem = validation_error(value, schema)
        if problem is None:
            return value
    raise ValueError(f"cannot build a valid value for this schema ({problem})")


def _example(schema: Any, rng: random.Random, depth: int) -> Any:
    if not isinstance(schema, dict) or depth > 12:
        return None
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return rng.choice(schema["enum"])
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return _example(schema[key][0], rng, depth + 1)
    if isinstance(schema.get("allOf"), list):
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            if isinstance(part, dict):
                merged.update(part)
        rest = {k: v for k, v in schema.items() if k != "allOf"}
        return _example({**merged, **rest}, rng, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), kind[0] if kind else None)
    if kind is None:
        kind = "object" if "properties" in schema else "string" if "minLength" in schema else None
    if kind == "object":
        props = schema.get("properties") or {}
        required = schema.get("required") or []
        return {name: _example(props.get(name, {}), rng, depth + 1) for name in required}
    if kind == "array":
        count = int(schema.get("minItems", 0))
        items = schema.get("items", {})
        values = []
        for _ in range(count):
            value = _example(items, rng, depth + 1)
            if schema.get("uniqueItems") and isinstance(items, dict) and isinstance(items.get("enum"), list):
                left = [v for v in items["enum"] if v not in values]
                value = left[0] if left else value
            values.append(value)
        return values
    if kind == "string":
        if isinstance(schema.get("pattern"), str):
            return _from_pattern(schema["pattern"], rng, int(schema.get("minLength", 0)))
        return "a" * int(schema.get("minLength", 0))
    if kind in ("integer", "number"):
        return _number(schema, integer=kind == "integer", rng=rng)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    return None


class _Unsupported(ValueError):
    """A schema feature the fallback generator cannot satisfy (e.g. a look-ahead in a pattern)."""


_POOL = string.ascii_letters + string.digits + " _-.,:;!?@#/"


def _from_pattern(pattern: str, rng: random.Random, min_length: int = 0) -> str:
    """A string that matches ``pattern`` (search semantics, as JSON schema uses), built from its parse tree."""
    try:
        tree = _re_parser.parse(pattern)
    except re.error as exc:
        raise _Unsupported(f"pattern {pattern!r} is not a valid regular expression: {exc}") from None
    groups: dict[int, str] = {}
    text = _walk(tree, rng, groups, 0)
    if len(text) < min_length and not pattern.endswith("$"):
        text += "a" * (min_length - len(text))  # a search pattern does not mind a tail
    return text


def _walk(tree: Any, rng: random.Random, groups: dict[int, str], depth: int) -> str:
    if depth > 40:
        raise _Unsupported("pattern nested too deeply")
    out: list[str] = []
    for op, arg in tree:
        name = str(op)
        if name == "LITERAL":
            out.append(chr(arg))
        elif name in ("NOT_LITERAL", "ANY"):
            out.append(rng.choice([c for c in _POOL if name == "ANY" or ord(c) != arg]))
        elif name in ("IN", "CATEGORY"):
            items = arg if name == "IN" else [(op, arg)]
            allowed = [c for c in _POOL if _in_class(c, items)]
            if not allowed:
                raise _Unsupported("a character class with no plain ASCII member")
            out.append(rng.choice(allowed))
        elif name == "BRANCH":
            out.append(_walk(rng.choice(arg[1]), rng, groups, depth + 1))
        elif name == "SUBPATTERN":
            group, _add, _del, sub = arg
            text = _walk(sub, rng, groups, depth + 1)
            if group is not None:
                groups[group] = text
            out.append(text)
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, sub = arg
            high = low + 3 if high == _re_parser.MAXREPEAT else min(high, low + 3)
            out.extend(_walk(sub, rng, groups, depth + 1) for _ in range(rng.randint(low, high)))
        elif name == "AT":
            continue  # anchors: the generated text is the whole match
        elif name == "GROUPREF":
            out.append(groups.get(arg, ""))
        else:
            raise _Unsupported(f"patterns with {name.lower().replace('_', ' ')} are not supported")
    return "".join(out)


def _in_class(char: str, items: Any) -> bool:
    negate = False
    hit = False
    for op, arg in items:
        name = str(op)
        if name == "NEGATE":
            negate = True
        elif name == "LITERAL":
            hit |= ord(char) == arg
        elif name == "RANGE":
            hit |= arg[0] <= ord(char) <= arg[1]
        elif name == "CATEGORY":
            kind = str(arg).removeprefix("CATEGORY_")
            test = {"DIGIT": char.isdigit(), "SPACE": char.isspace(), "WORD": char.isalnum() or char == "_"}
            base = kind.removeprefix("NOT_")
            if base in test:
                hit |= test[base] != kind.startswith("NOT_")
    return hit != negate


def _number(schema: dict[str, Any], integer: bool, rng: random.Random) -> float | int:
    """A random valid number (not always the minimum: a fallback should not always pick the first cell)."""
    low = schema.get("minimum", -math.inf)
    high = schema.get("maximum", math.inf)
    if not isinstance(low, (int, float)):
        low = -math.inf
    if not isinstance(high, (int, float)):
        high = math.inf
    if isinstance(schema.get("exclusiveMinimum"), (int, float)):
        low = max(low, schema["exclusiveMinimum"] + (1 if integer else 1e-9))
    if isinstance(schema.get("exclusiveMaximum"), (int, float)):
        high = min(high, schema["exclusiveMaximum"] - (1 if integer else 1e-9))
    # An open side gets a modest span, so a fallback stays an ordinary value.
    if math.isinf(low) and math.isinf(high):
        low, high = 0, 10
    elif math.isinf(low):
        low = high - 10
    elif math.isinf(high):
        high = low + 10
    step = schema.get("multipleOf")
    if isinstance(step, (int, float)) and step > 0:
        first, last = math.ceil(low / step), math.floor(high / step)
        k = rng.randint(first, last) if last >= first else first
        value: float = k * step
        return int(value) if integer else value
    if integer:
        first, last = math.ceil(low), math.floor(high)
        return rng.randint(first, last) if last >= first else first
    return rng.uniform(low, high) if high > low else low


def bounded(schema: Any, text_chars: int = 80, items: int = 8) -> Any:
    """A copy of ``schema`` whose open-ended strings and arrays have an upper bound, for constrained decoding.

    Every value valid under the bounded schema is valid under the game's; a
    small model under a grammar otherwise writes an unbounded string until it
    runs out of tokens, and the cut-off JSON is lost.
    """
    if isinstance(schema, list):
        return [bounded(s, text_chars, items) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: bounded(v, text_chars, items) if isinstance(v, (dict, list)) else v for k, v in schema.items()}
    if isinstance(schema.get("properties"), dict):
        out["properties"] = {k: bounded(v, text_chars, items) for k, v in schema["properties"].items()}
    kind = schema.get("type")
    kinds: list[Any] = kind if isinstance(kind, list) else [kind]
    if "string" in kinds and "maxLength" not in schema and "enum" not in schema and "const" not in schema:
        out["maxLength"] = max(text_chars, int(schema.get("minLength", 0)))
    if "array" in kinds and "maxItems" not in schema:
        out["maxItems"] = max(items, int(schema.get("minItems", 0)))
    return out


def compact(schema: dict[str, Any] | None) -> str:
    """A short JSON rendering of a schema for prompts."""
    return json.dumps(schema, separators=(",", ":")) if schema else "no data"


def shape_of(schema: Any, depth: int = 0, rng: random.Random | None = None) -> str:
    """The form of a valid value with placeholders instead of values, e.g. ``{"cell": <integer 1 to 9>}``.

    Prompts show this rather than an example value, which small models copy
    verbatim. With ``rng``, enum options and small integer ranges are listed
    in a shuffled order: a small model that takes the first option it reads
    then still plays varied moves (measured: the embedded model answered
    "1" 12 times out of 12 to "<integer 1 to 9>").
    """
    if schema is None:
        return "none (omit data)"
    if not isinstance(schema, dict) or depth > 6:
        return "<any value>"
    if "const" in schema:
        return json.dumps(schema["const"])
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        options = list(schema["enum"][:20])
        if rng is not None:
            rng.shuffle(options)
        return "<one of: " + ", ".join(json.dumps(v) for v in options) + ">"
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return " or ".join(shape_of(s, depth + 1, rng) for s in schema[key][:4])
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind == "object" or (kind is None and "properties" in schema):
        props = schema.get("properties") or {}
        required = set(schema.get("required") or [])
        fields = [
            f"{json.dumps(name)}: {shape_of(sub, depth + 1, rng)}{'' if name in required else ' (optional)'}"
            for name, sub in list(props.items())[:20]
        ]
        return "{" + ", ".join(fields) + "}"
    if kind == "array":
        count = ""
        if "minItems" in schema or "maxItems" in schema:
            count = f" ({schema.get('minItems', 0)} to {schema.get('maxItems', 'any number of')} items)"
        return f"[{shape_of(schema.get('items', {}), depth + 1, rng)}, ...]{count}"
    if kind in ("integer", "number"):
        low, high = schema.get("minimum"), schema.get("maximum")
        if (
            rng is not None and kind == "integer" and isinstance(low, int) and isinstance(high, int)
            and 0 <= high - low <= 24 and "multipleOf" not in schema
        ):
            values = list(range(low, high + 1))
            rng.shuffle(values)
            return "<integer, one of: " + ", ".join(map(str, values)) + ">"
        bounds = f" {low} to {high}" if low is not None and high is not None else (
            f" at least {low}" if low is not None else f" at most {high}" if high is not None else "")
        return f"<{kind}{bounds}>"
    if kind == "string":
        return "<text>"
    if kind == "boolean":
        return "<true or false>"
    return "<any value>"
