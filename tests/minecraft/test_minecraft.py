"""The bot on a real local Minecraft server (flying-squid) with a scripted player; the companion through a fake OpenAI server."""

import asyncio
import contextlib
import os
import signal

import pytest

from companion.minecraft.adapter import MinecraftAdapter
from companion.minecraft.demo import DEMO_VERSION, PLAYERS_VERSION, LocalServer
from companion.minecraft.process import BotProcess
from companion.testing import eventually, supervised

pytestmark = pytest.mark.slow


def env_for(port: int, version: str = DEMO_VERSION, **extra: str) -> dict[str, str]:
    return {"MC_HOST": "127.0.0.1", "MC_PORT": str(port), "MC_USERNAME": "Mika", "MC_VERSION": version, "MC_RADIUS": "64", **extra}


async def started(port: int, version: str = DEMO_VERSION, **extra: str):
    stop = asyncio.Event()
    events: list[dict] = []
    bot = BotProcess(env_for(port, version, **extra), events.append)
    task = asyncio.create_task(supervised(bot, stop))  # started again when the process dies, as in `companion run`
    await asyncio.wait_for(bot.joined.wait(), 60)
    return bot, stop, task, events


async def test_bot_joins_reports_state_collects_places_and_explains_failures(server):
    """Join, look, dig blocks and place one; unreachable, too far and missing items come back with reasons."""
    bot, stop, task, _events = await started(server.port)
    try:
        look = await bot.skill("look")
        assert look.ok and "health 20/20" in look.text and "inventory: empty" in look.text
        dug = await bot.skill("collect", {"block": "grass_block", "count": 2, "owner": True})
        assert dug.ok and dug.result["picked_up"] == 2, dug
        placed = await bot.skill("place", {"block": "dirt"})
        assert placed.ok, placed
        assert "dirt x1" in (await bot.skill("look")).text
        far = await bot.skill("goto", {"x": 5000, "y": 4, "z": 0})
        assert not far.ok and "limit is 64" in far.reason
        missing = await bot.skill("place", {"block": "diamond_block"})
        assert not missing.ok and "no diamond_block in the inventory" in missing.reason
        craft = await bot.skill("craft", {"item": "crafting_table"})
        assert not craft.ok and "missing ingredients" in craft.reason
        nothing = await bot.skill("collect", {"block": "diamond_ore", "owner": True})
        assert not nothing.ok and "no diamond_ore within 32 blocks" in nothing.reason
        sky = await bot.skill("goto", {"x": 8, "y": 40, "z": 8, "timeout_ms": 8000}, timeout=15)
        assert not sky.ok and "unreachable" in sky.reason, sky  # in the air, nothing to climb with
        nobody = await bot.skill("follow", {"player": "Nobody"})
        assert not nobody.ok and "no player called Nobody" in nobody.reason
    finally:
        stop.set()
        await task


async def test_spawn_is_protected_from_non_owners(server):
    """Breaking blocks near spawn is refused unless the owner asked."""
    bot, stop, task, _ = await started(server.port, MC_PROTECT="10")
    try:
        refused = await bot.skill("collect", {"block": "grass_block", "count": 1, "owner": False})
        assert not refused.ok and "owner only" in refused.reason
        assert (await bot.skill("collect", {"block": "grass_block", "count": 1, "owner": True})).ok
    finally:
        stop.set()
        await task


async def test_follows_a_player_and_a_newer_instruction_interrupts(player_factory):
    """Following a scripted player who teleports away: the bot catches up; `stop` ends it."""
    from tests.minecraft.conftest import need_node

    need_node()
    server = await LocalServer(version=PLAYERS_VERSION).start()
    bot, stop, task, events = await started(server.port, PLAYERS_VERSION)
    try:
        steve = await player_factory(server.port, version=PLAYERS_VERSION)
        await eventually(lambda: any(e["event"] == "player_joined" and e.get("user") == "Steve" for e in events),
                         what="the bot seeing Steve join")
        assert (await bot.skill("follow", {"player": "Steve"})).ok
        me = (await bot.skill("look")).result["position"]
        await steve.send(tp=[me["x"] + 12, 5, me["z"] + 6])

        async def beside_steve() -> bool:
            await steve.send(where=True)
            now = (await bot.skill("look")).result["position"]
            return bool(steve.position) and abs(now["x"] - steve.position["x"]) + abs(now["z"] - steve.position["z"]) < 5

        await eventually(beside_steve, timeout=20, every=0.2, what="the bot following Steve")
        assert (await bot.skill("stop")).ok
    finally:
        stop.set()
        await task
        await server.stop()


async def test_survives_a_server_restart_and_its_own_process_being_killed(server):
    """The server goes away and comes back on the same port: the bot rejoins; the Node child killed: it is restarted."""
    bot, stop, task, events = await started(server.port)
    try:
        await server.stop()
        await eventually(lambda: not bot.joined.is_set(), what="the bot noticing the server is gone")
        restarted = await LocalServer(port=server.port).start()
        server.proc = restarted.proc  # the fixture stops it
        await asyncio.wait_for(bot.joined.wait(), 60)
        assert (await bot.skill("look")).ok
        os.kill(bot.proc.pid, signal.SIGKILL)
        await eventually(lambda: bot.starts == 2, timeout=30, what="the Node child being started again")
        await asyncio.wait_for(bot.joined.wait(), 60)
        assert bot.starts == 2 and (await bot.skill("look")).ok
    finally:
        stop.set()
        await task


@contextlib.asynccontextmanager
async def companion_playing(server, settings_for, fake_openai, **minecraft):
    """The whole companion (fake OpenAI server) joined to the local server through the adapter."""
    from companion.app import build_companion

    settings = settings_for(fake_openai)
    settings.minecraft.port, settings.minecraft.version, settings.minecraft.protect_spawn = server.port, DEMO_VERSION, 0
    for key, value in minecraft.items():
        setattr(settings.minecraft, key, value)
    comp = build_companion(settings)
    await comp.start()
    adapter = MinecraftAdapter(comp, settings)
    stop = asyncio.Event()
    task = asyncio.create_task(adapter.run(stop))
    try:
        await asyncio.wait_for(adapter.bot.joined.wait(), 60)
        yield comp, adapter
    finally:
        stop.set()
        await task
        await comp.close()


async def test_in_game_chat_is_answered_and_acted_on_through_tool_calls(server, player_factory, settings_for, fake_openai):
    """A player's chat goes through the companion; the model (fake OpenAI) calls minecraft_collect; the bot digs; the reply is posted."""
    fake_openai.tool_name, fake_openai.tool_args = "minecraft_collect", '{"block": "grass_block", "count": 1}'
    fake_openai.modes.extend(["tools"])
    # chattiness 0: no commentary on the dirt she picks up, one conversation to check
    async with companion_playing(server, settings_for, fake_openai, chattiness=0) as (comp, adapter):
        steve = await player_factory(server.port)
        await steve.send(chat="Mika, could you dig a grass block for me?")
        await eventually(lambda: any(h["user"] == "Mika" and "Hello there" in h["text"] for h in steve.heard),
                         timeout=30, what="her reply in game chat")
        assert "dirt x1" in (await adapter.bot.skill("look")).text  # the tool call really dug
        tool_messages = [m for r in fake_openai.requests for m in r["messages"] if m.get("role") == "tool"]
        assert any("dug 1 grass_block" in m.get("content", "") for m in tool_messages), tool_messages
        stored = await comp.history.recent("minecraft:chat", 10)
        assert stored[0].speaker_id == "minecraft:Steve"


async def test_embedded_model_path_plans_a_request_without_tool_calls(server, player_factory, settings_for, fake_openai):
    """With a model that cannot call tools, "dig 2 grass" is planned and carried out, and she says what she does."""
    async with companion_playing(server, settings_for, fake_openai) as (comp, adapter):
        comp.llm.inner.supports_tools = False  # as the embedded SmolLM2's chat template
        steve = await player_factory(server.port)
        await adapter.on_chat("Steve", "please dig 2 dirt")
        await asyncio.wait_for(adapter.plan_task, 90)
        assert adapter.history and adapter.history[-1].ok, adapter.history
        await eventually(lambda: any(h["user"] == "Mika" and h["text"].startswith("Digging 2 dirt") for h in steve.heard),
                         what="her saying what she digs")


def test_demo_prints_one_json_object(tmp_path):
    """`companion minecraft demo --json` joins a local server and lists each skill step with ok, reason and ms."""
    import json
    import subprocess
    import sys

    from tests.minecraft.conftest import need_node

    need_node()
    done = subprocess.run([sys.executable, "-m", "companion", "minecraft", "demo", "--json", "--data-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["joined"] is True
    steps = {s["name"]: s for s in out["skills"]}
    assert steps["collect"]["ok"] and steps["place"]["ok"]
    assert not steps["goto"]["ok"] and "limit" in steps["goto"]["reason"]
    assert all({"name", "ok", "reason", "ms"} <= set(s) for s in out["skills"])


async def test_mobs_night_and_time_limits(server):
    """A summoned zombie shows as hostile in `look`; nightfall becomes an event; a fight that cannot end stops at its limit with a reason."""
    bot, stop, task, events = await started(server.port)
    try:
        await bot.skill("say", {"text": "/give Mika oak_log 2"})  # the test world lets everyone run commands
        await bot.skill("say", {"text": "/summon zombie"})

        async def zombie_and_logs() -> bool:
            seen = (await bot.skill("look")).text
            return "zombie (hostile)" in seen and "oak_log x2" in seen

        await eventually(zombie_and_logs, timeout=10, every=0.2, what="the zombie and the logs in `look`")
        fight = await bot.skill("attack", {"timeout_ms": 3000}, timeout=8)
        assert not fight.ok and fight.reason  # flying-squid's zombies cannot be killed: the limit ends it
        await bot.skill("say", {"text": "/time set 13500"})
        await eventually(lambda: any(e["event"] == "night" for e in events), what="the night event")
    finally:
        stop.set()
        await task
