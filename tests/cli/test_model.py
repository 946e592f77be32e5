"""`companion model`: on a fresh setup with HF_ENDPOINT at a stand-in hub, pull a model, use it, chat through it."""

import json
import tomllib
from pathlib import Path

import pytest

from tests.cli.test_cli import companion
from tests.models.hub_standin import StandInHub, packaged_gguf

pytestmark = pytest.mark.slow

REPO = "made-up/SmolLM2-135M-Instruct-GGUF"
FILE = "smollm2-135m-instruct-Q4_K_M.gguf"


@pytest.fixture
def hub():
    hub = StandInHub().start()
    hub.add(REPO, FILE, packaged_gguf())
    yield hub
    hub.stop()


def env_for(tmp_path, hub) -> dict:
    return {
        "HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_CACHE": str(tmp_path / "hf" / "hub"),
        "OLLAMA_MODELS": str(tmp_path / "ollama"), "COMPANION_DATA_DIR": str(tmp_path / "data"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }


async def test_pull_use_and_chat_through_the_pulled_file(tmp_path, hub):
    """pull shows progress and checks the file; use switches the LLM (keeping the old config); chat answers through it."""
    env = env_for(tmp_path, hub)
    config = tmp_path / "companion.toml"
    # One llama.cpp thread: the suite runs beside this test, and threads that wait for each other at every step
    # crawl on a CPU that is busy (a reply took 10-30 s on two threads with the other cores taken, 2-4 s on one).
    before = '[llm]\nprovider = "openai"\n[llm.llamacpp]\nthreads = 1\n'
    config.write_text(before)
    code, out, err = await companion("model", "pull", f"{REPO}:{FILE}", env=env, timeout=120)
    assert code == 0, err
    assert "ok:" in out and "checked" in out and "companion model use" in out
    assert "%" in err and "M" in err  # the progress bar: percent and size
    code, out, err = await companion("--config", str(config), "model", "use", f"{REPO}:{FILE}", env=env, timeout=120)
    assert code == 0, err
    assert "checked: it loads and answers" in out and "'openai' -> 'llamacpp'" in out
    assert (tmp_path / "companion.toml.bak").read_text() == before
    assert FILE in config.read_text() and tomllib.loads(config.read_text())["llm"]["llamacpp"]["threads"] == 1
    code, out, err = await companion("--config", str(config), "chat", "-m", "hi", "--json", env=env, timeout=120)
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["reply"]
    code, out, _ = await companion("model", "list", "--json", env=env)
    listed = json.loads(out)
    assert any(m["name"] == f"{REPO}:{FILE}" for m in listed["local"])
    assert sum(e["recommended"] for e in listed["catalog"]) == 1


async def test_failures_are_one_line_and_exit_1(tmp_path, hub):
    """A missing repo, a gated one and an unknown name each print one line and exit 1, never a traceback."""
    env = env_for(tmp_path, hub)
    hub.add("made-up/gated", "x.gguf", b"GGUF")
    hub.gated.add("made-up/gated")
    for ref, words in (("made-up/nothing:x.gguf", "no repository"), ("made-up/gated:x.gguf", "HF_TOKEN"), ("nonsense", "catalog name")):
        code, out, err = await companion("model", "pull", ref, env=env)
        assert code == 1 and words in err and "Traceback" not in err, err
        assert len(err.strip().splitlines()) == 1
    code, _, err = await companion("model", "use", "qwen2.5-1.5b", env=env)
    assert code == 1 and "companion model pull qwen2.5-1.5b" in err


async def test_an_ollama_model_is_listed_and_used_without_a_copy(tmp_path, hub):
    """A model in Ollama's store is listed as ollama:NAME:TAG and `use` points the config at its blob."""
    env = env_for(tmp_path, hub)
    store = tmp_path / "ollama"
    blob = store / "blobs" / ("sha256-" + "b" * 64)
    blob.parent.mkdir(parents=True)
    blob.write_bytes(packaged_gguf())
    manifest = store / "manifests" / "registry.ollama.ai" / "library" / "smol" / "latest"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"layers": [{"mediaType": "application/vnd.ollama.image.model", "digest": "sha256:" + "b" * 64}]}))
    code, out, _ = await companion("model", "list", "--json", env=env)
    assert any(m["name"] == "ollama:smol:latest" and m["path"] == str(blob) for m in json.loads(out)["local"])
    config = tmp_path / "companion.toml"
    config.write_text("")
    code, out, err = await companion("--config", str(config), "model", "use", "ollama:smol", "--no-check", env=env)
    assert code == 0, err
    assert str(blob) in config.read_text()
    assert len(list((tmp_path / "ollama").rglob("*"))) == 7  # nothing was copied


async def test_a_voice_is_listed_pulled_and_spoken_with(tmp_path, hub):
    """voice list finds a language's voices in the hub's index; pull fetches the .onnx and its .onnx.json; use speaks with it and writes [voice.tts]."""
    from companion.voice.tts.piper import embedded_voice

    onnx = embedded_voice()
    folder = "en/en_US/joe/medium"
    hub.add("rhasspy/piper-voices", f"{folder}/en_US-joe-medium.onnx", onnx.read_bytes())
    hub.add("rhasspy/piper-voices", f"{folder}/en_US-joe-medium.onnx.json", onnx.with_name(onnx.name + ".json").read_bytes())
    index = {"en_US-joe-medium": {
        "name": "joe", "quality": "medium", "num_speakers": 1,
        "language": {"code": "en_US", "family": "en", "name_english": "English", "country_english": "United States"},
        "files": {f"{folder}/en_US-joe-medium.onnx": {"size_bytes": onnx.stat().st_size}},
    }}
    hub.add("rhasspy/piper-voices", "voices.json", json.dumps(index).encode())
    env = env_for(tmp_path, hub)
    code, out, err = await companion("voice", "list", "en", "--json", env=env)
    assert code == 0, err
    assert [v["name"] for v in json.loads(out)["voices"]] == ["en_US-joe-medium"]
    code, out, err = await companion("voice", "list", "zh", "--json", env=env)
    assert json.loads(out)["voices"] == []
    code, out, err = await companion("voice", "pull", "en_US-joe-medium", env=env, timeout=120)
    assert code == 0 and "ok:" in out, err
    config = tmp_path / "companion.toml"
    config.write_text("")
    code, out, err = await companion("--config", str(config), "voice", "use", "en_US-joe-medium", env=env, timeout=120)
    assert code == 0 and "checked: it speaks" in out, err
    assert "en_US-joe-medium.onnx" in config.read_text()
    code, _, err = await companion("voice", "pull", "klingon", env=env)
    assert code == 1 and "not a Piper voice name" in err


async def test_a_whisper_size_is_pulled_and_used(tmp_path, hub):
    """voice pull whisper:base fetches the CTranslate2 folder's files; voice use points [voice.stt] model at it."""
    from companion.voice.stt.faster_whisper import embedded_model_dir

    folder = embedded_model_dir(tmp_path / "assembled")
    for name in ("config.json", "tokenizer.json", "vocabulary.json", "model.bin"):
        hub.add("Systran/faster-whisper-base", name, (folder / name).read_bytes())
    hub.add("Systran/faster-whisper-base", "README.md", b"# not needed")
    env = env_for(tmp_path, hub)
    code, out, err = await companion("voice", "pull", "whisper:base", env=env, timeout=120)
    assert code == 0 and "ok:" in out, err
    config = tmp_path / "companion.toml"
    config.write_text("")
    code, out, err = await companion("--config", str(config), "voice", "use", "whisper:base", env=env)
    assert code == 0, err
    model_dir = tomllib.loads(config.read_text())["voice"]["stt"]["model"]
    assert sorted(p.name for p in Path(model_dir).iterdir()) == ["config.json", "model.bin", "tokenizer.json", "vocabulary.json"]


async def test_use_switches_a_running_companion_without_a_restart(tmp_path, fake_openai):
    """With `companion run` going, `model use FILE` writes the config and the running companion answers through the file at once."""
    import asyncio
    import shutil
    import sys

    import aiohttp

    from companion.llm.gguf_meta import default_gguf_path
    from tests.cli.test_cli import _free_port, config_file, wait_healthy

    model = tmp_path / "my-model.gguf"
    shutil.copyfile(default_gguf_path(), model)
    port = _free_port()
    cfg = config_file(tmp_path, fake_openai, f"\n[web]\nport = {port}\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "companion", "--config", cfg, "run", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with aiohttp.ClientSession() as http:
            await wait_healthy(http, port)
            code, out, err = await companion("--config", cfg, "model", "use", str(model), "--no-check", timeout=120)
            assert code == 0, err
            assert "switched now" in out
            health = await (await http.get(f"http://127.0.0.1:{port}/health")).json()
            assert health["llm"]["provider"] == "llamacpp" and health["llm"]["devices"]
    finally:
        proc.terminate()
        await proc.wait()
    assert str(model) in (tmp_path / "companion.toml").read_text()
