"""Property tests: whatever a game, a config file or a card holds, the answer is a clean error or a valid result."""

import json
import random

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from companion.character.cards import CardError, placeholder_png, write_png_card
from companion.character.persona import load_character
from companion.config import ConfigError, load_settings
from companion.games.protocol import GameState, ProtocolError, parse_message
from companion.games.schema import example_for, refusal, validation_error

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)

# JSON-schema-like objects built from the keywords games use, with wrong types mixed in.
KEYWORDS = ["type", "properties", "required", "enum", "const", "minimum", "maximum", "exclusiveMinimum", "multipleOf",
            "minLength", "maxLength", "pattern", "items", "minItems", "maxItems", "uniqueItems", "anyOf", "oneOf", "allOf"]
type_names = st.sampled_from(["object", "string", "integer", "number", "boolean", "array", "null", "vector3", 7])
leaf_schema = st.fixed_dictionaries(
    {"type": type_names},
    optional={
        "minimum": st.one_of(st.integers(-5, 20), st.text(max_size=3)), "maximum": st.integers(-5, 20),
        "minLength": st.integers(0, 6), "maxLength": st.integers(0, 6),
        "pattern": st.sampled_from(["^[a-c]{2}$", r"\d+", "^(x|y)$", "(?=a)", "[", "^[^a-z]$", "a{2,}"]),
        "enum": st.lists(json_values, min_size=1, max_size=3), "multipleOf": st.sampled_from([0.5, 2, 3, -1]),
    },
)
schemas = st.recursive(
    leaf_schema,
    lambda inner: st.fixed_dictionaries(
        {"type": st.just("object"), "properties": st.dictionaries(st.sampled_from("abcd"), inner, max_size=3)},
        optional={"required": st.lists(st.sampled_from("abcde"), max_size=3)},
    ) | st.fixed_dictionaries({"type": st.just("array"), "items": inner}, optional={"minItems": st.integers(0, 3), "maxItems": st.integers(0, 3)}),
    max_leaves=6,
)


@hsettings(max_examples=300, deadline=None)
@given(schema=schemas, seed=st.integers(0, 2**16))
def test_registered_schemas_always_get_valid_data(schema, seed):
    """A schema is either refused with a reason at registration, or every fallback built for it validates."""
    problem = refusal(schema)
    if problem is None:
        assert validation_error(example_for(schema, random.Random(seed)), schema) is None
    else:
        assert isinstance(problem, str) and problem


@hsettings(max_examples=300, deadline=None)
@given(data=st.one_of(
    st.text(max_size=200),
    json_values.map(json.dumps),
    st.fixed_dictionaries({"command": st.sampled_from(["startup", "context", "actions/register", "actions/unregister", "actions/force", "action/result", "x"]),
                           "game": st.text(max_size=5)}, optional={"data": json_values}).map(json.dumps),
))
def test_any_game_frame_parses_or_is_a_protocol_error(data):
    """Any text frame from a game becomes a message or a ProtocolError; registering it never raises."""
    try:
        message = parse_message(data)
    except ProtocolError:
        return
    if hasattr(message, "actions"):
        GameState().register(message.actions)


@hsettings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(
    st.text(max_size=300),
    st.lists(st.tuples(st.sampled_from(["llm", "web", "voice", "games", "memory", "llm.openai", "bogus"]),
                       st.sampled_from(["provider", "port", "max_tokens", "enabled", "host", "x", "api_key_env"]),
                       json_values), max_size=6)
    .map(lambda rows: "\n".join(f"[{s}]\n{k} = {json.dumps(v)}" for s, k, v in rows)),
))
def test_any_config_file_loads_or_is_a_config_error(tmp_path_factory, text):
    """Garbage, wrong types and unknown keys in companion.toml give a ConfigError, never another exception."""
    path = tmp_path_factory.mktemp("cfg") / "companion.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_settings(path)
    except ConfigError as exc:
        assert str(exc)


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(card=st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.sampled_from(["spec", "spec_version", "data", "name", "description", "first_mes", "character_book"]),
                    json_values, max_size=5).map(lambda d: json.dumps(d).encode()),
), as_png=st.booleans())
def test_any_card_loads_or_is_a_card_error(tmp_path_factory, card, as_png):
    """Random bytes, JSON of any shape and odd card fields, as .json or inside a PNG: a character or a CardError."""
    folder = tmp_path_factory.mktemp("card")
    if as_png:
        try:
            obj = json.loads(card)
        except ValueError:
            obj = None
        if not isinstance(obj, dict):
            return
        path = folder / "card.png"
        path.write_bytes(write_png_card(placeholder_png(), obj))
    else:
        path = folder / "card.json"
        path.write_bytes(card)
    try:
        character = load_character(path)
    except CardError as exc:
        assert str(exc)
    else:
        assert isinstance(character.name, str)
