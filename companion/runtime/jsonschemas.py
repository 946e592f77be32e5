"""JSON Schema checks shared by the games server and memory extraction (both validate model output).

Uses the real ``jsonschema`` library; the messages are short and readable by
a model, which gets them back to correct its answer.
"""

from __future__ import annotations

from typing import Any

from jsonschema import validators
from jsonschema.exceptions import SchemaError

__all__ = ["check_schema", "validation_error"]


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
    try:
        errors = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
    except RecursionError:
        return "data nested too deeply"
    error = next(iter(errors), None)
    if error is None:
        return None
    where = "/".join(str(p) for p in error.path) or "data"
    return f"{where}: {error.message}"
