"""JSON-schema constrained decoding for the local transformers model.

A logits processor masks every token that cannot continue a string valid for
the schema, so even a 135M model produces parseable JSON with the right keys,
types and enum values (numeric bounds are not enforced by the parser: small
integer ranges become enums here, anything else is left to the caller's
validation). The
character-level parsing is lm-format-enforcer's (``lmformatenforcer``); its
transformers integration module does not import under transformers 5, so the
small bridge to the tokenizer lives here. The tokenizer table costs a second or
two to build and is cached per tokenizer.
"""

from __future__ import annotations

import logging
from typing import Any

from companion.llm.base import LLMError

log = logging.getLogger(__name__)

# id(tokenizer) -> (tokenizer, table); the tokenizer is kept so its id cannot be reused.
_TABLES: dict[int, tuple[Any, Any]] = {}


def _import() -> Any:
    try:
        import lmformatenforcer
    except ImportError:
        raise LLMError(
            "constrained JSON output for the local model needs lm-format-enforcer: pip install 'companion[local-llm]'"
        ) from None
    return lmformatenforcer


def tokenizer_table(tokenizer: Any) -> Any:
    """lm-format-enforcer's view of the vocabulary: each token's text and whether it starts a word."""
    key = id(tokenizer)
    if key in _TABLES:
        return _TABLES[key][1]
    _import()
    from lmformatenforcer.tokenenforcer import TokenEnforcerTokenizerData

    size = len(tokenizer)
    special = set(tokenizer.all_special_ids)
    anchor = tokenizer.encode("0", add_special_tokens=False)[-1]
    tokens = []
    for token_id in range(size):
        if token_id in special:
            continue
        # Decoding after an anchor token keeps a leading space that decoding alone would drop.
        with_anchor = tokenizer.decode([anchor, token_id])[1:]
        alone = tokenizer.decode([token_id])
        tokens.append((token_id, with_anchor, len(with_anchor) > len(alone)))

    def decode(ids: list[int]) -> str:
        return tokenizer.decode(ids).rstrip("\ufffd")

    table = TokenEnforcerTokenizerData(tokens, decode, tokenizer.eos_token_id, False, size)
    _TABLES[key] = (tokenizer, table)
    return table


def tighten(schema: Any, limit: int = 64) -> Any:
    """Turn small integer ranges into enums, which the character-level parser does enforce.

    lm-format-enforcer checks types, enums and required keys but not numeric
    bounds; for the small ranges games use (a cell, a card index) an enum is exact.
    """
    if isinstance(schema, list):
        return [tighten(s, limit) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: tighten(v, limit) for k, v in schema.items()}
    low, high = schema.get("minimum"), schema.get("maximum")
    if (
        schema.get("type") == "integer"
        and "enum" not in schema
        and isinstance(low, int)
        and isinstance(high, int)
        and 0 <= high - low < limit
    ):
        out["enum"] = list(range(low, high + 1))
    return out


def json_schema_of(response_format: dict[str, Any] | None) -> dict[str, Any] | None:
    """The JSON schema inside an OpenAI-style ``response_format`` (None when it asks for none)."""
    if not response_format:
        return None
    kind = response_format.get("type")
    if kind == "json_schema":
        return (response_format.get("json_schema") or {}).get("schema") or {}
    if kind == "json_object":
        return {"type": "object"}
    return None


def logits_processor(tokenizer: Any, schema: dict[str, Any], prompt_length: int) -> Any:
    """A transformers LogitsProcessor that only lets schema-valid JSON through."""
    _import()
    import torch
    import transformers
    from lmformatenforcer import CharacterLevelParserConfig, JsonSchemaParser, TokenEnforcer

    config = CharacterLevelParserConfig(max_consecutive_whitespaces=1)
    table = tokenizer_table(tokenizer)
    enforcer = TokenEnforcer(table, JsonSchemaParser(tighten(schema), config=config))
    # JSON never needs whitespace, and a small model otherwise spends its token budget
    # on blank lines and runs of spaces inside the object: only single spaces are kept.
    spaces = {tid for tid, text, _ in table.regular_tokens if text.strip() == ""}
    blank = {tid for tid in spaces if tokenizer.decode([tid]) != " "}

    class _SchemaLogits(transformers.LogitsProcessor):
        def __call__(self, input_ids: Any, scores: Any) -> Any:
            mask = torch.full_like(scores, float("-inf"))
            for row in range(input_ids.shape[0]):
                generated = input_ids[row, prompt_length:].tolist()
                allowed = enforcer.get_allowed_tokens(generated).allowed_tokens
                banned = spaces if generated and generated[-1] in spaces else blank
                useful = [t for t in allowed if t not in banned]
                mask[row, useful or allowed] = 0
            return scores + mask

    return _SchemaLogits()
