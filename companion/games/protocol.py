"""The Neuro game API, sans I/O: parse what games send, build what we send back.

Games are websocket clients sending ``{command, game, data}``; we answer with
``{command, data}``. Everything here is pure so the protocol is tested without
sockets, and every malformed input becomes a ``ProtocolError`` with a message a
game developer can act on.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from companion.games.schema import refusal
from companion.runtime import safejson
from companion.text.chunking import clean_input

__all__ = [
    "ProtocolError",
    "Action",
    "Startup",
    "Context",
    "RegisterActions",
    "UnregisterActions",
    "ForceAction",
    "ActionResult",
    "GameMessage",
    "parse_message",
    "action_message",
    "startup_ack",
    "PRIORITIES",
]

PRIORITIES = ("low", "medium", "high", "critical")


class ProtocolError(ValueError):
    """A message that breaks the spec; the text says what and where."""


@dataclass(frozen=True, slots=True)
class Action:
    name: str
    description: str
    schema: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Startup:
    game: str


@dataclass(frozen=True, slots=True)
class Context:
    game: str
    message: str
    silent: bool


@dataclass(frozen=True, slots=True)
class RegisterActions:
    game: str
    actions: tuple[Action, ...]


@dataclass(frozen=True, slots=True)
class UnregisterActions:
    game: str
    action_names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ForceAction:
    game: str
    query: str
    action_names: tuple[str, ...]
    state: str | None = None
    ephemeral_context: bool = False
    priority: str = "low"


@dataclass(frozen=True, slots=True)
class ActionResult:
    game: str
    id: str
    success: bool
    message: str | None = None


GameMessage = Startup | Context | RegisterActions | UnregisterActions | ForceAction | ActionResult


def parse_message(raw: str | bytes) -> GameMessage:
    """Turn one text frame into a typed message, or raise ProtocolError."""
    if isinstance(raw, bytes):
        raise ProtocolError("frames must be text (JSON), not binary")
    try:
        obj = safejson.loads(raw)
    except safejson.JSONInputError as exc:
        raise ProtocolError(str(exc)) from None
    if not isinstance(obj, dict):
        raise ProtocolError("a message must be a JSON object with 'command' and 'game'")
    command = obj.get("command")
    if not isinstance(command, str):
        raise ProtocolError("'command' is missing or not a string")
    game = obj.get("game")
    if not isinstance(game, str) or not game:
        raise ProtocolError(f"{command}: 'game' is missing or not a string")
    data = obj.get("data")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ProtocolError(f"{command}: 'data' must be an object")

    if command == "startup":
        return Startup(game)
    if command == "context":
        message = clean_input(_str(data, "message", command))
        silent = data.get("silent", False)
        if not isinstance(silent, bool):
            raise ProtocolError("context: 'silent' must be true or false")
        return Context(game, message, silent)
    if command == "actions/register":
        actions = data.get("actions")
        if not isinstance(actions, list):
            raise ProtocolError("actions/register: 'actions' must be a list")
        return RegisterActions(game, tuple(_action(a, i) for i, a in enumerate(actions)))
    if command == "actions/unregister":
        return UnregisterActions(game, _names(data, command))
    if command == "actions/force":
        priority = data.get("priority", "low")
        if priority not in PRIORITIES:
            raise ProtocolError(f"actions/force: 'priority' must be one of {', '.join(PRIORITIES)}, got {priority!r}")
        state = data.get("state")
        if state is not None and not isinstance(state, str):
            state = json.dumps(state)  # lenient: some games send an object
        ephemeral = data.get("ephemeral_context", False)
        return ForceAction(
            game,
            query=clean_input(_str(data, "query", command)),
            action_names=_names(data, command),
            state=clean_input(state) if state is not None else None,
            ephemeral_context=bool(ephemeral),
            priority=priority,
        )
    if command == "action/result":
        action_id = data.get("id")
        if not isinstance(action_id, str):
            raise ProtocolError("action/result: 'id' is missing or not a string")
        success = data.get("success")
        if not isinstance(success, bool):
            raise ProtocolError("action/result: 'success' must be true or false")
        text = data.get("message")
        return ActionResult(game, action_id, success, text if isinstance(text, str) else None)
    raise ProtocolError(f"unknown command {command!r}")


def _str(data: dict[str, Any], key: str, command: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise ProtocolError(f"{command}: '{key}' is missing or not a string")
    return value


def _names(data: dict[str, Any], command: str) -> tuple[str, ...]:
    names = data.get("action_names")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ProtocolError(f"{command}: 'action_names' must be a list of strings")
    return tuple(names)


def _action(obj: Any, index: int) -> Action:
    if not isinstance(obj, dict):
        raise ProtocolError(f"actions/register: action #{index} must be an object")
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        raise ProtocolError(f"actions/register: action #{index} has no 'name'")
    description = obj.get("description", "")
    if not isinstance(description, str):
        raise ProtocolError(f"actions/register: action {name!r}: 'description' must be a string")
    schema = obj.get("schema")
    if schema is not None:
        if not isinstance(schema, dict):
            raise ProtocolError(f"actions/register: action {name!r}: 'schema' must be a JSON schema object")
        if schema == {}:
            schema = None  # an empty schema means "no parameters", as in the SDKs
    return Action(name, clean_input(description), schema)


def action_message(name: str, data: Any | None, action_id: str | None = None) -> tuple[str, str]:
    """The ``action`` frame for a game; ``data`` is sent as a JSON-encoded string. Returns (id, frame)."""
    action_id = action_id or uuid.uuid4().hex
    payload: dict[str, Any] = {"id": action_id, "name": name}
    if data is not None:
        payload["data"] = json.dumps(data)
    return action_id, json.dumps({"command": "action", "data": payload})


def startup_ack(session_id: str, display_name: str) -> str:
    """The session acknowledgement sent in reply to ``startup``."""
    return json.dumps(
        {
            "command": "startup",
            "data": {"session": {"sessionId": session_id, "characterId": "neuro", "displayName": display_name}},
        }
    )


@dataclass
class GameState:
    """What one connected game has told us: its actions and recent context."""

    game: str = ""
    actions: dict[str, Action] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)  # action name -> why it cannot be played
    context: list[str] = field(default_factory=list)
    max_context: int = 30

    def startup(self, game: str) -> None:
        self.game = game
        self.actions.clear()
        self.refused.clear()

    def register(self, actions: tuple[Action, ...]) -> tuple[list[str], dict[str, str]]:
        """Add new actions; duplicates are ignored as the spec says.

        Returns the names added and the actions refused (name -> why): an action
        whose schema we cannot always answer is never offered to the model.
        """
        added = []
        refused: dict[str, str] = {}
        for action in actions:
            if action.name in self.actions:
                continue
            problem = refusal(action.schema)
            if problem is not None:
                refused[action.name] = problem
                continue
            self.refused.pop(action.name, None)
            self.actions[action.name] = action
            added.append(action.name)
        self.refused.update(refused)
        return added, refused

    def unregister(self, names: tuple[str, ...]) -> None:
        for name in names:
            self.actions.pop(name, None)
            self.refused.pop(name, None)

    def add_context(self, message: str) -> None:
        self.context.append(message)
        del self.context[: -self.max_context]

    def available(self, names: tuple[str, ...]) -> list[Action]:
        """The force's actions that are registered (a force may name unknown ones)."""
        return [self.actions[n] for n in names if n in self.actions]
