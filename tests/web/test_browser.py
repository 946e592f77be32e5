
"""The pages in a real headless Chromium (Debian's, driven by Playwright): chat, voice with a fake microphone, overlay, control.

Chromium's fake media flags play a spoken WAV as the microphone. Screenshots go
to test-artifacts/ for a person to look at.
"""

import os
import shutil
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import numpy as np
import pytest

from companion.adapters.web import WebChat
from companion.app import build_companion
from companion.testing import eventually
from companion.voice.audio import Audio, write_wav
from tests.voice.conftest import speech_16k

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def need_browser() -> None:
    try:
        import playwright  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed (pip install 'companion[dev]')")
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing in CI: scripts/apt-packages.sh should have installed it")
        pytest.skip("chromium is not installed (apt install chromium)")


@pytest.fixture
async def served(settings_for, fake_openai, whisper):
    settings = settings_for(fake_openai)
    settings.voice.tts.provider = "espeak"
    comp = build_companion(settings)
    await comp.start()
    chat = WebChat(comp, settings)
    chat.voice_models.stt = whisper
    from companion.voice.tts.espeak import EspeakTTS

    chat.voice_models.tts = EspeakTTS()
    await chat.start()
    yield chat
    await chat.stop()
    await comp.close()


async def test_pages_in_a_real_browser(served, fake_openai, tmp_path):
    """Chat streams, the fake microphone's question is transcribed and answered aloud, the latency timeline and overlay show.

    All of it under the pages' Content-Security-Policy: no page logs a CSP violation.
    """
    need_browser()
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    mic = tmp_path / "mic.wav"
    question = speech_16k("What is the weather like in Paris today", tmp_path)
    write_wav(mic, Audio(np.concatenate([np.zeros(8000, np.float32), question, np.zeros(48000, np.float32)]), 16000))
    fake_openai.reply = "[happy] Hello there! It is sunny in Paris today."
    base = f"http://127.0.0.1:{served.port}"
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={mic}",
                  "--autoplay-policy=no-user-gesture-required"],
        )
        violations: list[str] = []

        async def new_page():
            opened = await browser.new_page()
            opened.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
            return opened

        try:
            page = await new_page()
            await page.goto(base + "/")
            await page.wait_for_function("() => document.getElementById('status').textContent === 'connected'")
            # chat streaming
            await page.fill("#text", "Hi Mika!")
            await page.click("#send")
            await page.wait_for_function("() => [...document.querySelectorAll('.assistant')].some(e => e.textContent.includes('sunny in Paris'))")
            await page.screenshot(path=str(ARTIFACTS / "chat.png"))
            # voice, hands-free, from the fake microphone
            await page.check("#handsfree")
            await page.wait_for_function("() => [...document.querySelectorAll('.user')].some(e => /paris/i.test(e.textContent))", timeout=60_000)
            await page.wait_for_function("() => window.companionVoice.playbackStarted === true", timeout=60_000)
            await page.wait_for_function("() => document.getElementById('latencytext').textContent.includes('voice-to-voice')", timeout=60_000)
            marks = await page.eval_on_selector_all("#timeline span", "els => els.map(e => e.dataset.label)")
            assert any(m.startswith("playback") for m in marks)
            async with aiohttp.ClientSession() as http, http.get(base + "/api/status") as r:
                microphones = (await r.json())["browser_microphones"]
            assert microphones and microphones[0]["echoCancellation"] is True  # asked of the browser and granted
            await page.uncheck("#handsfree")
            await page.screenshot(path=str(ARTIFACTS / "voice.png"))
            # overlay subtitles while a reply is written
            overlay = await new_page()
            listening = len(served._event_sockets)  # noqa: SLF001 - the server's own list of /events sockets
            await overlay.goto(base + "/overlay?size=30&color=ffff00&chat=1")
            await eventually(lambda: len(served._event_sockets) > listening, what="the overlay's /events socket")  # noqa: SLF001
            fake_openai.reply = "[happy] What a sunny overlay this is!"  # not a copy of her last replies
            await page.fill("#text", "Say something for the overlay")
            await page.click("#send")
            await overlay.wait_for_function("() => document.getElementById('sub').textContent.includes('sunny')")
            await overlay.screenshot(path=str(ARTIFACTS / "overlay.png"))
            # control page: status and a persona switch error
            control = await new_page()
            await control.goto(base + "/control")
            await control.wait_for_function("() => document.getElementById('title').textContent.includes('control')")
            await control.fill("#card", "no-such-character")
            await control.click("#persona")
            await control.wait_for_function("() => document.getElementById('personaOut').textContent.length > 0")
            await control.screenshot(path=str(ARTIFACTS / "control.png"))
            assert violations == []
        finally:
            await browser.close()


@asynccontextmanager
async def control_page(tmp_path, fake_openai, monkeypatch, reply: str):
    """A companion served beside an Ollama stand-in answering ``reply``, its /control page open in Chromium:
    yields (page, browser, the Ollama stand-in); everything is stopped afterwards."""
    from playwright.async_api import async_playwright

    from tests.adapters.test_web_settings import serve_with_ollama

    ollama, _cfg, comp, chat = await serve_with_ollama(tmp_path, fake_openai, monkeypatch, reply)
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
            try:
                control = await browser.new_page()
                await control.goto(f"http://127.0.0.1:{chat.port}/control")
                yield control, browser, ollama
            finally:
                await browser.close()
    finally:
        await chat.stop()
        await comp.close()
        await ollama.stop()


async def test_settings_panel_switches_the_model_and_the_page_keeps_history_on_reload(tmp_path, fake_openai, monkeypatch):
    """In Chromium: the control page's settings switch to a model found on a local Ollama; the chat page shows the
    conversation again after a reload; the microphone button needs no emoji font."""
    need_browser()
    async with control_page(tmp_path, fake_openai, monkeypatch, "Answer from qwen.") as (control, browser, ollama):
        await control.wait_for_function("() => [...document.querySelectorAll('#model option')].some(o => o.textContent.includes('qwen2.5:7b'))")
        value = await control.eval_on_selector_all("#model option", "os => os.find(o => o.textContent.includes('qwen2.5:7b')).value")
        await control.select_option("#model", value)
        await control.click("#modelBtn")
        await control.wait_for_function("() => document.getElementById('settingsOut').textContent.includes('(saved)')")
        await control.screenshot(path=str(ARTIFACTS / "settings.png"))

        page = await browser.new_page()
        await page.goto(control.url.replace("/control", "/"))
        await page.wait_for_function("() => document.getElementById('status').textContent === 'connected'")
        assert (await page.text_content("#micLabel")) == "Hold to talk"
        assert await page.eval_on_selector("#mic svg", "e => e.getBoundingClientRect().width") > 0
        await page.fill("#text", "Remember this line")
        await page.click("#send")
        await page.wait_for_function("() => [...document.querySelectorAll('.assistant')].some(e => e.textContent.includes('Answer from qwen'))")
        await page.reload()
        await page.wait_for_function("() => document.getElementById('status').textContent === 'connected'")
        await page.wait_for_function("() => [...document.querySelectorAll('.user')].some(e => e.textContent.includes('Remember this line'))")
        assert "Answer from qwen" in await page.text_content("#log")
        await page.screenshot(path=str(ARTIFACTS / "history-after-reload.png"))
    assert ollama.requests and ollama.requests[-1]["model"] == "qwen2.5:7b"


async def test_control_page_pulls_a_model_with_a_progress_bar(tmp_path, fake_openai, monkeypatch):
    """In Chromium: the control page lists the catalog with the recommended model, pulls it from a stand-in hub with a
    live progress bar, and then offers to use it."""
    need_browser()
    from tests.models.hub_standin import serve_recommended

    entry, hub = serve_recommended(monkeypatch, tmp_path, 40_000_000)
    try:
        async with control_page(tmp_path, fake_openai, monkeypatch, "unused") as (control, _browser, _ollama):
            row = f"#models tr[data-model='{entry.name}']"
            await control.wait_for_selector(row)
            assert (await control.text_content(f"{row} td")).startswith("★")  # the recommended one
            await control.click(f"{row} button")
            await control.wait_for_function("() => document.getElementById('pullOut').dataset.state === 'done'", timeout=60_000)
            bar = await control.eval_on_selector("#pullBar", "b => [b.value, b.max, b.hidden]")
            assert bar[0] == bar[1] == 40_000_000 and not bar[2]
            await control.wait_for_function(f"() => document.querySelector(\"{row} button\").textContent === 'Use'")
            await control.screenshot(path=str(ARTIFACTS / "control-models.png"))
    finally:
        hub.stop()
    assert list((tmp_path / "hf").rglob(entry.file))


async def test_a_group_shows_each_characters_name_in_the_page_and_overlay(tmp_path, fake_openai, settings_for):
    """Two [[characters]]: the page shows each reply under its character's name, the overlay says who speaks."""
    need_browser()
    from playwright.async_api import async_playwright

    from tests.group.test_cast import served_group

    ARTIFACTS.mkdir(exist_ok=True)
    async with served_group(tmp_path, fake_openai, settings_for) as chat:
        base = f"http://127.0.0.1:{chat.port}"
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
            try:
                page = await browser.new_page()
                overlay = await browser.new_page()
                listening = len(chat._event_sockets)  # noqa: SLF001
                await overlay.goto(base + "/overlay")
                await eventually(lambda: len(chat._event_sockets) > listening, what="the overlay's /events socket")  # noqa: SLF001
                await page.goto(base + "/")
                await page.wait_for_function("() => document.getElementById('status').textContent === 'connected'")
                assert await page.text_content("#name") == "Luna & Kai"
                await page.fill("#text", "Luna and Kai, which of you is better at chess?")
                await page.click("#send")
                await page.wait_for_function("() => document.querySelectorAll('.assistant .who').length >= 2")
                names = await page.eval_on_selector_all(".assistant .who", "els => els.map(e => e.textContent)")
                colours = await page.eval_on_selector_all(".assistant .who", "els => els.map(e => getComputedStyle(e).color)")
                await overlay.wait_for_function("() => document.getElementById('sub').textContent.startsWith('Kai: ')")
                await page.screenshot(path=str(ARTIFACTS / "group-chat.png"))
            finally:
                await browser.close()
    assert names[-2:] == ["Luna", "Kai"] and colours[-2] != colours[-1]
