import json

import aiohttp
import pytest

from companion.adapters.web import WebChat
from companion.app import build_companion
from companion.config import Settings


@pytest.fixture
async def web_chat(fake_openai, settings_for):
    async def start(settings: Settings | None = None):
        settings = settings or settings_for(fake_openai)
        companion = build_companion(settings)
        await companion.start()
        chat = WebChat(companion, settings)
        await chat.start()
        started.append((chat, companion))
        return chat

    started: list = []
    yield start
    for chat, companion in started:
        await chat.stop()
        await companion.close()


async def receive_until(ws, kind):
    seen = []
    while True:
        msg = json.loads((await ws.receive(timeout=5)).data)
        seen.append(msg)
        if msg["type"] == kind:
            return seen


async def test_page_shows_and_websocket_streams_a_reply(web_chat, fake_openai):
    """The page loads; a chat message is answered token by token, then with timings."""
    chat = await web_chat()
    base = f"http://127.0.0.1:{chat.port}"
    async with aiohttp.ClientSession() as http:
        async with http.get(base + "/") as resp:
            assert resp.status == 200
            assert "<title>" in await resp.text()
        async with http.ws_connect(base + "/ws?session=t1") as ws:
            hello = json.loads((await ws.receive(timeout=5)).data)
            assert hello["type"] == "hello" and hello["character"] == "Mika"
            assert hello["greeting"].endswith("What are we doing today?")
            await ws.send_str(json.dumps({"type": "chat", "text": "Hi Mika!"}))
            seen = await receive_until(ws, "turn_end")
    kinds = [m["type"] for m in seen]
    assert kinds[0] == "turn_start"
    tokens = [m["text"] for m in seen if m["type"] == "token"]
    assert len(tokens) > 3 and "[happy]" not in "".join(tokens)
    end = seen[-1]
    assert end["reply"].startswith("Hello there!") and end["emotions"] == ["happy"]
    assert end["timings"]["first_token"] > 0


async def test_history_is_sent_on_reconnect(web_chat):
    """Reopening the page shows the earlier conversation of that session."""
    chat = await web_chat()
    url = f"http://127.0.0.1:{chat.port}/ws?session=again"
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url) as ws:
            await ws.receive(timeout=5)
            await ws.send_str(json.dumps({"type": "chat", "text": "remember me"}))
            await receive_until(ws, "turn_end")
        async with http.ws_connect(url) as ws:
            hello = json.loads((await ws.receive(timeout=5)).data)
    assert [h["text"] for h in hello["history"]][0] == "remember me"
    assert hello["history"][1]["role"] == "assistant"


async def test_malformed_and_unknown_messages_get_errors_not_crashes(web_chat):
    """Bad JSON, unknown types, empty and oversized chats are answered with errors; the socket stays up."""
    chat = await web_chat()
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(f"http://127.0.0.1:{chat.port}/ws") as ws:
            await ws.receive(timeout=5)
            for bad in ["not json", json.dumps({"type": "dance"}), json.dumps({"type": "chat", "text": ""}),
                        json.dumps({"type": "chat", "text": "x" * 5000})]:
                await ws.send_str(bad)
                reply = json.loads((await ws.receive(timeout=5)).data)
                assert reply["type"] == "error"
            await ws.send_str(json.dumps({"type": "chat", "text": "still there?"}))
            seen = await receive_until(ws, "turn_end")
            assert seen[-1]["error"] is None


async def test_oversized_frame_is_refused(web_chat):
    """A frame over the size limit closes the socket instead of being buffered."""
    chat = await web_chat()
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(f"http://127.0.0.1:{chat.port}/ws") as ws:
            await ws.receive(timeout=5)
            await ws.send_str("x" * 200_000)
            msg = await ws.receive(timeout=5)
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)


async def test_cross_origin_websocket_is_refused(web_chat):
    """A page from another site cannot open the companion's websocket."""
    chat = await web_chat()
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await http.ws_connect(f"http://127.0.0.1:{chat.port}/ws", headers={"Origin": "http://evil.example"})
        assert err.value.status == 403


async def test_token_is_required_when_set(web_chat, fake_openai, tmp_path, monkeypatch):
    """With a token, requests without it get 401 and requests with it work."""
    monkeypatch.setenv("COMPANION_WEB_TOKEN", "letmein-123")
    settings = Settings.model_validate(
        {
            "companion": {"data_dir": str(tmp_path / "d")},
            "llm": {"provider": "openai", "openai": {"base_url": fake_openai.base_url, "model": "test-model"}},
            "web": {"port": 0},
        }
    )
    chat = await web_chat(settings)
    base = f"http://127.0.0.1:{chat.port}"
    async with aiohttp.ClientSession() as http:
        async with http.get(base + "/") as resp:
            assert resp.status == 401
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await http.ws_connect(base + "/ws")
        async with http.get(base + "/?token=letmein-123") as resp:
            assert resp.status == 200
        async with http.ws_connect(base + "/ws", headers={"Authorization": "Bearer letmein-123"}) as ws:
            assert json.loads((await ws.receive(timeout=5)).data)["type"] == "hello"


async def test_stop_interrupts_the_reply(web_chat, fake_openai):
    """'stop' from the browser ends the reply early, marked interrupted."""
    fake_openai.reply = " ".join(["word"] * 200)
    fake_openai.token_delay = 0.01
    chat = await web_chat()
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(f"http://127.0.0.1:{chat.port}/ws") as ws:
            await ws.receive(timeout=5)
            await ws.send_str(json.dumps({"type": "chat", "text": "talk a lot"}))
            await receive_until(ws, "token")
            await ws.send_str(json.dumps({"type": "stop"}))
            end = (await receive_until(ws, "turn_end"))[-1]
    assert end["interrupted"] is True
    assert len(end["reply"].split()) < 200
