"""The avatar adapter: lip sync from the audio being heard, emotions and states as hotkeys, reconnection."""

import asyncio
import logging

import numpy as np
import pytest

from companion.avatar.avatar import Avatar
from companion.config import AvatarSection
from companion.core.audio_level import AudioLevel
from companion.runtime.bus import EventBus
from companion.runtime.events import AdapterStatus, EmotionCue, TurnStarted
from companion.runtime.supervisor import HealthBoard, Supervisor
from companion.testing import VirtualClock, eventually
from companion.voice.playback import PacedOutput, PlaybackBuffer
from tests.fakes_vts import FakeVTS


@pytest.fixture
async def vts():
    server = await FakeVTS().start()
    yield server
    await server.stop()


async def start(vts, tmp_path, clock: VirtualClock | None = None, **cfg):
    bus = EventBus()
    level = AudioLevel(clock=clock) if clock is not None else AudioLevel()
    avatar = Avatar(
        AvatarSection(enabled=True, **cfg), bus, level, token_path=tmp_path / "tok", url=vts.url,
        **({"sleep": clock.sleep} if clock is not None else {}),
    )
    supervisor = Supervisor(HealthBoard().attach(bus), first_delay=0.1)  # as `companion run` runs it: reconnects are its
    supervisor.start(avatar)
    task = asyncio.create_task(supervisor.done())
    await asyncio.wait_for(avatar.connected.wait(), 5)
    return avatar, bus, level, supervisor.stop_event, task


def tone(seconds: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * 220 * t) * 0.3).astype(np.float32)


async def received(vts, avatar) -> None:
    """Wait until VTube Studio has every injection the avatar sent (the websocket runs in real time)."""
    await eventually(lambda: len(vts.injections) >= avatar.injections, what="VTube Studio getting every injection")


async def paced(clock: VirtualClock, level: AudioLevel) -> tuple[PlaybackBuffer, PacedOutput]:
    buffer = PlaybackBuffer(16000, level=level, clock=clock)
    output = PacedOutput(buffer, realtime=True, clock=clock, sleep=clock.sleep)
    output.start()
    return buffer, output


async def test_mouth_follows_played_audio_at_the_configured_rate_and_closes_after(vts, tmp_path):
    """While audio plays, MouthOpen is injected at lipsync_hz and opens; after it ends the mouth is closed."""
    clock = VirtualClock()
    avatar, bus, level, stop, task = await start(vts, tmp_path, clock, lipsync_hz=40)
    buffer, output = await paced(clock, level)
    await clock.advance(0.3)
    await received(vts, avatar)
    sent_before = avatar.injections
    buffer.push(0, "la la la", tone(1.0), 16000, final=True)
    await clock.advance(1.0)  # one second of audio, played on the virtual clock
    await received(vts, avatar)
    during = [v for _, v in vts.injections[sent_before:]]
    await clock.advance(0.4)
    await received(vts, avatar)
    after = vts.injections[-1][1]
    await output.close()
    stop.set()
    await task
    assert abs(len(during) - 40) <= 1, len(during)  # 40 per second of audio
    assert max(v["MouthOpen"] for v in during) > 0.5
    assert after["MouthOpen"] == 0.0


async def test_mouth_closes_when_the_reply_is_interrupted(vts, tmp_path):
    """A barge-in (buffer cleared) closes the mouth within 150 ms."""
    clock = VirtualClock()
    avatar, bus, level, stop, task = await start(vts, tmp_path, clock, lipsync_hz=30)
    buffer, output = await paced(clock, level)
    buffer.push(0, "long reply", tone(3.0), 16000, final=True)
    await clock.advance(0.5)
    await received(vts, avatar)
    assert vts.injections[-1][1]["MouthOpen"] > 0
    buffer.clear()
    await clock.advance(0.15)
    await received(vts, avatar)
    assert vts.injections[-1][1]["MouthOpen"] == 0.0
    await output.close()
    stop.set()
    await task


async def test_idle_parameters_are_resent_at_least_once_a_second(vts, tmp_path):
    """With nothing playing, MouthOpen is still re-sent well within VTube Studio's one-second limit."""
    clock = VirtualClock()
    avatar, bus, level, stop, task = await start(vts, tmp_path, clock)
    sent = []
    for _ in range(22):  # 2.2 s in steps of 100 ms
        await clock.advance(0.1)
        sent.append(avatar.injections)
    await received(vts, avatar)
    stop.set()
    await task
    changes = [i for i in range(1, len(sent)) if sent[i] > sent[i - 1]]
    assert len(changes) >= 3 and max(b - a for a, b in zip([0, *changes], changes)) < 10  # a re-send in every second


async def test_emotions_and_states_trigger_hotkeys(vts, tmp_path):
    """[happy] triggers the model's Smile hotkey by name; a mapped state triggers its hotkey; busy errors are absorbed."""
    avatar, bus, level, stop, task = await start(vts, tmp_path, states={"thinking": "Think pose"}, emotions={"sad": "Cry"})
    bus.publish(EmotionCue("t1", "happy"))
    bus.publish(TurnStarted("t1", "c", "alice"))
    await eventually(lambda: {"hk-smile", "hk-think"} <= set(vts.triggered), what="the Smile and Think hotkeys")
    vts.hotkey_errors = [200]  # HotkeyQueueFull: skipped quietly
    bus.publish(EmotionCue("t2", "sad"))
    await eventually(lambda: not vts.hotkey_errors, what="the refused hotkey request")  # it reached VTube Studio...
    assert "hk-cry" not in vts.triggered  # ...and was not retried
    avatar._last_trigger.clear()  # noqa: SLF001 - past the cooldown
    bus.publish(EmotionCue("t3", "sad"))
    await eventually(lambda: "hk-cry" in vts.triggered, what="the Cry hotkey")
    assert vts.triggered.count("hk-cry") == 1
    stop.set()
    await task


async def test_param_controlled_by_another_plugin_is_reported_once(vts, tmp_path, caplog):
    """Error 454 on injection gives one clear warning, not one per frame."""
    vts.inject_error = 454
    caplog.set_level(logging.WARNING)
    clock = VirtualClock()
    avatar, bus, level, stop, task = await start(vts, tmp_path, clock, lipsync_hz=30)
    for _ in range(30):  # 3 s of keep-alive injections, each refused
        await clock.advance(0.1)
    await eventually(lambda: avatar.injections_answered >= avatar.injections, what="VTube Studio answering every injection")
    assert avatar.injections_answered >= 3
    stop.set()
    await task
    warnings = [r for r in caplog.records if "another plugin" in r.getMessage()]
    assert len(warnings) == 1


async def test_reconnects_reauthenticates_and_resubscribes(vts, tmp_path):
    """VTube Studio closing and reopening: the avatar comes back with the stored token and its subscriptions."""
    avatar, bus, level, stop, task = await start(vts, tmp_path)
    statuses = []
    bus.subscribe(AdapterStatus, lambda e: statuses.append(e.state))
    assert vts.subscriptions == ["ModelLoadedEvent"]
    port = vts.port
    await vts.stop()
    await eventually(lambda: not avatar.connected.is_set(), what="the avatar noticing VTube Studio closed")
    vts.port = port
    await vts.start()
    await asyncio.wait_for(avatar.connected.wait(), 5)
    assert vts.token_requests == 1 and vts.subscriptions == ["ModelLoadedEvent", "ModelLoadedEvent"]
    assert "reconnecting" in statuses and statuses[-1] == "connected"
    vts.hotkeys = vts.hotkeys + [{"name": "Blush", "type": "ToggleExpression", "file": "blush.exp3.json", "hotkeyID": "hk-blush"}]
    await vts.emit("ModelLoadedEvent", {"modelLoaded": True, "modelName": "Other"})
    await eventually(lambda: "embarrassed" in avatar.emotion_map, what="the new model's hotkeys read")
    assert avatar.emotion_map["embarrassed"].hotkey_id == "hk-blush"
    stop.set()
    await task


async def test_in_a_group_each_model_moves_its_mouth_for_its_own_character_only(tmp_path):
    """Two characters, two VTube Studio models: while Kai speaks only Kai's mouth opens, then only Luna's."""
    clock = VirtualClock()
    bus, level = EventBus(), AudioLevel(clock=clock)
    servers = [await FakeVTS().start(), await FakeVTS().start()]
    avatars = [
        Avatar(AvatarSection(enabled=True, lipsync_hz=20), bus, level, token_path=tmp_path / f"tok{i}", url=server.url,
               sleep=clock.sleep, character=name)
        for i, (server, name) in enumerate(zip(servers, ("Luna", "Kai"), strict=True))
    ]
    supervisor = Supervisor(HealthBoard().attach(bus), first_delay=0.1)
    for avatar in avatars:
        supervisor.start(avatar)
    task = asyncio.create_task(supervisor.done())
    for avatar in avatars:
        await asyncio.wait_for(avatar.connected.wait(), 5)
    assert [a.name for a in avatars] == ["avatar:Luna", "avatar:Kai"]  # each its own line on /health
    buffer, output = await paced(clock, level)

    async def speak(name: str) -> list[float]:
        """The loudest mouth each model showed while ``name`` spoke a second."""
        before = [len(s.injections) for s in servers]
        bus.publish(TurnStarted("t-" + name, "stage", "local", name))
        buffer.push(0, "line", tone(1.0), 16000, final=True)
        await clock.advance(1.2)
        for server, avatar in zip(servers, avatars, strict=True):
            await received(server, avatar)
        return [max((v["MouthOpen"] for _, v in s.injections[b:]), default=0.0) for s, b in zip(servers, before, strict=True)]

    try:
        kai_speaks, luna_speaks = await speak("Kai"), await speak("Luna")
    finally:
        await output.close()
        supervisor.stop_event.set()
        await task
        for server in servers:
            await server.stop()
    assert kai_speaks[0] == 0.0 and kai_speaks[1] > 0.5
    assert luna_speaks[0] > 0.5 and luna_speaks[1] == 0.0
