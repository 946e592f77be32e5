"""The first-party plugins: dice, clock, reminders (across a restart), screen (a real image part)."""

import asyncio
import base64
import io
import os
import shutil
import sqlite3
import subprocess
import time

from companion.app import build_companion
from companion.plugins import PluginManager
from companion.runtime.events import Announcement
from companion.testing import VirtualClock, eventually
from companion.tools.registry import ToolContext

OWNER = ToolContext("local", "cli", "chat-1", "owner")


async def loaded(settings, *names, clock: VirtualClock | None = None):
    comp = build_companion(settings)
    await comp.start()
    plugins = PluginManager(comp, **({"sleep": clock.sleep} if clock is not None else {}))
    for name in names:
        assert await plugins.load(name), plugins.states[name].error
    return comp, plugins


async def test_dice_rolls_within_range(settings_for, fake_openai):
    """roll_dice understands 2d6+1 and refuses nonsense."""
    comp, plugins = await loaded(settings_for(fake_openai), "dice")
    for _ in range(30):
        text = (await comp.tools.call("roll_dice", '{"dice": "2d6+1"}', OWNER)).text
        total = int(text.rsplit("=", 1)[1])
        assert 3 <= total <= 13
    assert "not dice notation" in (await comp.tools.call("roll_dice", '{"dice": "lots"}', OWNER)).text
    await plugins.unload_all()
    await comp.close()


async def test_clock_time_and_timer(settings_for, fake_openai):
    """current_time answers; a one-second timer announces itself."""
    clock = VirtualClock()
    comp, plugins = await loaded(settings_for(fake_openai), "clock", clock=clock)
    assert time.strftime("%Y") in (await comp.tools.call("current_time", "{}", OWNER)).text
    assert "unknown time zone" in (await comp.tools.call("current_time", '{"timezone": "Mars/Olympus"}', OWNER)).text
    heard = []
    comp.bus.subscribe(Announcement, heard.append)
    await comp.tools.call("set_timer", '{"seconds": 60, "label": "tea"}', OWNER)
    for _ in range(100):  # the timer's task starts on the next turns of the loop
        if clock.pending:
            break
        await asyncio.sleep(0)
    assert clock.pending == [clock.now + 60]  # the timer waits on the clock...
    await clock.advance(59.9)
    assert heard == []  # ...and has not rung a tenth of a second early
    await clock.advance(0.2)
    assert [a.text for a in heard] == ["Your tea is done!"]
    await plugins.unload_all()
    await comp.close()


async def test_reminder_survives_a_restart_and_fires(settings_for, fake_openai):
    """A reminder set before the process stops is delivered after a restart: announced and in the chat history."""
    settings = settings_for(fake_openai)
    comp, plugins = await loaded(settings, "reminders")
    out = await comp.tools.call("set_reminder", '{"text": "call mum", "when": "in 2 seconds"}', OWNER)
    assert "reminder set" in out.text
    await plugins.unload_all()
    await comp.close()  # the process is gone before the reminder is due

    db = settings.data_path() / "plugins-data" / "reminders" / "reminders.sqlite3"
    with sqlite3.connect(db) as conn:  # two seconds pass while it is down (moved on, not waited for)
        conn.execute("UPDATE reminders SET due = due - 2.2")
    comp, plugins = await loaded(settings, "reminders")
    heard = []
    comp.bus.subscribe(Announcement, heard.append)
    await eventually(lambda: bool(heard), what="the reminder")
    assert [(a.conversation_id, a.text) for a in heard] == [("chat-1", "Reminder: call mum")]
    history = await comp.history.recent("chat-1", 5)
    assert history[-1].content == "Reminder: call mum"

    def undone() -> int:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT count(*) FROM reminders WHERE done = 0").fetchone()[0]

    await eventually(lambda: undone() == 0, what="the reminder marked done")
    assert len(heard) == 1  # delivered once
    await plugins.unload_all()
    await comp.close()


def _display_or_generated(monkeypatch):
    """A real capture from a virtual display (Xvfb) when installed, else a generated PNG."""
    if shutil.which("Xvfb"):
        ready, told = os.pipe()  # Xvfb writes its display number here once it accepts clients
        proc = subprocess.Popen(["Xvfb", "-displayfd", str(told), "-screen", "0", "320x240x24"], stderr=subprocess.DEVNULL, pass_fds=(told,))
        os.close(told)
        with os.fdopen(ready) as answer:
            display = answer.readline().strip()
        monkeypatch.setenv("DISPLAY", f":{display}")
        return proc
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buf, "PNG")
    png = buf.getvalue()
    monkeypatch.setattr("companion_plugin_screen.grab", lambda monitor=1: png, raising=False)
    return None


async def test_screen_sends_a_real_image_to_the_model(settings_for, fake_openai, monkeypatch):
    """look_at_screen's screenshot reaches the LLM request as an image part (owner only)."""
    fake_openai.modes.extend(["tools", "ok"])
    fake_openai.tool_name, fake_openai.tool_args = "look_at_screen", "{}"
    fake_openai.reply = "Nice screen!"
    comp, plugins = await loaded(settings_for(fake_openai), "screen")
    proc = _display_or_generated(monkeypatch)
    try:
        await comp.respond("what do you think of this?", conversation_id="c", speaker_id="local")
    finally:
        if proc is not None:
            proc.terminate()
    last = fake_openai.requests[-1]["messages"]
    images = [p for m in last if isinstance(m.get("content"), list) for p in m["content"] if p.get("type") == "image_url"]
    assert images, last
    data = base64.b64decode(images[0]["image_url"]["url"].split(",", 1)[1])
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 60
    await plugins.unload_all()
    await comp.close()
