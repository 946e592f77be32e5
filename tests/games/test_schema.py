import random

import pytest

from companion.games.schema import example_for, validation_error

SCHEMAS = [
    {"type": "object", "properties": {"cell": {"type": "integer", "minimum": 1, "maximum": 9}}, "required": ["cell"]},
    {"type": "object", "properties": {"card": {"enum": ["ace", "king"]}, "note": {"type": "string"}}, "required": ["card"]},
    {"type": "object", "properties": {"xs": {"type": "array", "items": {"type": "number", "exclusiveMinimum": 2}, "minItems": 2}}, "required": ["xs"]},
    {"type": "object", "properties": {"name": {"type": "string", "minLength": 3}, "ok": {"type": "boolean"}}, "required": ["name", "ok"]},
    {"type": "object", "properties": {"pos": {"type": "object", "properties": {"x": {"type": "integer", "minimum": 5}}, "required": ["x"]}}, "required": ["pos"]},
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_fallback_values_validate(schema):
    """The generated fallback value satisfies its schema, whatever the seed."""
    for seed in range(5):
        value = example_for(schema, random.Random(seed))
        assert validation_error(value, schema) is None


def test_validation_errors_name_the_field():
    """A wrong value is reported with its path, so the model can correct it."""
    problem = validation_error({"cell": 12}, SCHEMAS[0])
    assert problem is not None and problem.startswith("cell:")
    assert "required" in validation_error({}, SCHEMAS[0])


def test_actions_without_schema_take_no_data():
    """An action without a schema accepts no data and generates none."""
    assert validation_error(None, None) is None
    assert validation_error({"x": 1}, None) is not None
    assert example_for(None) is None


def test_unsatisfiable_schema_is_reported():
    """A schema no generated value can meet raises ValueError instead of sending junk."""
    with pytest.raises(ValueError):
        example_for({"type": "object", "properties": {"s": {"type": "string", "pattern": "^z+$", "minLength": 1}}, "required": ["s"]})
