"""`companion init` against local stand-ins of Ollama, LM Studio and VTube Studio."""

import os
import pty
import select
import sys
import time
import tomllib

import pytest

from tests.cli.test_cli import companion
from tests.fakes import FakeOpenAI
from tests.fakes_vts import FakeVTS

GB = 1_000_000_000


async def test_init_yes_finds_ollama_and_picks_the_largest_model_that_fits(tmp_path, fake_openai):
    """With OLLAMA_HOST pointing at a stand-in, init --yes writes a config that validates and answers through it."""
    fake_openai.models = ["nomic-embed-text", "llama3.2:3b", "qwen2.5:7b", "llama3.1:405b"]
    fake_openai.model_sizes = {"nomic-embed-text": GB // 3, "llama3.2:3b": 2 * GB, "qwen2.5:7b": int(4.7 * GB), "llama3.1:405b": 230 * GB}
    cfg = tmp_path / "companion.toml"
    env = {"OLLAMA_HOST": f"127.0.0.1:{fake_openai.port}"}
    code, out, err = await companion("init", "--yes", "--config", str(cfg), "--data-dir", str(tmp_path / "data"), env=env)
    assert code == 0, out + err
    assert "Found Ollama" in out and "Saved" in out
    data = tomllib.loads(cfg.read_text())
    assert data["llm"]["provider"] == "openai"
    assert data["llm"]["openai"] == {"base_url": f"http://127.0.0.1:{fake_openai.port}/v1", "model": "qwen2.5:7b"}
    assert "# Model name as the server knows it." in cfg.read_text()  # commented
    code, out, _ = await companion("config", "check", "--config", str(cfg))
    assert code == 0 and "is valid" in out
    code, out, err = await companion("chat", "-m", "Hi!", "--config", str(cfg), "--data-dir", str(tmp_path / "data"))
    assert code == 0, err
    assert "Hello there!" in out and fake_openai.requests[-1]["model"] == "qwen2.5:7b"


async def test_init_llm_step_alone_keeps_the_rest_and_backs_up(tmp_path, fake_openai):
    """`init llm` changes only the model; other settings stay and the old file is kept as .bak."""
    cfg = tmp_path / "companion.toml"
    cfg.write_text('[web]\nport = 9999\n[llm]\nprovider = "llamacpp"\n')
    code, out, err = await companion("init", "llm", "--yes", "--config", str(cfg),
                                     env={"OLLAMA_HOST": f"http://127.0.0.1:{fake_openai.port}"})
    assert code == 0, out + err
    data = tomllib.loads(cfg.read_text())
    assert data["web"]["port"] == 9999 and data["llm"]["openai"]["model"] == "test-model"
    assert (tmp_path / "companion.toml.bak").read_text().startswith("[web]")


async def test_lm_studio_is_detected_on_its_port(tmp_path):
    """A server on LM Studio's port (1234) is offered; --llm lmstudio --model picks it."""
    try:
        server = await FakeOpenAI(port=1234, models=["mistral-7b-instruct", "phi-3-mini"]).start()
    except OSError:
        pytest.skip("port 1234 is busy on this machine")
    try:
        cfg = tmp_path / "companion.toml"
        code, out, err = await companion("init", "llm", "--yes", "--llm", "lmstudio", "--model", "phi-3-mini",
                                         "--config", str(cfg), env={"OLLAMA_HOST": "127.0.0.1:9"})
        assert code == 0, out + err
        assert "LM Studio" in out
        assert tomllib.loads(cfg.read_text())["llm"]["openai"] == {"base_url": "http://127.0.0.1:1234/v1", "model": "phi-3-mini"}
    finally:
        await server.stop()


async def test_without_audio_devices_voice_setup_says_so_and_stays_off(tmp_path):
    """On a machine with no sound card the voice step explains and leaves voice off."""
    from companion.init.devices import list_devices

    if not list_devices().problem:
        pytest.skip("this machine has audio devices")
    cfg = tmp_path / "companion.toml"
    code, out, err = await companion("init", "voice", "--yes", "--config", str(cfg))
    assert code == 0, out + err
    assert "No usable audio device" in out and "browser" in out
    assert tomllib.loads(cfg.read_text())["voice"]["enabled"] is False


async def test_vtube_studio_step_maps_hotkeys_by_name(tmp_path):
    """Against the VTube Studio stand-in: the plugin is approved and emotions map to hotkeys by their names."""
    vts = await FakeVTS().start()
    try:
        cfg = tmp_path / "companion.toml"
        code, out, err = await companion("init", "avatar", "--yes", "--avatar", vts.url, "--config", str(cfg),
                                         "--data-dir", str(tmp_path / "data"))
        assert code == 0, out + err
        assert "[happy] -> Smile" in out and "[sad] -> Cry" in out
        avatar = tomllib.loads(cfg.read_text())["avatar"]
        assert avatar["enabled"] is True and avatar["url"] == vts.url
        assert avatar["emotions"]["happy"] == "Smile" and avatar["emotions"]["angry"] == "Angry face"
        assert vts.token_requests == 1  # the approval pop-up was asked for once
    finally:
        await vts.stop()


def test_terminal_chat_calls_you_by_your_name(tmp_path, fake_openai_thread):
    """In a real terminal, the prompt shows the owner's name from the config, not "User"."""
    cfg = tmp_path / "companion.toml"
    cfg.write_text(f"""
[companion]
data_dir = "{tmp_path / 'data'}"
owner_name = "Ann"
[llm]
provider = "openai"
[memory]
enabled = false
[llm.openai]
base_url = "{fake_openai_thread.base_url}"
model = "test-model"
""")
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(sys.executable, [sys.executable, "-m", "companion", "chat", "--config", str(cfg)])
    seen = b""

    def read_until(marker: bytes, timeout: float = 60) -> None:
        nonlocal seen
        end = time.monotonic() + timeout
        while marker not in seen and time.monotonic() < end:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    seen += os.read(fd, 4096)
                except OSError:
                    break
        assert marker in seen, seen.decode(errors="replace")

    try:
        read_until(b"Ann: ")
        os.write(fd, b"hello there\r")
        read_until(b"Hello there!")
        os.write(fd, b"\r")
        os.waitpid(pid, 0)
    finally:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    assert b"User:" not in seen


@pytest.fixture
def fake_openai_thread():
    """The OpenAI stand-in on its own loop in a thread (the pty test itself is synchronous)."""
    import asyncio
    import threading

    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder = {}

    def serve():
        asyncio.set_event_loop(loop)
        holder["server"] = loop.run_until_complete(FakeOpenAI().start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    started.wait(10)
    yield holder["server"]
    asyncio.run_coroutine_threadsafe(holder["server"].stop(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def test_global_options_after_the_subcommand():
    """`companion run --config X` and `companion chat --data-dir Y` parse like the options before the command."""
    from companion.cli.common import build_parser as _parser

    args = _parser().parse_args(["run", "--config", "my.toml"])
    assert args.command == "run" and args.config == "my.toml"
    args = _parser().parse_args(["--config", "a.toml", "chat", "--data-dir", "/d"])
    assert args.config == "a.toml" and args.data_dir == "/d"


async def test_init_without_a_server_offers_and_downloads_the_recommended_model(tmp_path, monkeypatch):
    """With no model server running, init offers the catalog model that fits this machine, pulls it and configures it."""
    from companion.init.wizard import InitOptions, Wizard, _recommended_download
    from tests.models.hub_standin import serve_recommended

    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("LMSTUDIO_HOST", "127.0.0.1:9")
    entry, hub = serve_recommended(monkeypatch, tmp_path, 2_000_000)
    _entry, offered = _recommended_download()
    said: list[str] = []
    try:
        wizard = Wizard(InitOptions(tmp_path / "companion.toml", steps=("llm",)), ask=lambda _q: "", say=said.append)
        await wizard._step_llm()
    finally:
        hub.stop()
    assert any(offered in line and "recommended for this machine" in line for line in said)
    assert wizard.data["llm"]["provider"] == "llamacpp"
    path = wizard.data["llm"]["llamacpp"]["model"]
    assert path.endswith(entry.file) and str(tmp_path / "hf") in path


async def test_the_language_step_sets_the_language_and_pulls_a_voice_for_it(tmp_path, monkeypatch):
    """`init --language de` writes [persona] language and offers a German Piper voice from the hub's index, pulled and set."""
    import json

    from huggingface_hub import constants

    from companion.init.wizard import InitOptions, Wizard
    from companion.voice.tts.piper import embedded_voice
    from tests.models.hub_standin import StandInHub

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    onnx = embedded_voice()
    folder = "de/de_DE/thorsten/medium"
    hub = StandInHub().start()
    hub.add("rhasspy/piper-voices", f"{folder}/de_DE-thorsten-medium.onnx", onnx.read_bytes())
    hub.add("rhasspy/piper-voices", f"{folder}/de_DE-thorsten-medium.onnx.json", onnx.with_name(onnx.name + ".json").read_bytes())
    index = {"de_DE-thorsten-medium": {"quality": "medium", "num_speakers": 1, "files": {},
                                       "language": {"code": "de_DE", "name_english": "German", "country_english": "Germany"}}}
    hub.add("rhasspy/piper-voices", "voices.json", json.dumps(index).encode())
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    said: list[str] = []
    try:
        wizard = Wizard(InitOptions(tmp_path / "companion.toml", steps=("language",), yes=True, language="de"), say=said.append)
        await wizard._step_language()
    finally:
        hub.stop()
    assert wizard.data["persona"]["language"] == "de"
    assert wizard.data["voice"]["tts"]["voice"].endswith("de_DE-thorsten-medium.onnx")
    assert "voice: de_DE-thorsten-medium" in wizard.done
