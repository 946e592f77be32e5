"""Choosing a game action with the LLM, always ending in a schema-valid choice.

Order of defences: constrained decoding where the provider offers it
(``response_format`` JSON schema on OpenAI-compatible servers), then
validation of whatever came back with the error fed to the model for another
try, and after the last try a generated valid choice, so a game never hangs
waiting for a model that cannot follow instructions.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from dataclasses import dataclass, field, replace
from typing import Any

from companion.games.protocol import Action
from companion.games.schema import bounded, compact, example_for, shape_of, validation_error
from companion.llm.base import LLM, GenerationOptions, LLMError, LLMHTTPError, Priority
from companion.text.chunking import first_json_object

log = logging.getLogger(__name__)

__all__ = ["ActionDecider", "Decision", "parse_choice"]

STRUCTURED_PROVIDERS = ("openai", "transformers", "llamacpp")  # take a response_format JSON schema


@dataclass(slots=True)
class Decision:
    name: str
    data: Any
    attempts: int  # LLM answers used
    fallback: bool  # True when no valid answer came and the choice was generated
    first_try_valid: bool
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0


def parse_choice(text: str) -> tuple[str | None, Any, str | None]:
    """Read ``{"action": name, "data": {...}}`` from model text; returns (name, data, problem)."""
    obj = first_json_object(text)
    if obj is None:
        return None, None, 'no JSON object found; reply with {"action": "<name>", "data": {...}} only'
    name = obj.get("action", obj.get("name"))
    if not isinstance(name, str):
        return None, None, "the JSON has no \"action\" name"
    data = obj.get("data", obj.get("arguments"))
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError:
            pass
    return name, data, None


class ActionDecider:
    """Asks the LLM to pick one of a force's actions, with valid data."""

    def __init__(
        self,
        llm: LLM,
        *,
        character: str = "the AI",
        attempts: int = 3,
        timeout: float = 15.0,
        max_tokens: int = 160,
        temperature: float = 1.0,
        rng: random.Random | None = None,
    ) -> None:
        self.llm = llm
        self.character = character
        self.attempts = max(1, attempts)
        self.timeout = timeout
        self.max_tokens = max_tokens
        # Sampled, not greedy: the schema keeps every answer valid, and a game wants varied moves.
        self.temperature = temperature
        self.rng = rng or random.Random()
        self._structured = True  # turned off once a server rejects response_format

    async def decide(
        self,
        game: str,
        actions: list[Action],
        *,
        query: str,
        state: str | None = None,
        context: list[str] | tuple[str, ...] = (),
        feedback: str | None = None,
    ) -> Decision:
        if not actions:
            raise ValueError("decide() needs at least one action")
        started = time.perf_counter()
        messages = self._prompt(game, actions, query, state, context, feedback)
        by_name = {a.name: a for a in actions}
        problems: list[str] = []
        attempts = 0
        try:
            async with asyncio.timeout(self.timeout):
                while attempts < self.attempts:
                    attempts += 1
                    text = await self._ask(messages, actions)
                    name, data, problem = parse_choice(text)
                    if problem is None and name not in by_name:
                        problem = f"{name!r} is not one of the actions you can take now: {', '.join(by_name)}"
                    if problem is None:
                        schema = by_name[name].schema  # type: ignore[index]
                        if schema is None and data in (None, {}):
                            data = None
                        problem = validation_error(data, schema)
                    if problem is None:
                        return Decision(name, data, attempts, False, attempts == 1, problems, time.perf_counter() - started)  # type: ignore[arg-type]
                    problems.append(problem)
                    messages = messages + [
                        {"role": "assistant", "content": text[:2000]},
                        {"role": "user", "content": f"That is not valid: {problem}. Reply again with the JSON only."},
                    ]
        except TimeoutError:
            problems.append(f"no valid answer within {self.timeout:g} s")
        except LLMError as exc:
            problems.append(f"LLM error: {exc}")
        return self._fallback(actions, attempts, problems, started)

    def _fallback(self, actions: list[Action], attempts: int, problems: list[str], started: float) -> Decision:
        options = list(actions)
        self.rng.shuffle(options)
        for action in options:
            try:
                data = example_for(action.schema, self.rng)
            except ValueError as exc:
                problems.append(f"{action.name}: {exc}")
                continue
            log.info("game: no valid choice from the model (%s); falling back to %s", "; ".join(problems[-2:]), action.name)
            return Decision(action.name, data, attempts, True, False, problems, time.perf_counter() - started)
        # Nothing buildable: send the first action with empty data rather than hang the game.
        return Decision(actions[0].name, {}, attempts, True, False, problems, time.perf_counter() - started)

    async def _ask(self, messages: list[dict[str, Any]], actions: list[Action]) -> str:
        options = GenerationOptions(max_tokens=self.max_tokens, temperature=self.temperature, priority=Priority.FORCED_ACTION)
        if self._structured and self.llm.name.split("+")[0] in STRUCTURED_PROVIDERS:  # a fallback chain: its first
            options = replace(options, response_format=_response_format(actions))
        try:
            return "".join([c.text async for c in self.llm.stream(messages, options)])
        except LLMHTTPError as exc:
            if options.response_format is not None and exc.status in (400, 422):
                log.info("game: the LLM server rejected structured output; validating answers instead")
                self._structured = False
                return await self._ask(messages, actions)
            raise

    def _prompt(
        self,
        game: str,
        actions: list[Action],
        query: str,
        state: str | None,
        context: list[str] | tuple[str, ...],
        feedback: str | None,
    ) -> list[dict[str, Any]]:
        system = (
            f"You are {self.character}, playing the video game \"{game}\". When asked to act, reply with exactly one "
            'JSON object and nothing else: {"action": "<action name>", "data": {...}} where data follows the '
            "action's schema (omit data when the action takes none)."
        )
        lines = []
        if context:
            lines.append("Recent events:\n" + "\n".join(f"- {c}" for c in context[-12:]))
        if state:
            lines.append(f"Current state:\n{state}")
        lines.append(f"Task: {query}")
        if feedback:
            lines.append(f"Your previous action failed: {feedback}")
        lines.append(
            "Actions you can take now:\n"
            + "\n".join(f"- {a.name}: {a.description or 'no description'}{_extra_rules(a.schema)}" for a in actions)
        )
        # The format as placeholders, never as values: a small model copies an example's
        # values every time (always the same cell, always the first option).
        lines.append(
            "Answer with JSON of this shape, choosing the values yourself: "
            '{"action": "<one of: ' + ", ".join(a.name for a in actions) + '>", "data": <see below>}\n'
            + "\n".join(f"- data for {a.name}: {shape_of(a.schema, rng=self.rng)}" for a in actions)
        )
        return [{"role": "system", "content": system}, {"role": "user", "content": "\n\n".join(lines)}]


_RULES_THE_SHAPE_OMITS = ('"pattern"', '"format"', '"multipleOf"', "Length", '"uniqueItems"', '"exclusiveM', '"allOf"', '"not"')


def _extra_rules(schema: dict[str, Any] | None) -> str:
    """The raw schema, only when it has rules the placeholder shape cannot show (its numbers would be copied)."""
    text = compact(schema)
    return f" Data schema: {text}" if any(rule in text for rule in _RULES_THE_SHAPE_OMITS) else ""


def _response_format(actions: list[Action]) -> dict[str, Any]:
    options = []
    for action in actions:
        props: dict[str, Any] = {"action": {"type": "string", "enum": [action.name]}}
        required = ["action"]
        if action.schema:
            props["data"] = bounded(action.schema)  # no endless strings under the grammar
            required.append("data")
        options.append({"type": "object", "properties": props, "required": required})
    schema = options[0] if len(options) == 1 else {"anyOf": options}
    return {"type": "json_schema", "json_schema": {"name": "game_action", "schema": schema}}
