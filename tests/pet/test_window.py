"""`companion pet` in a real window on a virtual X desktop (Xvfb with a compositing manager), beside a companion
served on the OpenAI stand-in: what a person sees, types and says, a restart under it, and closing it.

The window is another process: the test reads its page through Chromium's DevTools port, looks at the screen with
screenshots, and uses the real pointer and keyboard (xdotool). Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
import psutil
import pytest
from pydantic import SecretStr

from companion.adapters.web import WebChat
from companion.app import build_companion
from companion.testing import eventually
from companion.voice.audio import Audio, write_wav
from tests.pet.desktop import PageProbe, Screen, need_desktop, virtual_desktop
from tests.voice.conftest import speech_16k

pytestmark = pytest.mark.slow
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
HAIR = (59, 45, 107)  # Mika's hair (#3b2d6b): she is drawn
MOUTH = (122, 34, 52)  # the inside of her open mouth (#7a2234)


async def _not(check) -> bool:  # noqa: ANN001
    return not await check


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def near(image: np.ndarray, colour: tuple[int, int, int], tolerance: int = 14) -> np.ndarray:
    return np.all(np.abs(image[..., :3].astype(int) - np.array(colour)) <= tolerance, axis=-1)


def window_rect(screen: Screen, pid: int) -> tuple[int, int, int, int] | None:
    """(x, y, width, height) of the pet's visible window on the screen, found by its process id."""
    try:
        ids = screen.xdotool("search", "--onlyvisible", "--pid", str(pid)).split()
    except subprocess.CalledProcessError:
        return None
    for wid in ids:
        shell = dict(line.split("=", 1) for line in screen.xdotool("getwindowgeometry", "--shell", wid).split())
        if int(shell["WIDTH"]) > 100:
            return int(shell["X"]), int(shell["Y"]), int(shell["WIDTH"]), int(shell["HEIGHT"])
    return None


async def serve(settings, whisper, port: int = 0) -> WebChat:
    from companion.voice.tts.espeak import EspeakTTS

    settings.web.port = port
    comp = build_companion(settings)
    await comp.start()
    chat = WebChat(comp, settings)
    chat.voice_models.stt = whisper
    chat.voice_models.tts = EspeakTTS()
    await chat.start()
    return chat


async def stop(chat: WebChat) -> None:
    await chat.stop()
    await chat.companion.close()


async def test_pet_window_shows_talks_listens_reconnects_and_closes(settings_for, fake_openai, whisper, tmp_path):
    """She is drawn on the desktop and little else; typing reaches her and her reply shows in the bubble with her mouth
    moving, then settling; push-to-talk is one voice turn; she reconnects after a restart; closing leaves no process."""
    need_desktop()
    ARTIFACTS.mkdir(exist_ok=True)
    settings = settings_for(fake_openai)
    settings.web.token = SecretStr("pet-secret-token")  # the window must bring it to every page, socket and API call
    config = tmp_path / "companion.toml"
    config.write_text(f'[companion]\ndata_dir = "{settings.data_path()}"\n[web]\ntoken = "pet-secret-token"\n', encoding="utf-8")
    mic = tmp_path / "mic.wav"
    question = speech_16k("What is the weather like in Paris today", tmp_path)
    write_wav(mic, Audio(np.concatenate([np.zeros(4000, np.float32), question, np.zeros(24000, np.float32)]), 16000))
    chat = await serve(settings, whisper)
    devtools = free_port()
    with virtual_desktop() as screen:
        env = screen.env()
        env["COMPANION_PET_DEVTOOLS_PORT"] = str(devtools)
        env["QTWEBENGINE_CHROMIUM_FLAGS"] = (
            f"--use-fake-ui-for-media-stream --use-fake-device-for-media-stream --use-file-for-fake-audio-capture={mic} "
            "--autoplay-policy=no-user-gesture-required"
        )
        pet = subprocess.Popen(
            [sys.executable, "-m", "companion", "--config", str(config), "pet", "--url", f"http://127.0.0.1:{chat.port}"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        page = PageProbe(devtools)
        try:
            await eventually(page.ready, timeout=90, what="the pet window's page")
            await eventually(lambda: page.js("window.petStatus ? petStatus().connected : false"), timeout=30, what="the page connected")
            loaded = await page.js("performance.getEntriesByType('resource').map(e => e.name).concat([location.href])")
            assert loaded and all(u.startswith(f"http://127.0.0.1:{chat.port}/") or u.startswith(f"ws://127.0.0.1:{chat.port}/") for u in loaded), loaded
            placed = lambda: (r := window_rect(screen, pet.pid)) is not None and r[0] > screen.width // 2 and r  # noqa: E731
            await eventually(placed, timeout=20, what="her window at the bottom right of the screen")
            x, y, w, h = placed()
            # she is drawn, the window's empty parts are see-through, and nothing else is on the screen
            await eventually(lambda: near(np.asarray(screen.grab()), HAIR)[y:y + h, x:x + w].sum() > 3000, timeout=30, what="her drawn")
            shot = screen.grab()
            shot.save(ARTIFACTS / "pet-desktop.png")
            pixels = np.asarray(shot)[..., :3].astype(int)
            desktop = pixels[0, 0]  # the empty desktop's colour
            outside = np.abs(pixels - desktop).max(axis=-1)
            outside[y:y + h, x:x + w] = 0
            assert outside.max() == 0, "something besides her window is drawn"
            assert np.abs(pixels[y:y + 12, x:x + 12] - desktop).max() == 0, "the window's empty corner is not see-through"
            assert x + w <= screen.width and y + h <= screen.height

            # the pointer near her, outside her window: she looks toward it
            screen.xdotool("mousemove", str(x - 150), str(y + h // 3))
            await eventually(lambda: page.js("(g => g && g.x < -0.5)(petStatus().gaze)"), timeout=10, what="her looking toward the pointer")

            # dragged by the real pointer, she follows and the place is remembered; the wheel over her resizes her
            hx, hy = x + w // 2, y + int(h * 0.5)
            screen.xdotool("mousemove", str(hx), str(hy), "mousedown", "1")
            for step in range(1, 11):
                screen.xdotool("mousemove", str(hx - 30 * step), str(hy - 15 * step))
            screen.xdotool("mouseup", "1")
            moved = lambda: (r := window_rect(screen, pet.pid)) is not None and r[0] < x - 200 and r  # noqa: E731
            await eventually(moved, timeout=10, what="the window following the drag")
            place = settings.data_path() / "pet.json"
            await eventually(lambda: place.exists() and json.loads(place.read_text())["x"] == moved()[0], timeout=10,
                             what="the new place remembered")
            x, y, w, h = moved()
            screen.xdotool("mousemove", str(x + w // 2), str(y + int(h * 0.5)), "click", "4", "click", "4")
            grown = lambda: (r := window_rect(screen, pet.pid)) is not None and r[2] > w and r  # noqa: E731
            await eventually(grown, timeout=10, what="the wheel making her bigger")
            x2, y2, w2, h2 = grown()
            assert abs((x2 + w2 / 2) - (x + w / 2)) <= 2 and abs((y2 + h2) - (y + h)) <= 2, "she did not grow around her feet"
            await eventually(lambda: json.loads(place.read_text())["scale"] > 1.0, timeout=10, what="her size remembered")
            x, y, w, h = x2, y2, w2, h2

            # typing with the real keyboard reaches the conversation; the reply shows in the bubble, the mouth moves
            fake_openai.reply = "[happy] Hello there! I am standing right here on your desktop, next to your work."
            box = await page.centre("text")
            screen.xdotool("mousemove", str(int(x + box[0])), str(int(y + box[1])), "click", "1")
            await eventually(lambda: page.js("document.activeElement && document.activeElement.id === 'text'"), timeout=10, what="the box focused")
            screen.xdotool("type", "--delay", "20", "Hi Mika, are you there?")
            screen.xdotool("key", "Return")
            await eventually(lambda: any("are you there" in str(r.get("messages", [])[-1:]) for r in fake_openai.requests), timeout=20,
                             what="the typed message reaching the model")
            opened = []

            async def mouth_open() -> bool:
                svg = await page.js("(() => { const r = document.querySelector('#avatar svg').getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })()")
                mx, my = x + svg[0] + svg[2] * 150 / 300, y + svg[1] + svg[3] * 212 / 360
                crop = np.asarray(screen.grab())[int(my) - 25:int(my) + 25, int(mx) - 30:int(mx) + 30]
                opened.append(int(near(crop, MOUTH).sum()))
                return opened[-1] > 15

            await eventually(lambda: page.js("petStatus().bubble.includes('Hello there! I am standing')"), timeout=20, what="her reply in the bubble")
            await eventually(mouth_open, timeout=10, every=0.02, what="her mouth opening on the screen")
            screen.grab().crop((max(0, x - 30), max(0, y - 20), min(screen.width, x + w + 30), min(screen.height, y + h + 10))).save(
                ARTIFACTS / "pet-talking.png")  # the README's picture (docs/pet.png)
            await eventually(lambda: page.js("!petStatus().talking && petStatus().mouth === 'closed'"), timeout=30, what="her mouth settling")
            await eventually(lambda: _not(mouth_open()), timeout=3, what="her mouth shut on the screen")

            # push-to-talk on the window's microphone (no local voice path here): hold, speak, release -> one voice turn
            assert await page.js("petStatus().mic") == "window"
            fake_openai.reply = "It is sunny in Paris today, perfect for a walk."
            talk = await page.centre("talk")
            screen.xdotool("mousemove", str(int(x + talk[0])), str(int(y + talk[1])), "mousedown", "1")
            fed = lambda: sum(int(getattr(v.source, "received", 0)) for v in chat._voices.values())  # noqa: E731, SLF001
            await eventually(lambda: fed() >= len(question) + 12000, timeout=30, what="the question streamed from the window's microphone")
            screen.xdotool("mouseup", "1")
            await eventually(lambda: page.js("/paris/i.test(petStatus().heard)"), timeout=30, what="the spoken question transcribed")
            await eventually(lambda: page.js("petStatus().bubble.includes('sunny in Paris')"), timeout=30, what="her spoken answer in the bubble")

            # the companion restarts under her: the window reconnects by itself
            port = chat.port
            await stop(chat)
            await eventually(lambda: page.js("!petStatus().connected"), timeout=15, what="the window noticing")
            chat = await serve(settings, whisper, port=port)
            await eventually(lambda: page.js("petStatus().connected"), timeout=30, what="the window reconnecting")

            # the global hotkey hides her and brings her back, wherever the keyboard focus is
            screen.xdotool("mousemove", "10", "10", "click", "1")
            screen.xdotool("key", "ctrl+alt+p")
            await eventually(lambda: window_rect(screen, pet.pid) is None, timeout=10, what="the hotkey hiding her")
            screen.xdotool("key", "ctrl+alt+p")
            await eventually(lambda: window_rect(screen, pet.pid) is not None, timeout=10, what="the hotkey showing her again")

            # closing her window (its own button) ends the process and every helper it started
            helpers = psutil.Process(pet.pid).children(recursive=True)
            close = await page.centre("close")
            await page.close()
            screen.xdotool("mousemove", str(int(x + close[0])), str(int(y + close[1])), "click", "1")
            await eventually(lambda: pet.poll() is not None, timeout=20, what="the pet process ending")
            assert pet.returncode == 0, pet.stdout.read().decode() if pet.stdout else ""
            await eventually(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in helpers), timeout=10,
                             what="its web engine helpers ending")
        finally:
            await page.close()
            if pet.poll() is None:
                pet.send_signal(signal.SIGTERM)
                try:
                    pet.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pet.kill()
            if pet.stdout is not None:  # what the window said, for a failure's report
                print(pet.stdout.read().decode(errors="replace")[-4000:])
            await stop(chat)


def pet_config(tmp_path: Path, fake_openai, *, pet_enabled: bool) -> Path:
    """A companion.toml for a companion process of its own on the OpenAI stand-in, on a free port."""
    config = tmp_path / f"companion-{int(pet_enabled)}.toml"
    config.write_text(
        f'[companion]\ndata_dir = "{tmp_path / "data"}"\n'
        f'[llm]\nprovider = "openai"\n[llm.openai]\nbase_url = "{fake_openai.base_url}"\nmodel = "test-model"\n'
        f'[memory]\nenabled = false\n[web]\nport = {free_port()}\n[pet]\nenabled = {str(pet_enabled).lower()}\n',
        encoding="utf-8",
    )
    return config


def family(proc: subprocess.Popen) -> list[psutil.Process]:
    """The process and everything it started (a companion, web engine helpers)."""
    root = psutil.Process(proc.pid)
    return [root, *root.children(recursive=True)]


def all_gone(processes: list[psutil.Process]) -> bool:
    return not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in processes)


@asynccontextmanager
async def companion_process(args: list[str], env: dict[str, str], devtools: int):
    """`python -m companion ARGS` and a probe of the pet page it shows; it and all it started are gone afterwards."""
    proc = subprocess.Popen([sys.executable, "-m", "companion", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    page = PageProbe(devtools)
    seen: list[psutil.Process] = []
    try:
        await eventually(page.ready, timeout=120, what=f"her window from `companion {' '.join(args[2:])}`")
        await eventually(lambda: page.js("window.petStatus ? petStatus().connected : false"), timeout=30, what="the page connected")
        seen.extend(family(proc))
        yield proc, page, seen
    finally:
        await page.close()
        for p in seen:
            if p.is_running():
                p.kill()
        if proc.poll() is None:
            proc.kill()


async def test_pet_alone_starts_the_companion_and_run_opens_the_pet(fake_openai, tmp_path):
    """`companion pet` with no companion running starts one and stops it when her window closes; `[pet] enabled`
    opens her window with `companion run`, and stopping the companion closes it. Nothing is left behind either way."""
    need_desktop()
    fake_openai.reply = "Hello from the desktop."
    with virtual_desktop() as screen:
        devtools = free_port()
        env = {**screen.env(), "COMPANION_PET_DEVTOOLS_PORT": str(devtools)}
        config = str(pet_config(tmp_path, fake_openai, pet_enabled=True))
        async with companion_process(["--config", config, "pet"], env, devtools) as (alone, page, started):
            assert any("run" in p.cmdline() for p in started), "no companion was started"
            assert sum("pet" in p.cmdline() for p in started) == 1  # the started companion's [pet] enabled opened no second window
            close = await page.centre("close")
            placed = lambda: (r := window_rect(screen, alone.pid)) is not None and r[0] > screen.width // 2 and r  # noqa: E731
            await eventually(placed, timeout=20, what="her window at the bottom right of the screen")
            rect = placed()
            await page.close()
            screen.xdotool("mousemove", str(int(rect[0] + close[0])), str(int(rect[1] + close[1])), "click", "1")
            await eventually(lambda: alone.poll() is not None, timeout=30, what="`companion pet` ending")
            assert alone.returncode == 0
            await eventually(lambda: all_gone(started), timeout=15, what="the companion it started stopping too")

        async with companion_process(["--config", config, "run"], env, devtools) as (run, page, everything):
            await page.close()
            run.send_signal(signal.SIGTERM)
            await eventually(lambda: run.poll() is not None, timeout=15, what="`companion run` stopping")
            await eventually(lambda: all_gone(everything), timeout=15, what="her window closing with it")
