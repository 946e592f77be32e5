import random

import pytest

from companion.games.schema import example_for, refusal, validation_error

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
        example_for({"type": "object", "properties": {"s": {"type": "string", "minLength": 5, "maxLength": 2}}, "required": ["s"]})


@pytest.mark.parametrize("pattern", ["^z+$", r"^[A-H][1-8]$", r"\d{3}-\w+", "^(red|green|blue)$", r"^[^0-9]{2,4}$", r"^(ab)\1$"])
def test_pattern_strings_are_generated_to_match(pattern):
    """Fallback strings match the schema's pattern (and its minLength), whatever the random choices."""
    schema = {"type": "object", "properties": {"s": {"type": "string", "pattern": pattern, "minLength": 1}}, "required": ["s"]}
    for seed in range(20):
        assert validation_error(example_for(schema, random.Random(seed)), schema) is None


def test_refusal_explains_schemas_that_cannot_be_played():
    """refusal() is None for playable schemas and names the problem for broken ones."""
    assert refusal({"type": "object", "properties": {"s": {"type": "string", "pattern": "^a+$"}}}) is None
    assert "not a valid JSON schema" in refusal({"type": "object", "properties": {"s": {"type": "vector"}}})
    assert "not supported" in refusal({"type": "object", "properties": {"s": {"type": "string", "pattern": "(?<=a)b"}}, "required": ["s"]})


def test_fallback_numbers_are_spread_over_the_valid_range():
    """A fallback picks varied valid cells, not the minimum every time (multipleOf respected)."""
    rng = random.Random(1)
    cells = {example_for(SCHEMAS[0], rng)["cell"] for _ in range(60)}
    assert len(cells) >= 6 and cells <= set(range(1, 10))
    steps = {example_for({"type": "integer", "minimum": 0, "maximum": 100, "multipleOf": 25}, rng) for _ in range(40)}
    assert steps <= {0, 25, 50, 75, 100} and len(steps) >= 3


def test_shape_shows_placeholders_not_values():
    """The prompt's format line names types and bounds, so a small model has no value to copy."""
    from companion.games.schema import shape_of

    shape = shape_of(SCHEMAS[0])
    assert shape == '{"cell": <integer 1 to 9>}'
    assert '<one of: "ace", "king">' in shape_of(SCHEMAS[1]) and "(optional)" in shape_of(SCHEMAS[1])
    assert shape_of(None).startswith("none")


def test_bounded_schema_caps_open_strings_and_arrays_without_changing_what_is_valid():
    """Constrained decoding gets length caps; values under them stay valid for the game's own schema."""
    from companion.games.schema import bounded

    schema = {"type": "object", "properties": {
        "taunt": {"type": "string"}, "code": {"type": "string", "minLength": 100}, "mark": {"type": "string", "enum": ["x"]},
        "path": {"type": "array", "items": {"type": "string"}}}, "required": ["taunt"]}
    capped = bounded(schema)
    props = capped["properties"]
    assert props["taunt"]["maxLength"] == 80 and props["code"]["maxLength"] == 100
    assert "maxLength" not in props["mark"]
    assert props["path"]["maxItems"] == 8 and props["path"]["items"]["maxLength"] == 80
    assert "maxLength" not in schema["properties"]["taunt"]  # the game's schema is untouched
    rng = random.Random(3)
    for _ in range(20):
        assert validation_error(example_for(capped, rng), schema) is None
