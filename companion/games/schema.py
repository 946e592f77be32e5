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
from typing import Any

from jsonschema import validators
from jsonschema.exceptions import SchemaError

__all__ = ["validation_error", "example_for", "check_schema"]


def check_schema(schema: dict[str, Any]) -> str | None:
    """None if ``schema`` is a usable JSON schema, else why not."""
    try:
        validators.validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        return exc.message
    return None


def validation_error(data: Any, schema: dict[str, Any] | None) -> str | None:
    """None if ``data`` fits ``schema``; otherwise the first problem, readable by a model."""
    if schema is None:
        if data in (None, {}):
            return None
        return "this action takes no data; send no data"
    validator = validators.validator_for(schema)(schema)
    error = next(iter(sorted(validator.iter_errors(data), key=lambda e: list(e.path))), None)
    if error is None:
        return None
    where = "/".join(str(p) for p in error.path) or "data"
    return f"{where}: {error.message}"


def example_for(schema: dict[str, Any] | None, rng: random.Random | None = None) -> Any:
    """A value that validates against ``schema`` (None when the action takes no data).

    Raises ValueError when no value can be built (e.g. an unsatisfiable pattern).
    """
    if schema is None:
        return None
    rng = rng or random.Random(0)
    value = _example(schema, rng, depth=0)
    problem = validation_error(value, schema)
    if problem is not None:
        raise ValueError(f"cannot build a valid value for this schema ({problem})")
    return value


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
        return "a" * int(schema.get("minLength", 0))
    if kind in ("integer", "number"):
        return _number(schema, integer=kind == "integer")
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return None


def _number(schema: dict[str, Any], integer: bool) -> float | int:
    low = schema.get("minimum", -math.inf)
    high = schema.get("maximum", math.inf)
    if "exclusiveMinimum" in schema and isinstance(schema["exclusiveMinimum"], (int, float)):
        low = max(low, schema["exclusiveMinimum"] + (1 if integer else 1e-9))
    if "exclusiveMaximum" in schema and isinstance(schema["exclusiveMaximum"], (int, float)):
        high = min(high, schema["exclusiveMaximum"] - (1 if integer else 1e-9))
    value: float = 0
    if value < low:
        value = low
    if value > high:
        value = high
    if integer:
        value = math.ceil(value) if value == low else math.floor(value)
    step = schema.get("multipleOf")
    if step:
        value = math.ceil(value / step) * step
    return int(value) if integer else value


def compact(schema: dict[str, Any] | None) -> str:
    """A short JSON rendering of a schema for prompts."""
    return json.dumps(schema, separators=(",", ":")) if schema else "no data"
