"""The VTube Studio client against a local fake server speaking the public API."""

import asyncio
import os
import stat

import pytest

from companion.avatar.client import AvatarAuthError, AvatarUnavailable, VTSClient
from companion.avatar.protocol import ApiError
from companion.testing import eventually
from tests.fakes_vts import FakeVTS


@pytest.fixture
async def vts():
    server = await FakeVTS().start()
    yield server
    await server.stop()


def client(server, tmp_path, **kw) -> VTSClient:
    return VTSClient(server.url, token_path=tmp_path / "vts-token", **kw)


async def test_token_is_requested_once_and_stored_user_only(vts, tmp_path):
    """The first connect asks for a token and stores it (mode 600); the next connect reuses it."""
    first = client(vts, tmp_path)
    await first.connect()
    await first.close()
    token_file = tmp_path / "vts-token"
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    second = client(vts, tmp_path)
    await second.connect()
    state = await second.request("APIStateRequest")
    await second.close()
    assert vts.token_requests == 1 and state["currentSessionAuthenticated"] is True


async def test_denied_access_says_to_approve_the_plugin(vts, tmp_path):
    """Clicking Deny in VTube Studio gives one clear error telling the user what to click."""
    vts.deny = True
    c = client(vts, tmp_path)
    with pytest.raises(AvatarAuthError, match="Allow"):
        await c.connect()
    await c.close()


async def test_revoked_token_asks_for_a_new_one(vts, tmp_path):
    """A token revoked in VTube Studio is replaced through a new approval."""
    c = client(vts, tmp_path)
    await c.connect()
    await c.close()
    vts.revoke()
    c = client(vts, tmp_path)
    await c.connect()
    await c.close()
    assert vts.token_requests == 2
    assert (tmp_path / "vts-token").read_text() == "token-2"


async def test_not_running_is_unavailable_with_a_hint(tmp_path):
    """No VTube Studio listening: AvatarUnavailable naming the address and the setting to turn on."""
    c = VTSClient("ws://127.0.0.1:9", token_path=tmp_path / "t")
    with pytest.raises(AvatarUnavailable, match="127.0.0.1:9.*Start API"):
        await c.connect()


async def test_concurrent_requests_and_events_are_never_confused(vts, tmp_path):
    """Many requests in flight with events interleaved: each reply reaches its own request."""
    vts.jitter = 20
    c = client(vts, tmp_path)
    events = []
    c.on("ModelLoadedEvent", events.append)
    await c.connect()
    await c.request("EventSubscriptionRequest", {"eventName": "ModelLoadedEvent", "subscribe": True, "config": {}})
    calls = []
    for i in range(60):
        calls.append(c.request("HotkeysInCurrentModelRequest", {}) if i % 2 else c.request("APIStateRequest"))
    emitter = asyncio.gather(*(vts.emit("ModelLoadedEvent", {"modelLoaded": True, "modelName": f"m{i}"}) for i in range(10)))
    results, _ = await asyncio.gather(asyncio.gather(*calls), emitter)
    for i, data in enumerate(results):
        assert ("availableHotkeys" in data) == bool(i % 2)
    await eventually(lambda: len(events) >= 10, what="ten ModelLoadedEvents")
    assert len(events) == 10
    await c.close()


async def test_api_errors_carry_their_id(vts, tmp_path):
    """APIError replies raise ApiError with VTube Studio's errorID."""
    c = client(vts, tmp_path)
    await c.connect()
    vts.hotkey_errors = [200]
    with pytest.raises(ApiError) as err:
        await c.request("HotkeyTriggerRequest", {"hotkeyID": "hk-smile"})
    assert err.value.error_id == 200
    await c.close()
