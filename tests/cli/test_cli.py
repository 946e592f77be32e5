import asyncio
import json
import os
import signal
import sys
import time

import aiohttp

from companion.testing import eventually


def config_file(tmp_path, server, extra: str = "") -> str:
    path = tmp_path / "companion.toml"
    path.write_text(
        f"""
[companion]
data_dir = "{tmp_path / 'data'}"
[llm]
provider = "openai"
retries = 0
[memory]
enabled = {"true" if "memory-on" in extra else "false"}
[llm.openai]
base_url = "{server.base_url}"
model = "test-model"
{extra.replace("memory-on", "")}
"""
    )
    return str(path)


async def companion(*args: str, env: dict | None = None, timeout: float = 60) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "companion", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode, out.decode(), err.decode()


async def test_one_turn_json_has_reply_emotions_and_timings(tmp_path, fake_openai):
    """`chat --message --json` prints one JSON object with reply, emotions and stage timings."""
    code, out, err = await companion("--config", config_file(tmp_path, fake_openai), "chat", "-m", "Hi!", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["reply"].startswith("Hello there!")
    assert data["emotions"] == ["happy"]
    for stage in ("first_token", "first_sentence", "end", "overhead"):
        assert isinstance(data["timings"][stage], (int, float))


async def test_speakers_are_kept_apart_in_scripted_conversations(tmp_path, fake_openai):
    """--speaker gives each person their own identity; the LLM sees who said what."""
    cfg = config_file(tmp_path, fake_openai)
    await companion("--config", cfg, "chat", "-m", "I am Alice", "--speaker", "alice", "--json")
    code, out, _ = await companion("--config", cfg, "chat", "-m", "And I am Bob", "--speaker", "bob", "--json")
    assert code == 0 and json.loads(out)["speaker"] == "bob"
    users = [m["content"] for m in fake_openai.requests[-1]["messages"] if m["role"] == "user"]
    assert users[-2:] == ["alice: I am Alice", "bob: And I am Bob"]  # after the card's example turns


async def test_image_is_attached_to_the_request(tmp_path, fake_openai):
    """--image sends a local picture to the model as a base64 data URL."""
    picture = tmp_path / "cat.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\nfake")
    code, _, err = await companion("--config", config_file(tmp_path, fake_openai), "chat", "-m", "what is it", "--image", str(picture), "--json")
    assert code == 0, err
    parts = fake_openai.requests[-1]["messages"][-1]["content"]
    assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,")


async def test_llm_failure_is_one_clear_line(tmp_path, fake_openai):
    """A refused API key ends with an error line naming the fix, exit 1, no traceback."""
    fake_openai.modes.append("401")
    code, out, err = await companion("--config", config_file(tmp_path, fake_openai, 'api_key = "sk-secret-value"'), "chat", "-m", "hi")
    assert code == 1
    assert "refused the API key" in err and "Traceback" not in err
    assert "sk-secret-value" not in out + err


async def test_run_serves_web_chat_and_stops_on_sigterm_within_2s(tmp_path, fake_openai):
    """`companion run` answers over the web chat and exits cleanly within 2 s of SIGTERM."""
    port = _free_port()
    cfg = config_file(tmp_path, fake_openai, f"\n[web]\nport = {port}\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "companion", "--config", cfg, "run",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with aiohttp.ClientSession() as http:
            await wait_healthy(http, port)
            async with http.ws_connect(f"http://127.0.0.1:{port}/ws?session=cli") as ws:
                await ws.receive(timeout=5)
                await ws.send_str(json.dumps({"type": "chat", "text": "hello"}))
                while json.loads((await ws.receive(timeout=5)).data)["type"] != "turn_end":
                    pass
        start = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 5)
        elapsed = time.perf_counter() - start
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    err = (await proc.stderr.read()).decode()
    assert code == 0, err
    assert elapsed < 2.0
    assert "Traceback" not in err
    log_file = tmp_path / "data" / "logs" / "companion.log"
    assert "shutting down" in log_file.read_text()


async def test_doctor_reports_problems_with_fixes(tmp_path, fake_openai):
    """doctor passes against a reachable server and names the fix when the model is missing."""
    code, out, _ = await companion("--config", config_file(tmp_path, fake_openai), "doctor")
    assert code == 0, out
    assert "all good" in out
    fake_openai.models = ["something-else"]
    code, out, _ = await companion("--config", config_file(tmp_path, fake_openai), "doctor")
    assert code == 1
    assert "FAIL" in out and "something-else" in out


async def test_config_example_is_printed():
    """`config example` prints the commented example on stdout."""
    code, out, _ = await companion("config", "example")
    assert code == 0 and "[llm.openai]" in out


async def wait_healthy(http: aiohttp.ClientSession, port: int, adapter: str | None = None, tries: int = 150) -> None:
    """Until /health answers (and lists ``adapter``): `companion run` is up."""

    async def healthy() -> bool:
        try:
            async with http.get(f"http://127.0.0.1:{port}/health") as resp:
                return resp.status == 200 and (adapter is None or adapter in (await resp.json())["adapters"])
        except aiohttp.ClientError:
            return False

    await eventually(healthy, timeout=tries / 10, every=0.1, what=f"`companion run` answering /health on port {port}")


def listening(port: int) -> bool:
    """Something accepts connections on 127.0.0.1:``port``."""
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_embedded_default_answers_with_no_config_at_all(tmp_path):
    """With no config file, no server and no key, the packaged local model answers."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "companion", "--data-dir", str(tmp_path / "d"), "chat", "-m", "Hello!", "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "COMPANION_CONFIG"},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 240)
    assert proc.returncode == 0, err.decode()[-2000:]
    data = json.loads(out)
    assert data["reply"].strip() and data["error"] is None and data["character"] == "Mika"


async def test_run_hosts_games_that_connect_and_play(tmp_path, fake_openai):
    """With [games] enabled, `companion run` accepts a Neuro API game and plays a whole round."""
    from companion.games.demo import play

    fake_openai.reply = '{"action": "place", "data": {"cell": 5}}'
    port = _free_port()
    cfg = config_file(tmp_path, fake_openai, f"\n[web]\nenabled = false\n[games]\nenabled = true\nport = {port}\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "companion", "--config", cfg, "run",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        await eventually(lambda: listening(port), timeout=10, every=0.1, what="the game server")
        stats = await play(f"ws://127.0.0.1:{port}/", rounds=1, show=lambda _: None, move_timeout=30)
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 5)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert code == 0
    assert stats.rounds == 1 and stats.rejected == 0
    assert any("response_format" in r for r in fake_openai.requests)


async def test_game_demo_without_a_server_is_one_clear_line(tmp_path):
    """`game demo --connect` to nothing says what to check, exit 1, no traceback."""
    code, _, err = await companion("--data-dir", str(tmp_path), "game", "demo", "--connect", f"ws://127.0.0.1:{_free_port()}/")
    assert code == 1
    assert "is the companion running" in err and "Traceback" not in err


async def test_persona_show_import_export_round_trip(tmp_path):
    """`persona import` stores a card, `show --json` reads it by name, `export` writes a loadable PNG."""
    card = {"spec": "chara_card_v2", "spec_version": "2.0", "data": {
        "name": "Captain Lyra", "description": "{{char}} sails.", "first_mes": "Ahoy!", "alternate_greetings": ["Hoy!"],
        "character_book": {"entries": [{"keys": ["ship"], "content": "The ship is fast."}]},
        "extensions": {"other_app": {"keep": True}}}}
    src = tmp_path / "lyra.json"
    src.write_text(json.dumps(card))
    data = ["--data-dir", str(tmp_path / "d")]
    code, out, err = await companion(*data, "persona", "import", str(src))
    assert code == 0, err
    code, out, _ = await companion(*data, "persona", "show", "Captain Lyra", "--json")
    info = json.loads(out)
    assert info["name"] == "Captain Lyra" and info["lorebook_entries"] == 1
    assert info["greetings"] == ["Ahoy!", "Hoy!"]
    assert "Captain Lyra sails." in info["system_prompt"]
    exported = tmp_path / "out.png"
    code, _, err = await companion(*data, "persona", "export", "Captain Lyra", "--format", "png", "-o", str(exported))
    assert code == 0, err
    from companion.character.persona import load_character

    again = load_character(exported)
    assert again.name == "Captain Lyra" and again.extensions == {"other_app": {"keep": True}}
    code, _, err = await companion(*data, "persona", "show", "Nobody")
    assert code == 1 and "import" in err and "Traceback" not in err


async def test_doctor_checks_the_parts_that_are_switched_on(tmp_path, fake_openai):
    """With avatar, Twitch, MCP and plugins on, doctor names each missing piece and how to fix it."""
    extra = """[avatar]
enabled = true
url = "ws://127.0.0.1:9"
[plugins]
enabled = ["dice", "nosuch"]
[stream.twitch]
enabled = true
[tools.mcp.files]
command = "no-such-binary-here"
"""
    code, out, _ = await companion("--config", config_file(tmp_path, fake_openai, extra), "doctor")
    assert code == 1
    assert "[FAIL] avatar: VTube Studio not reachable" in out and "Start API" in out
    assert "[FAIL] twitch: login stored" in out and "twitch-login" in out
    assert "[FAIL] mcp files: command 'no-such-binary-here' found" in out
    assert "[ok] plugin dice: found" in out and "[FAIL] plugin nosuch: found" in out


async def test_status_reports_a_running_instance_and_sigterm_with_a_reply_in_flight(tmp_path, fake_openai):
    """`companion status` shows each adapter's state; SIGTERM mid-reply still exits within 2 s; then status says not running."""
    port = _free_port()
    fake_openai.token_delay = 0.5  # a slow reply, still being written when the signal comes
    cfg = config_file(tmp_path, fake_openai, f"\n[web]\nport = {port}\n[games]\nenabled = true\nport = 0\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "companion", "run", "--config", cfg,  # the global option after the command
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with aiohttp.ClientSession() as http:
            await wait_healthy(http, port, adapter="llm")
            code, out, err = await companion("status", "--config", cfg)
            assert code == 0, out + err
            assert "ok" in out.splitlines()[0]
            for name in ("web", "games", "llm"):
                assert any(line.split()[:2] == [name, "up"] for line in out.splitlines()), out
            code, out, _ = await companion("status", "--config", cfg, "--json")
            assert json.loads(out)["adapters"]["web"]["state"] == "up"
            async with http.ws_connect(f"http://127.0.0.1:{port}/ws?session=cli") as ws:
                await ws.receive(timeout=5)
                await ws.send_str(json.dumps({"type": "chat", "text": "tell me a long story"}))
                while json.loads((await ws.receive(timeout=5)).data)["type"] != "token":
                    pass
                start = time.perf_counter()
                proc.send_signal(signal.SIGTERM)
                code = await asyncio.wait_for(proc.wait(), 5)
                elapsed = time.perf_counter() - start
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    err = (await proc.stderr.read()).decode()
    assert code == 0 and "Traceback" not in err, err
    assert elapsed < 2.0
    code, _, err = await companion("status", "--config", cfg)
    assert code == 3 and "not running" in err
