"""A scripted game client drives the Neuro API server over a real websocket."""

import asyncio
import json
import random

import aiohttp
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from companion.adapters.neuro_api import GameActionFinished, GameActionSent, GameContextReceived, NeuroGameServer
from companion.config import GamesSection
from companion.games.decider import ActionDecider
from companion.games.schema import validation_error
from companion.runtime.bus import EventBus
from companion.testing import ScriptedLLM, eventually
from tests.test_fuzz import json_values, schemas

CELL = {"type": "object", "properties": {"cell": {"type": "integer", "minimum": 1, "maximum": 9}}, "required": ["cell"]}


class Game:
    """A minimal game client speaking the Neuro API."""

    def __init__(self, ws, name="Tic-tac-toe"):
        self.ws, self.name = ws, name

    async def send(self, command, data=None):
        obj = {"command": command, "game": self.name}
        if data is not None:
            obj["data"] = data
        await self.ws.send_str(json.dumps(obj))

    async def recv(self, timeout=5.0):
        msg = await self.ws.receive(timeout=timeout)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        return json.loads(msg.data)

    async def start(self, actions=None):
        await self.send("startup")
        ack = await self.recv()
        await self.send("actions/register", {"actions": actions or [
            {"name": "place", "description": "Place a mark", "schema": CELL},
            {"name": "pass", "description": "Skip"},
        ]})
        return ack

    async def force(self, names=("place", "pass"), priority="low"):
        await self.send("actions/force", {"query": "Your move", "state": "board", "action_names": list(names), "priority": priority})
        action = await self.recv()
        assert action["command"] == "action"
        return action["data"]


@pytest.fixture
async def server():
    started = []

    async def make(replies=('{"action": "place", "data": {"cell": 5}}',), **config):
        bus = EventBus()
        llm = ScriptedLLM(list(replies))
        srv = NeuroGameServer(
            ActionDecider(llm, attempts=2, rng=random.Random(0)),
            GamesSection(port=0, **config),
            bus=bus,
            display_name="Mika",
        )
        await srv.start()
        started.append(srv)
        srv.llm, srv.events = llm, []
        bus.subscribe(GameActionSent, srv.events.append)
        bus.subscribe(GameActionFinished, srv.events.append)
        bus.subscribe(GameContextReceived, srv.events.append)
        return srv

    yield make
    for srv in started:
        await srv.stop()


async def connect(http, srv, name="Tic-tac-toe"):
    ws = await http.ws_connect(f"http://127.0.0.1:{srv.port}/")
    return Game(ws, name)


async def test_full_protocol_round(server):
    """startup is acknowledged; a force gets a valid action with data as a JSON string; the result is recorded."""
    srv = await server()
    async with aiohttp.ClientSession() as http:
        game = await connect(http, srv)
        ack = await game.start()
        assert ack["command"] == "startup" and ack["data"]["session"]["displayName"] == "Mika"
        await game.send("context", {"message": "The game begins", "silent": False})
        action = await game.force()
        assert action["name"] == "place"
        assert isinstance(action["data"], str) and json.loads(action["data"]) == {"cell": 5}
        await game.send("action/result", {"id": action["id"], "success": True, "message": "Placed at 5"})
        await eventually(lambda: any(isinstance(e, GameActionFinished) for e in srv.events), what="the action finishing")
    finished = [e for e in srv.events if isinstance(e, GameActionFinished)]
    assert finished and finished[0].success is True
    assert "The game begins" in srv.llm.prompts[0][1]["content"]


async def test_failed_result_triggers_a_new_choice_with_the_reason(server):
    """success: false makes the companion choose again, told why the action failed."""
    srv = await server(['{"action": "place", "data": {"cell": 5}}', '{"action": "place", "data": {"cell": 1}}'])
    async with aiohttp.ClientSession() as http:
        game = await connect(http, srv)
        await game.start()
        first = await game.force()
        await game.send("action/result", {"id": first["id"], "success": False, "message": "Cell 5 is taken"})
        second = await game.recv()
        assert second["command"] == "action" and json.loads(second["data"]["data"]) == {"cell": 1}
    assert "Cell 5 is taken" in srv.llm.prompts[1][1]["content"]


async def test_result_timeout_and_late_results_are_ignored(server):
    """A result that never comes times out; a late one, or one with an unknown id, changes nothing."""
    srv = await server(result_timeout=0.2)
    async with aiohttp.ClientSession() as http:
        game = await connect(http, srv)
        await game.start()
        action = await game.force()
        await eventually(lambda: any(isinstance(e, GameActionFinished) and e.success is None for e in srv.events),
                         what="the result timing out")
        await game.send("action/result", {"id": action["id"], "success": True})
        await game.send("action/result", {"id": "nonsense", "success": True})
        action2 = await game.force()  # still serving
        assert action2["id"] != action["id"]
    timeouts = [e for e in srv.events if isinstance(e, GameActionFinished) and e.success is None]
    assert len(timeouts) == 1


async def test_context_during_pending_result_is_queued(server):
    """Context arriving while a result is pending is applied only after the result."""
    srv = await server()
    async with aiohttp.ClientSession() as http:
        game = await connect(http, srv)
        await game.start()
        action = await game.force()
        await game.send("context", {"message": "opponent moved", "silent": True})
        await eventually(lambda: any(c.queued_context for c in srv.connections.values()), what="the context being held")
        assert not any(isinstance(e, GameContextReceived) for e in srv.events)
        await game.send("action/result", {"id": action["id"], "success": True})
        await eventually(lambda: any(isinstance(e, GameContextReceived) for e in srv.events), what="the held context applied")
    assert [e.message for e in srv.events if isinstance(e, GameContextReceived)] == ["opponent moved"]


async def test_unregistered_and_unknown_action_names(server):
    """A force naming only unknown actions waits for registration; unregistered actions are never chosen."""
    srv = await server(['{"action": "pass"}'])
    async with aiohttp.ClientSession() as http:
        game = await connect(http, srv)
        await game.start()
        await game.send("actions/unregister", {"action_names": ["place"]})
        action = await game.force(names=("place", "pass"))
        assert action["name"] == "pass" and "data" not in action
        await game.send("action/result", {"id": action["id"], "success": True})
        await game.send("actions/force", {"query": "Use the item", "action_names": ["use_item"]})
        with pytest.raises(asyncio.TimeoutError):
            await game.recv(timeout=0.2)
        await game.send("actions/register", {"actions": [{"name": "use_item", "description": "Use it"}]})
        late = await game.recv()
        assert late["data"]["name"] == "use_item"


async def test_garbage_never_crashes_the_server(server):
    """Malformed JSON, unknown commands, binary and oversized frames are ignored; forces are still answered."""
    srv = await server(max_frame_bytes=4096)
    async with aiohttp.ClientSession() as http:
        game = await connect(http, srv)
        await game.start()
        await game.ws.send_str("{oops")
        await game.send("dance", {})
        await game.ws.send_bytes(b"\x00\x01")
        await game.send("actions/force", {"query": 5})
        action = await game.force()
        assert action["name"] == "place"
        big = await connect(http, srv)
        await big.ws.send_str("x" * 10_000)
        msg = await big.ws.receive(timeout=5)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
        action = await game.force()  # the first game is unaffected
        assert action["name"] == "place"


async def test_client_disconnecting_mid_force_is_cleaned_up(server):
    """A game that leaves during a force leaves no pending state behind."""
    srv = await server()
    async with aiohttp.ClientSession() as http:
        game = await connect(http, srv)
        await game.start()
        await game.force()
        await game.ws.close()
        await eventually(lambda: srv.connections == {}, what="the game's state cleaned up")
    assert srv.connections == {}


async def test_two_games_with_the_same_action_names(server):
    """Two games registering identical action names each get their own actions and results."""
    srv = await server(['{"action": "place", "data": {"cell": 2}}'])
    async with aiohttp.ClientSession() as http:
        a = await connect(http, srv, "Game A")
        b = await connect(http, srv, "Game B")
        await a.start()
        await b.start([{"name": "place", "description": "Place a piece", "schema": CELL}])
        act_a, act_b = await asyncio.gather(a.force(), b.force(names=("place",)))
        assert act_a["name"] == act_b["name"] == "place"
        await a.send("action/result", {"id": act_b["id"], "success": True})  # wrong game's id: ignored
        await b.send("action/result", {"id": act_b["id"], "success": True})
        await eventually(lambda: any(isinstance(e, GameActionFinished) for e in srv.events), what="Game B's action finishing")
    finished = {e.game: e.success for e in srv.events if isinstance(e, GameActionFinished)}
    assert finished == {"Game B": True}


async def test_new_force_replaces_the_old_one(server):
    """Only the newest force is answered."""
    srv = await server(['{"action": "pass"}'])
    srv.decider.llm.token_delay = 0.1
    async with aiohttp.ClientSession() as http:
        game = await connect(http, srv)
        await game.start()
        await game.send("actions/force", {"query": "first", "action_names": ["pass"]})
        await eventually(lambda: bool(srv.llm.prompts), what="the first force being decided")
        await game.send("actions/force", {"query": "second", "action_names": ["pass"]})
        action = await game.recv()
        with pytest.raises(asyncio.TimeoutError):
            await game.recv(timeout=0.4)
    assert action["command"] == "action"
    assert srv.llm.prompts[-1][1]["content"].count("second") == 1


async def test_model_gibberish_still_yields_schema_valid_action(server):
    """Even when the model never answers properly, the game gets a valid action."""
    srv = await server(["blah blah"])
    async with aiohttp.ClientSession() as http:
        game = await connect(http, srv)
        await game.start()
        for _ in range(5):
            action = await game.force(names=("place",))
            assert validation_error(json.loads(action["data"]), CELL) is None
            await game.send("action/result", {"id": action["id"], "success": True})
    sent = [e for e in srv.events if isinstance(e, GameActionSent)]
    assert all(e.fallback for e in sent)


async def test_low_priority_waits_for_the_sentence_high_priority_interrupts():
    """A low force acts after the current sentence; a critical one interrupts the game chatter at once."""
    from companion.runtime.events import SentenceReady

    bus = EventBus()
    interrupted = []
    srv = NeuroGameServer(
        ActionDecider(ScriptedLLM(['{"action": "pass"}'])),
        GamesSection(port=0),
        bus=bus,
        interrupt=interrupted.append,
        is_speaking=lambda: True,
    )
    await srv.start()
    try:
        async with aiohttp.ClientSession() as http:
            game = await connect(http, srv)
            await game.start([{"name": "pass", "description": "Skip"}])
            await game.send("actions/force", {"query": "q", "action_names": ["pass"], "priority": "low"})
            with pytest.raises(asyncio.TimeoutError):
                await game.recv(timeout=0.3)
            bus.publish(SentenceReady("t", 0, "Done talking.", "Done talking."))
            assert (await game.recv())["command"] == "action"
            assert interrupted == []
            action = await game.force(names=("pass",), priority="critical")
            assert action["name"] == "pass"
            assert interrupted == ["game:Tic-tac-toe"]
    finally:
        await srv.stop()


@pytest.mark.parametrize("priority", ["low", "high"])
async def test_a_force_arriving_with_its_context_preempts_the_commentary(settings_for, fake_openai, priority):
    """Context and force in the same instant: the action comes at once, before or through the commentary."""
    from companion.app import build_companion, build_game_server
    from companion.llm.base import Priority
    from companion.runtime.events import TurnEnded

    class GameLLM(ScriptedLLM):
        async def _stream(self, messages, options):
            if options.priority == Priority.FORCED_ACTION:
                self.replies = ['{"action": "place", "data": {"cell": 4}}']
            else:
                self.replies = [" ".join(f"chatter{i}" for i in range(150))]  # about 3 s of commentary
            async for chunk in super()._stream(messages, options):
                yield chunk

    settings = settings_for(fake_openai).model_copy(deep=True)
    settings.games.chattiness = 1.0
    companion = build_companion(settings)
    companion.llm.inner = GameLLM(token_delay=0.02)
    await companion.start()
    ended: list[TurnEnded] = []
    companion.bus.subscribe(TurnEnded, ended.append)
    srv = build_game_server(companion, settings, port=0)
    await srv.start()
    try:
        async with aiohttp.ClientSession() as http:
            game = await connect(http, srv)
            await game.start()
            loop = asyncio.get_running_loop()
            started = loop.time()
            await game.send("context", {"message": "The opponent took the centre.", "silent": False})
            action = await game.force(priority=priority)
            elapsed = loop.time() - started
            assert json.loads(action["data"]) == {"cell": 4}
            assert elapsed < 1.5  # the commentary alone takes about 3 s
            assert max(companion.llm.stats.waits_ms[Priority.FORCED_ACTION]) < 50  # never queued behind it
            await eventually(lambda: any(e.conversation_id.startswith("game:") for e in ended), timeout=10, what="the commentary ending")
            comments = [e for e in ended if e.conversation_id.startswith("game:")]
            # The commentary was either cut off by the force or written after it; never an error.
            assert comments and comments[0].error is None
            await game.ws.close()
    finally:
        await srv.stop()
        await companion.close()


async def test_web_pages_cannot_connect_as_a_game_unless_allowed(server):
    """A browser Origin is refused (native games send none); a configured web game's origin is accepted."""
    srv = await server()
    url = f"http://127.0.0.1:{srv.port}/"
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(url, headers={"Origin": "https://evil.example"})
        assert refused.value.status == 403
        game = await connect(http, srv)  # no Origin: a native game
        assert (await game.start())["command"] == "startup"
        await game.ws.close()
    allowed = await server(allowed_origins=["http://localhost:5173"])
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"http://127.0.0.1:{allowed.port}/", headers={"Origin": "http://localhost:5173"})
        await ws.close()


async def test_deeply_nested_frames_are_refused_without_a_traceback(server, caplog):
    """A 1,500-level nested frame is ignored with one clear line; the connection keeps playing."""
    srv = await server()
    async with aiohttp.ClientSession() as http:
        game = await connect(http, srv)
        await game.start()
        await game.ws.send_str('{"command": "context", "game": "x", "data": ' + "[" * 1500 + "]" * 1500 + "}")
        action = await game.force()
        assert action["name"] in ("place", "pass")
    assert "nested too deeply" in caplog.text
    assert "Traceback" not in caplog.text and "RecursionError" not in caplog.text


BAD_SCHEMAS = {
    "unknown_type": {"type": "object", "properties": {"x": {"type": "vector3"}}, "required": ["x"]},
    "text_bound": {"type": "object", "properties": {"x": {"type": "integer", "minimum": "one"}}, "required": ["x"]},
    "impossible": {"type": "object", "properties": {"x": {"type": "integer", "minimum": 5, "maximum": 1}}, "required": ["x"]},
    "lookahead": {"type": "object", "properties": {"x": {"type": "string", "pattern": "^(?=a)b"}}, "required": ["x"]},
}


@pytest.mark.parametrize("kind", sorted(BAD_SCHEMAS))
async def test_bad_schemas_are_refused_at_registration_and_forces_still_answered(server, caplog, kind):
    """An action whose schema cannot be answered is refused with a log line; a force still gets a valid action."""
    srv = await server(["not json at all"] * 4)
    async with aiohttp.ClientSession() as http:
        game = await connect(http, srv)
        await game.start([
            {"name": "bad", "description": "Broken", "schema": BAD_SCHEMAS[kind]},
            {"name": "place", "description": "Place a mark", "schema": CELL},
        ])
        action = await game.force(names=("bad", "place"))
        assert action["name"] == "place"
        assert validation_error(json.loads(action["data"]), CELL) is None
        # A force naming only the refused action ends with a log line instead of hanging silently.
        await game.send("actions/force", {"query": "Now", "action_names": ["bad"]})
        await eventually(lambda: "names only refused actions" in caplog.text, what="the refused force logged")
    assert "action 'bad' refused" in caplog.text
    assert "names only refused actions" in caplog.text
    assert "Traceback" not in caplog.text


async def test_pattern_schemas_get_matching_fallback_data(server):
    """With a model that never answers validly, a `pattern` string still gets data that matches it."""
    square = {"type": "object", "properties": {"square": {"type": "string", "pattern": "^[a-h][1-8]$"}}, "required": ["square"]}
    srv = await server(["gibberish"] * 4)
    async with aiohttp.ClientSession() as http:
        game = await connect(http, srv)
        await game.start([{"name": "move", "description": "Move a piece", "schema": square}])
        action = await game.force(names=("move",))
    data = json.loads(action["data"])
    assert validation_error(data, square) is None and len(data["square"]) == 2


async def test_lone_surrogates_in_game_context_never_reach_the_model(server):
    """An emoji cut in half (a lone surrogate) and control characters are dropped before the prompt."""
    srv = await server()
    async with aiohttp.ClientSession() as http:
        game = await connect(http, srv)
        await game.start()
        # json.dumps writes the lone surrogate as an escape, exactly as a buggy game would send it.
        await game.send("context", {"message": "Player said hi \ud83d\x07 there", "silent": True})
        await game.force()
    prompt = srv.llm.prompts[0][1]["content"]
    assert "Player said hi  there" in prompt
    prompt.encode("utf-8")  # a lone surrogate would make this raise


game_frames = st.one_of(
    st.text(max_size=200),
    st.builds(lambda c, d: json.dumps({"command": c, "game": "Fuzz", "data": d}),
              st.sampled_from(["startup", "context", "actions/register", "actions/unregister", "action/result", "dance"]), json_values),
    st.lists(st.fixed_dictionaries({"name": st.sampled_from(["a", "b", "place"]), "description": st.text(max_size=10), "schema": schemas}), max_size=3)
    .map(lambda actions: json.dumps({"command": "actions/register", "game": "Fuzz", "data": {"actions": actions}})),
)


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(game_frames, min_size=1, max_size=8))
async def test_game_socket_fuzz_still_answers_forces(server, batch, caplog):
    """After any frames a game may send, a force on a good action is answered with valid data and nothing logs a traceback."""
    srv = await server(["gibberish"] * 4)
    async with aiohttp.ClientSession() as http:
        game = await connect(http, srv, name="Fuzz")
        await game.send("startup")
        await game.recv()
        for frame in batch:
            await game.ws.send_str(frame)
        await game.send("actions/register", {"actions": [{"name": "good", "description": "Fine", "schema": CELL}]})
        await game.send("actions/force", {"query": "Go", "action_names": ["good"]})
        while True:
            msg = await game.recv()
            if msg["command"] == "action" and msg["data"]["name"] == "good":
                break
        assert validation_error(json.loads(msg["data"]["data"]), CELL) is None
    assert "Traceback" not in caplog.text
