"""Find VTube Studio through its API state broadcast (UDP port 47779, every 2 s)."""

from __future__ import annotations

import asyncio
import json
import socket

__all__ = ["discover"]

PORT = 47779


class _Listener(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.found: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            msg = json.loads(data)
        except ValueError:
            return
        body = msg.get("data") if isinstance(msg, dict) else None
        if msg.get("messageType") == "VTubeStudioAPIStateBroadcast" and isinstance(body, dict) and body.get("active"):
            port = body.get("port")
            if isinstance(port, int) and not self.found.done():
                self.found.set_result(port)


async def discover(timeout: float = 3.0) -> int | None:
    """The API port VTube Studio announces on this machine, or None within ``timeout``."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if hasattr(socket, "SO_REUSEPORT"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(("", PORT))
    except OSError:
        sock.close()
        return None
    transport, listener = await loop.create_datagram_endpoint(_Listener, sock=sock)
    try:
        return await asyncio.wait_for(listener.found, timeout)
    except TimeoutError:
        return None
    finally:
        transport.close()
