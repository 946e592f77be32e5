"""Web pages and rebinding hosts cannot drive the companion: Host, Origin and JSON checks."""

import json

import aiohttp
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from companion.adapters.web_guard import host_name, refusal
from tests.adapters.test_web import web_chat  # noqa: F401 - fixture
from tests.test_fuzz import json_values


def check(**overrides):
    request = dict(method="GET", host="127.0.0.1:8765", origin=None, content_type="", websocket=False, bind_host="127.0.0.1")
    request.update(overrides)
    return refusal(**request)


def test_hosts_are_loopback_names_the_bind_address_or_configured():
    """A DNS-rebinding Host is refused; loopback names, the bound address and allowed names are served."""
    assert check() is None and check(host="localhost:8765") is None and check(host="[::1]:8765") is None
    assert "not this companion" in check(host="attacker.example:8765")
    assert check(host="mybox.lan:8765", allowed_hosts=["mybox.lan"]) is None
    assert check(host="192.168.1.5:8765", bind_host="192.168.1.5") is None
    assert check(host="anything.example:8765", token_mode=True) is None  # the token is the boundary there
    assert host_name("[::1]:80") == "::1" and host_name("LocalHost") == "localhost"


def test_state_changes_need_json_from_our_own_origin():
    """A text/plain form post or a foreign Origin is refused; same-origin JSON passes; reads are unaffected."""
    assert "JSON" in check(method="POST", content_type="text/plain")
    assert "cross-origin" in check(method="POST", content_type="application/json", origin="https://evil.example")
    assert check(method="POST", content_type="application/json; charset=utf-8", origin="http://127.0.0.1:8765") is None
    assert check(method="POST", content_type="application/json") is None  # scripts send no Origin
    assert "cross-origin" in check(method="DELETE", origin="http://evil.example")
    assert check(method="GET", origin="http://evil.example") is None


def test_websockets_from_other_origins_are_refused():
    """A browser page elsewhere cannot open the chat or events socket."""
    assert "websocket" in check(websocket=True, origin="http://evil.example")
    assert check(websocket=True, origin="http://127.0.0.1:8765") is None


async def test_the_running_server_refuses_cross_site_requests(web_chat):
    """Against the real server: cross-site say/mute/stop and a rebinding Host get 403; the control page's own calls work."""
    chat = await web_chat()
    base = f"http://127.0.0.1:{chat.port}"
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/api/mute", data='{"on": true}', headers={"Content-Type": "text/plain"}) as r:
            assert r.status == 403
        async with http.post(f"{base}/api/say", json={"text": "hi"}, headers={"Origin": "https://evil.example"}) as r:
            assert r.status == 403
        async with http.get(f"{base}/api/memories", headers={"Host": f"attacker.example:{chat.port}"}) as r:
            assert r.status == 403
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await http.ws_connect(f"{base}/ws", headers={"Host": f"attacker.example:{chat.port}"})
        async with http.post(f"{base}/api/mute", json={"on": True}, headers={"Origin": base}) as r:
            assert r.status == 200
        async with http.get(f"{base}/") as r:
            assert r.headers["X-Frame-Options"] == "DENY" and "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    assert chat.muted


async def test_control_api_cannot_read_files_or_speak_as_the_owner(web_chat, tmp_path):
    """/api/persona takes imported names only (no paths, FIFOs or /dev/zero); /api/say is not the owner."""
    import os

    chat = await web_chat()
    base = f"http://127.0.0.1:{chat.port}"
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    async with aiohttp.ClientSession() as http:
        for card in ("/dev/zero", str(fifo), "~/.ssh/id_rsa", "../../etc/passwd", str(tmp_path)):
            async with http.post(f"{base}/api/persona", json={"card": card}) as r:
                assert r.status == 400 and "not a path" in (await r.json())["error"]
        async with http.post(f"{base}/api/persona", json={"card": "nobody"}) as r:
            assert r.status == 400 and "not an imported character" in (await r.json())["error"]
        async with http.post(f"{base}/api/say", json={"text": "hi", "conversation": "discord:123456"}) as r:
            assert r.status == 400
        async with http.post(f"{base}/api/say", json={"text": "hi"}) as r:
            assert r.status == 200
    said = [m for m in await chat.companion.history.recent("web:control", 10) if m.role == "user"]
    assert said and said[-1].speaker_id == "web:control"
    assert chat.companion.permission_level("web:control", "web") != "owner"


async def test_say_speaks_as_the_owner_only_when_configured(web_chat, settings_for, fake_openai):
    """With [web] say_as_owner, /api/say is the owner: their speaker id, their name in the prompt, owner-only tools."""
    settings = settings_for(fake_openai)
    settings.web.say_as_owner = True
    settings.companion.owner_name = "Robin"
    chat = await web_chat(settings)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"http://127.0.0.1:{chat.port}/api/say", json={"text": "hello from my stream deck"}) as r:
            assert r.status == 200
    said = [m for m in await chat.companion.history.recent("web:control", 10) if m.role == "user"]
    assert said[-1].speaker_id == "local" and said[-1].speaker_name == "Robin"
    assert chat.companion.permission_level("local", "web") == "owner"
    assert "Robin" in fake_openai.requests[-1]["messages"][0]["content"]


async def test_pages_run_only_our_own_scripts(web_chat, settings_for, fake_openai, monkeypatch):
    """Every page has a script-src 'self' policy and no inline script; in token mode the scripts load without the token, pages do not."""
    monkeypatch.setenv("COMPANION_WEB_TOKEN", "tok-0123456789")
    chat = await web_chat(settings_for(fake_openai))
    base = f"http://127.0.0.1:{chat.port}"
    async with aiohttp.ClientSession() as http:
        for path in ("/", "/overlay", "/control"):
            async with http.get(f"{base}{path}?token=tok-0123456789") as r:
                policy = r.headers["Content-Security-Policy"]
                assert "script-src 'self'" in policy and "unsafe-eval" not in policy
                assert "<script>" not in await r.text()
            async with http.get(f"{base}{path}") as r:
                assert r.status == 401
        async with http.get(f"{base}/static/index.js") as r:
            assert r.status == 200 and "WebSocket" in await r.text()


@hsettings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(requests=st.lists(st.tuples(
    st.sampled_from(["/api/mute", "/api/say", "/api/persona", "/api/stop", "/api/memories/1", "/api/memories/x"]),
    st.one_of(json_values.map(json.dumps), st.text(max_size=50), st.just("[" * 5000 + "]" * 5000)),
), min_size=1, max_size=5))
async def test_json_api_fuzz_answers_every_body_without_a_server_error(web_chat, requests):
    """Any body on any API route gets a 2xx or 4xx JSON answer, never a 500, and the server keeps serving."""
    chat = await web_chat()
    base = f"http://127.0.0.1:{chat.port}"
    async with aiohttp.ClientSession() as http:
        for path, body in requests:
            method = http.delete if path.startswith("/api/memories") else http.post
            async with method(f"{base}{path}", data=body, headers={"Content-Type": "application/json", "Origin": base}) as r:
                assert r.status < 500, (path, body[:80], await r.text())
                if r.status != 204:
                    assert isinstance(await r.json(), (dict, list))
        async with http.get(f"{base}/health") as r:
            assert r.status == 200
