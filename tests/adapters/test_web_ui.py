"""The web UI's server side: voice over the websocket, overlay events, control API, protocol fuzzing."""

import asyncio
import json

import aiohttp
import numpy as np
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from companion.stream.chat import ChatAnswering
from companion.testing import eventually
from tests.adapters.test_web import web_chat  # noqa: F401 - fixture
from tests.voice.conftest import speech_16k, words


async def test_voice_over_the_websocket(web_chat, settings_for, fake_openai, tmp_path, whisper):  # noqa: F811
    """Microphone PCM in binary frames gives a transcript, streamed reply audio, captions and a latency timeline."""
    settings = settings_for(fake_openai)
    settings.voice.tts.provider = "espeak"
    fake_openai.reply = "Paris is lovely in the spring. You should visit."
    chat = await web_chat(settings)
    chat.voice_models.stt = whisper  # the session-wide whisper, already loaded
    from companion.voice.tts.espeak import EspeakTTS

    chat.voice_models.tts = EspeakTTS()
    question = speech_16k("Tell me about the city of Paris", tmp_path)
    pcm = np.concatenate([np.zeros(4800), question, np.zeros(16000)])
    pcm = (pcm * 32767).astype("<i2").tobytes()
    got: dict[str, list] = {"json": [], "audio": []}
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(f"http://127.0.0.1:{chat.port}/ws?session=v1") as ws:
            await ws.receive(timeout=5)  # hello
            await ws.send_str(json.dumps({"type": "voice_start"}))
            for i in range(0, len(pcm), 640):  # 20 ms frames, faster than real time
                await ws.send_bytes(pcm[i : i + 640])
                if i % 6400 == 0:
                    await asyncio.sleep(0)  # the server reads as we send
            while not any(m["type"] == "voice_timings" for m in got["json"]):
                msg = await ws.receive(timeout=60)
                if msg.type == aiohttp.WSMsgType.BINARY:
                    got["audio"].append(msg.data)
                else:
                    got["json"].append(json.loads(msg.data))
    kinds = [m["type"] for m in got["json"]]
    assert "audio_format" in kinds and "caption" in kinds
    final = [m["text"] for m in got["json"] if m["type"] == "transcript" and m["final"]]
    assert final and {"paris"} <= words(final[0])
    assert sum(len(a) for a in got["audio"]) > 22050  # over half a second of reply audio, streamed in pieces
    assert len(got["audio"]) > 10
    timings = next(m for m in got["json"] if m["type"] == "voice_timings")["timings"]
    assert timings["voice_to_voice_ms"] > 0 and "first_audio" in timings


async def test_overlay_events_show_captions_and_the_chat_being_answered(web_chat, fake_openai):  # noqa: F811
    """The /events socket used by the OBS overlay receives each sentence and the chat message being answered."""
    chat = await web_chat()
    async with aiohttp.ClientSession() as http:
        page = await (await http.get(f"http://127.0.0.1:{chat.port}/overlay")).text()
        script = await (await http.get(f"http://127.0.0.1:{chat.port}/static/overlay.js")).text()
        assert "/static/overlay.js" in page and "/events" in script and "size" in script
        async with http.ws_connect(f"http://127.0.0.1:{chat.port}/events") as events:
            await eventually(lambda: bool(chat._event_sockets), what="the server holding the /events socket")  # noqa: SLF001
            chat.companion.bus.publish(ChatAnswering("twitch", "viewer1", "what game is this?"))
            await chat.companion.respond("hi", conversation_id="web:x")
            seen = []
            while not any(m["type"] == "turn_end" for m in seen):
                seen.append(json.loads((await events.receive(timeout=5)).data))
    assert seen[0] == {"type": "answering", "user": "viewer1", "text": "what game is this?", "platform": "twitch"}
    assert [m["text"] for m in seen if m["type"] == "caption"][0].startswith("Hello there!")


async def test_control_api(web_chat, fake_openai):  # noqa: F811
    """Status, mute, say as the streamer, persona switch and memories answer with JSON, and bad input with 400s."""
    chat = await web_chat()
    base = f"http://127.0.0.1:{chat.port}"
    async with aiohttp.ClientSession() as http:
        status = await (await http.get(f"{base}/api/status")).json()
        assert status["character"] == chat.companion.character.name and status["muted"] is False
        assert (await (await http.post(f"{base}/api/mute", json={"on": True})).json()) == {"muted": True}
        assert (await http.post(f"{base}/api/mute", data="nope", headers={"Content-Type": "application/json"})).status == 400
        assert (await http.post(f"{base}/api/mute", data="nope")).status == 403  # text/plain: what a cross-site form sends
        said = await (await http.post(f"{base}/api/say", json={"text": "Say hi to chat!"})).json()
        assert said["reply"].startswith("Hello there!") and said["error"] is None
        assert (await http.post(f"{base}/api/say", json={"text": ""})).status == 400
        bad = await http.post(f"{base}/api/persona", json={"card": "Nobody Imported"})
        assert bad.status == 400 and "error" in await bad.json()
        assert (await http.get(f"{base}/api/memories?q=x")).status == 404  # memory is off in these settings
        assert (await (await http.post(f"{base}/api/stop", json={})).json()) == {"stopped": []}
        assert (await http.post(f"{base}/api/stop")).status == 403  # no body, no type: a no-cors fetch from any page
        page = await (await http.get(f"{base}/control")).text()
        script = await (await http.get(f"{base}/static/control.js")).text()
        assert "/static/control.js" in page and "/api/status" in script


async def test_events_socket_refuses_other_origins(web_chat):  # noqa: F811
    """Another site's page cannot listen to the overlay events."""
    chat = await web_chat()
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await http.ws_connect(f"http://127.0.0.1:{chat.port}/events", headers={"Origin": "http://evil.example"})
        assert err.value.status == 403


frames = st.one_of(
    st.text(max_size=300).map(lambda t: ("text", t)),
    st.dictionaries(st.sampled_from(["type", "text", "on", "x"]), st.one_of(st.none(), st.integers(), st.text(max_size=20), st.booleans(), st.lists(st.integers(), max_size=3)), max_size=3)
    .map(lambda d: ("text", json.dumps(d))),
    st.binary(max_size=64).map(lambda b: ("bytes", b)),
)


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(frames, min_size=1, max_size=6))
async def test_websocket_fuzz_never_takes_the_server_down(web_chat, batch):  # noqa: F811
    """Random text, JSON of wrong shapes and binary frames: the server answers and keeps serving."""
    chat = await web_chat()
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(f"http://127.0.0.1:{chat.port}/ws?session=fuzz") as ws:
            await ws.receive(timeout=5)
            for kind, data in batch:
                if kind == "bytes":
                    await ws.send_bytes(data)
                else:
                    await ws.send_str(data)
        health = await http.get(f"http://127.0.0.1:{chat.port}/health")
        assert health.status == 200
