"""The Twitch EventSub adapter against a local stand-in: subscriptions, chat and events, reconnects, token refresh."""

import asyncio
import os
import stat

import pytest

from companion.config import TwitchSection
from companion.stream.twitch import TokenStore, TwitchEventSub
from companion.testing import supervised
from tests.stream.fake_twitch import FakeTwitch, until


@pytest.fixture
async def twitch():
    server = await FakeTwitch().start()
    yield server
    await server.stop()


def adapter(server: FakeTwitch, tmp_path, received: list) -> TwitchEventSub:
    cfg = TwitchSection(enabled=True, channel="streamer", client_id="cid", eventsub_url=f"ws://127.0.0.1:{server.port}/ws",
                        api_url=f"{server.base}/helix", auth_url=f"{server.base}/oauth2")
    store = TokenStore(tmp_path / "twitch_tokens.json")
    store.save({"access_token": "old-token", "refresh_token": "refresh-1"})
    return TwitchEventSub(cfg, store, received.append, keepalive=10)


async def test_subscribes_for_the_session_and_turns_events_into_messages(twitch, tmp_path):
    """After session_welcome every subscription names the session; chat, mentions, cheers and raids arrive typed."""
    received = []
    tw = adapter(twitch, tmp_path, received)
    stop = asyncio.Event()
    task = asyncio.create_task(supervised(tw, stop))
    await asyncio.wait_for(tw.connected.wait(), 5)
    types = {s["type"] for s in twitch.subscriptions}
    assert {"channel.chat.message", "channel.cheer", "channel.raid", "channel.follow", "channel.subscription.gift"} <= types
    assert all(s["transport"] == {"method": "websocket", "session_id": "session-1"} for s in twitch.subscriptions)
    chat_sub = next(s for s in twitch.subscriptions if s["type"] == "channel.chat.message")
    assert chat_sub["condition"] == {"broadcaster_user_id": "100", "user_id": "200"}
    await twitch.notify("channel.chat.message", {"chatter_user_id": "7", "chatter_user_name": "Viewer", "message": {
        "text": "@mikabot hi!", "fragments": [{"type": "mention", "text": "@mikabot", "mention": {"user_id": "200"}}]}})
    await twitch.notify("channel.chat.message", {"chatter_user_id": "200", "chatter_user_name": "mikabot", "message": {"text": "my own reply", "fragments": []}})
    await twitch.notify("channel.raid", {"from_broadcaster_user_id": "9", "from_broadcaster_user_name": "Friend", "viewers": 250})
    await twitch.notify("channel.cheer", {"user_id": "8", "user_name": "Rich", "message": "cheer100 go", "bits": 100, "is_anonymous": False})
    await until(lambda: len(received) == 3)
    chat, raid, cheer = received
    assert (chat.user_name, chat.text, chat.mentions_bot, chat.kind) == ("Viewer", "@mikabot hi!", True, "chat")
    assert (raid.kind, raid.amount, raid.user_name) == ("raid", 250, "Friend")
    assert (cheer.kind, cheer.amount) == ("cheer", 100)
    stop.set()
    await task


async def test_expired_token_is_refreshed_and_stored_user_only(twitch, tmp_path):
    """A 401 from Helix refreshes the token once, retries, and stores the new tokens with mode 600."""
    twitch.valid_tokens = {"something-else"}  # the stored token has expired
    received = []
    tw = adapter(twitch, tmp_path, received)
    stop = asyncio.Event()
    task = asyncio.create_task(supervised(tw, stop))
    await asyncio.wait_for(tw.connected.wait(), 5)
    assert twitch.refreshed == 1
    path = tmp_path / "twitch_tokens.json"
    assert TokenStore(path).load()["access_token"] == "new-token"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    await tw.send_chat("hello chat")
    assert twitch.sent == [{"broadcaster_id": "100", "sender_id": "200", "message": "hello chat"}]
    stop.set()
    await task


async def test_session_reconnect_and_dropped_connections(twitch, tmp_path):
    """session_reconnect moves to the new URL without resubscribing; a dropped socket reconnects and resubscribes."""
    received = []
    tw = adapter(twitch, tmp_path, received)
    stop = asyncio.Event()
    task = asyncio.create_task(supervised(tw, stop))
    await asyncio.wait_for(tw.connected.wait(), 5)
    first = len(twitch.subscriptions)
    await twitch.ask_reconnect()
    await until(lambda: len(twitch.sessions) == 2)
    await twitch.notify("channel.chat.message", {"chatter_user_id": "7", "chatter_user_name": "V", "message": {"text": "still here", "fragments": []}})
    await until(lambda: [m.text for m in received] == ["still here"])  # working on the new session...
    assert len(twitch.subscriptions) == first  # ...without having subscribed again
    await twitch.drop()
    await until(lambda: len(twitch.sessions) == 3, timeout=15)
    await until(lambda: len(twitch.subscriptions) == 2 * first)
    stop.set()
    board = await task
    assert board.adapters["twitch"].restarts == 1  # the drop was the supervisor's to retry, once
