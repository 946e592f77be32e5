import json

import pytest

from companion.games.protocol import (
    ActionResult,
    Context,
    ForceAction,
    GameState,
    ProtocolError,
    RegisterActions,
    Startup,
    action_message,
    parse_message,
    startup_ack,
)


def msg(command, data=None, game="Test Game"):
    obj = {"command": command, "game": game}
    if data is not None:
        obj["data"] = data
    return json.dumps(obj)


def test_every_game_command_parses_into_its_type():
    """startup, context, register, unregister, force and result become typed messages."""
    assert parse_message(msg("startup")) == Startup("Test Game")
    assert parse_message(msg("context", {"message": "hi", "silent": True})) == Context("Test Game", "hi", True)
    reg = parse_message(msg("actions/register", {"actions": [{"name": "jump", "description": "Jump", "schema": {}}]}))
    assert isinstance(reg, RegisterActions) and reg.actions[0].schema is None
    force = parse_message(msg("actions/force", {"query": "Go", "action_names": ["jump"], "priority": "critical", "state": "s"}))
    assert force == ForceAction("Test Game", "Go", ("jump",), "s", False, "critical")
    assert parse_message(msg("action/result", {"id": "1", "success": False, "message": "no"})) == ActionResult("Test Game", "1", False, "no")


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        (json.dumps({"command": "startup"}), "'game'"),
        (msg("dance"), "unknown command 'dance'"),
        (msg("context", {"silent": False}), "'message'"),
        (msg("actions/force", {"query": "x", "action_names": ["a"], "priority": "urgent"}), "priority"),
        (msg("action/result", {"id": "1"}), "success"),
        (msg("actions/register", {"actions": [{"description": "no name"}]}), "no 'name'"),
    ],
)
def test_malformed_messages_raise_clear_errors(raw, expected):
    """Each kind of bad frame is rejected with a message naming the problem."""
    with pytest.raises(ProtocolError, match=expected):
        parse_message(raw)


def test_action_data_is_sent_as_a_json_string():
    """The action frame carries data as a JSON-encoded string, as the spec requires."""
    action_id, frame = action_message("place", {"x": 1})
    obj = json.loads(frame)
    assert obj["command"] == "action"
    assert obj["data"]["id"] == action_id and obj["data"]["name"] == "place"
    assert isinstance(obj["data"]["data"], str) and json.loads(obj["data"]["data"]) == {"x": 1}
    assert "data" not in json.loads(action_message("pass", None)[1])["data"]


def test_startup_ack_has_session_fields():
    """The startup acknowledgement carries sessionId, characterId and displayName."""
    session = json.loads(startup_ack("abc", "Mika"))["data"]["session"]
    assert session == {"sessionId": "abc", "characterId": "neuro", "displayName": "Mika"}


def test_state_ignores_duplicate_registrations_and_startup_clears():
    """Re-registering a name keeps the first; startup forgets every action."""
    state = GameState()
    first = parse_message(msg("actions/register", {"actions": [{"name": "a", "description": "first"}]}))
    again = parse_message(msg("actions/register", {"actions": [{"name": "a", "description": "second"}]}))
    state.register(first.actions)
    assert state.register(again.actions) == ([], {})
    assert state.actions["a"].description == "first"
    assert [a.name for a in state.available(("a", "missing"))] == ["a"]
    state.startup("Test Game")
    assert state.actions == {}
