"""The settings panel's API: switch the model to a server found on this PC, live and saved."""

import tomllib

import aiohttp

from companion.adapters.web import WebChat
from companion.app import build_companion
from companion.config import load_settings
from tests.fakes import FakeOpenAI


async def serve_with_ollama(tmp_path, fake_openai, monkeypatch, reply: str):
    """A companion on a config file, its web chat, and an Ollama stand-in (OLLAMA_HOST) with one bigger model."""
    ollama = await FakeOpenAI(models=["qwen2.5:7b"], reply=reply).start()
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{ollama.port}")
    cfg = tmp_path / "companion.toml"
    cfg.write_text(f'[companion]\ndata_dir = "{tmp_path / "data"}"\n[memory]\nenabled = false\n[web]\nport = 0\n'
                   f'[llm]\nprovider = "openai"\n[llm.openai]\nbase_url = "{fake_openai.base_url}"\nmodel = "test-model"\n')
    settings = load_settings(cfg)
    app = build_companion(settings)
    await app.start()
    chat = WebChat(app, settings)
    await chat.start()
    return ollama, cfg, app, chat


async def test_switching_the_model_to_a_detected_ollama_applies_now_and_is_saved(tmp_path, fake_openai, monkeypatch):
    """GET lists Ollama's models; POST switches replies to it at once and writes the config file; a dead server changes nothing."""
    ollama, cfg, app, chat = await serve_with_ollama(tmp_path, fake_openai, monkeypatch, "Hi from the bigger model.")
    base = f"http://127.0.0.1:{chat.port}"
    try:
        async with aiohttp.ClientSession(headers={"Origin": base}) as http:
            listed = await (await http.get(f"{base}/api/settings")).json()
            ollama_server = next(s for s in listed["servers"] if s["kind"] == "ollama")
            assert [m["name"] for m in ollama_server["models"]] == ["qwen2.5:7b"]
            assert listed["llm"] == {"provider": "openai", "base_url": fake_openai.base_url, "model": "test-model"}

            dead = await http.post(f"{base}/api/settings", json={"llm": {"base_url": "http://127.0.0.1:9/v1", "model": "x"}})
            assert dead.status == 409
            assert (await app.respond("hello", conversation_id="web:a")).reply.startswith("Hello there!")

            switched = await http.post(f"{base}/api/settings", json={"llm": {"base_url": ollama_server["base_url"], "model": "qwen2.5:7b"}})
            assert switched.status == 200, await switched.text()
            assert (await switched.json())["saved"] == str(cfg)
            result = await app.respond("hello again", conversation_id="web:a")
            assert result.reply == "Hi from the bigger model." and ollama.requests[-1]["model"] == "qwen2.5:7b"
            assert (await http.post(f"{base}/api/settings", data="{}", headers={"Content-Type": "text/plain"})).status == 403
        saved = tomllib.loads(cfg.read_text())
        assert saved["llm"]["openai"] == {"base_url": ollama_server["base_url"], "model": "qwen2.5:7b"}
        assert saved["web"]["port"] == 0  # the rest of the file is kept
    finally:
        await chat.stop()
        await app.close()
        await ollama.stop()


async def test_switching_to_a_model_file_on_this_machine_applies_now(tmp_path, fake_openai, monkeypatch):
    """{"llm": {"gguf": PATH}} loads the file with llama.cpp and replies come from it at once, saved to the config; a missing file changes nothing."""
    import shutil

    from companion.llm.gguf_meta import default_gguf_path

    model = tmp_path / "my-model.gguf"
    shutil.copyfile(default_gguf_path(), model)
    ollama, cfg, app, chat = await serve_with_ollama(tmp_path, fake_openai, monkeypatch, "unused")
    base = f"http://127.0.0.1:{chat.port}"
    try:
        async with aiohttp.ClientSession(headers={"Origin": base}) as http:
            missing = await http.post(f"{base}/api/settings", json={"llm": {"gguf": str(tmp_path / "nope.gguf")}})
            assert missing.status == 400 and app.llm.name == "openai"
            switched = await http.post(f"{base}/api/settings", json={"llm": {"gguf": str(model)}})
            assert switched.status == 200, await switched.text()
        assert app.llm.name == "llamacpp" and app.llm.inner.model_ref == str(model)
        result = await app.respond("hello", conversation_id="web:b")
        assert result.reply and result.error is None and fake_openai.requests == []
        assert tomllib.loads(cfg.read_text())["llm"]["llamacpp"]["model"] == str(model)
    finally:
        await chat.stop()
        await app.close()
        await ollama.stop()


async def test_a_model_is_pulled_through_the_api_with_progress(tmp_path, fake_openai, monkeypatch):
    """POST /api/models/pull starts one download; GET /api/models/pull reports bytes and total until it is done."""
    from companion.testing import eventually
    from tests.models.hub_standin import serve_recommended

    entry, hub = serve_recommended(monkeypatch, tmp_path, 30_000_000)
    ollama, _cfg, app, chat = await serve_with_ollama(tmp_path, fake_openai, monkeypatch, "unused")
    base = f"http://127.0.0.1:{chat.port}"
    try:
        async with aiohttp.ClientSession(headers={"Origin": base}) as http:
            listed = await (await http.get(f"{base}/api/models")).json()
            assert [e["name"] for e in listed["catalog"] if e["recommended"]] == [entry.name]
            started = await http.post(f"{base}/api/models/pull", json={"ref": entry.name})
            assert started.status == 202
            state: dict = {}

            async def finished() -> bool:
                state.update(await (await http.get(f"{base}/api/models/pull")).json())
                return state["state"] != "pulling"

            await eventually(finished, timeout=60, what="the download ending")
            assert state["state"] == "done", state
            assert state["bytes"] == state["total"] == 30_000_000
            listed = await (await http.get(f"{base}/api/models")).json()
            assert next(e for e in listed["catalog"] if e["name"] == entry.name)["downloaded"]
            bad = await http.post(f"{base}/api/models/pull", json={"ref": "not a model"})
            assert bad.status == 400
    finally:
        await chat.stop()
        await app.close()
        await ollama.stop()
        hub.stop()
