"""One masking rule: every secret the configuration knows is hidden in every output."""

import json
import logging

import aiohttp

from companion.app import build_companion, setup_logging
from companion.config import Settings, masking
from tests.cli.test_cli import companion, config_file

KEY = "sk-test-abcdef0123456789"


def test_names_that_hold_secrets():
    """Secret-looking names are recognised by their parts; variable names and ordinary settings are not."""
    assert all(map(masking.looks_secret, ["api_key", "DISCORD_TOKEN", "client_secret", "APIKEY", "GITHUB_TOKEN"]))
    assert not any(map(masking.looks_secret, ["token_env", "max_tokens", "hotkey", "keys", "spoken_max_tokens"]))


def test_every_secret_the_config_knows_is_collected(monkeypatch):
    """LLM key, web/games/Discord tokens, Twitch client secret, YouTube key and MCP env secrets are all masked."""
    for name, value in {
        "OPENAI_API_KEY": "sk-openai-111111", "TWITCH_CLIENT_SECRET": "twitch-secret-222", "YOUTUBE_API_KEY": "yt-key-333333",
        "DISCORD_TOKEN": "discord-tok-444", "COMPANION_WEB_TOKEN": "web-token-555",
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings.model_validate({
        "games": {"token": "games-token-666"},
        "tools": {"mcp": {"gh": {"command": "npx", "env": {"GITHUB_TOKEN": "ghp-777777", "MODE": "production"}}}},
    })
    found = set(settings.secrets())
    assert {"sk-openai-111111", "twitch-secret-222", "yt-key-333333", "discord-tok-444", "web-token-555", "games-token-666", "ghp-777777"} <= found
    assert "production" not in found
    masking.register(found)
    assert masking.mask("key sk-openai-111111 and ghp-777777, mode production") == "key *** and ***, mode production"


def test_tracebacks_are_masked_in_the_log_file(tmp_path, monkeypatch):
    """An exception whose text holds the key is logged with *** in its traceback too."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    log_file = setup_logging(Settings.model_validate({"companion": {"data_dir": str(tmp_path)}}), console_level="CRITICAL")
    try:
        try:
            raise RuntimeError(f"server said: bad key {KEY}")
        except RuntimeError:
            logging.getLogger("companion.test").exception("request failed for %s", KEY)
        for handler in logging.getLogger().handlers:
            handler.flush()
        text = log_file.read_text()
        assert "RuntimeError: server said: bad key ***" in text and "request failed for ***" in text
        assert KEY not in text
    finally:
        for handler in list(logging.getLogger().handlers):
            if getattr(handler, "_companion", False):
                logging.getLogger().removeHandler(handler)


async def test_key_echoed_by_the_llm_server_never_reaches_the_web_client(fake_openai, settings_for, monkeypatch):
    """A 401 that repeats our API key shows *** in the web client's turn_end and in /api/say's answer."""
    from companion.adapters.web import WebChat

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    settings = settings_for(fake_openai)
    app = build_companion(settings)
    await app.start()
    chat = WebChat(app, settings)
    await chat.start()
    try:
        fake_openai.modes.extend(["401-echo", "401-echo"])
        base = f"http://127.0.0.1:{chat.port}"
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(f"{base}/ws", headers={"Origin": base}) as ws:
                await ws.send_json({"type": "chat", "text": "hi"})
                frames = []
                while not frames or frames[-1].get("type") != "turn_end":
                    frames.append(json.loads((await ws.receive(timeout=10)).data))
            async with http.post(f"{base}/api/say", json={"text": "hi"}, headers={"Origin": base}) as resp:
                said = await resp.text()
        end = frames[-1]
        assert end["error"] and "Incorrect API key provided: ***" in end["error"]
        assert KEY not in json.dumps(frames) and KEY not in said and "***" in said
    finally:
        await chat.stop()
        await app.close()


async def test_key_echoed_by_the_llm_server_is_masked_in_chat_json(tmp_path, fake_openai):
    """`chat --json` prints the server's error with the key masked."""
    fake_openai.modes.extend(["401-echo"] * 3)
    code, out, err = await companion(
        "--config", config_file(tmp_path, fake_openai), "chat", "-m", "hi", "--json", env={"OPENAI_API_KEY": KEY}
    )
    assert KEY not in out + err
    assert "***" in out + err
