"""The web server under half-sent requests and too many connections."""

import asyncio

import aiohttp

from companion.testing import eventually
from tests.adapters.test_web import web_chat  # noqa: F401 - the running web chat fixture


async def _half_sent(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # headers never finished
    await writer.drain()
    return reader, writer


async def test_connection_cap_answers_503_and_silent_connections_are_dropped(web_chat, settings_for, fake_openai):  # noqa: F811
    """Past max_connections a client gets 503 at once; half-sent requests are closed after header_timeout; then it serves again."""
    settings = settings_for(fake_openai)
    settings.web.max_connections = 4
    settings.web.header_timeout = 0.5
    chat = await web_chat(settings)
    slow = [await _half_sent(chat.port) for _ in range(4)]
    runner = chat._runner  # noqa: SLF001 - the server's own count of what it serves
    await eventually(lambda: runner is not None and runner.open_connections >= 4, what="four connections being served")
    reader, writer = await asyncio.open_connection("127.0.0.1", chat.port)
    answer = await asyncio.wait_for(reader.read(), 2)
    assert answer.startswith(b"HTTP/1.1 503")
    writer.close()
    for slow_reader, _ in slow:  # each silent connection is hung up on by the server
        assert await asyncio.wait_for(slow_reader.read(), 3) == b""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{chat.port}/health") as resp:
            assert resp.status == 200
    for _, slow_writer in slow:
        slow_writer.close()
