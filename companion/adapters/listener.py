"""Our HTTP/websocket listeners, bounded: a header-read timeout and a connection cap.

aiohttp keeps a connection that never finishes its request headers open for
its keep-alive timeout (an hour by default), and accepts connections without
limit, so a few hundred half-sent requests held the server and, under the
usual 1,024 file-descriptor limit, it stopped answering. Here the wait for a
request is ``header_timeout`` seconds, and past ``max_connections`` a new
connection gets an immediate 503 and is closed.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections.abc import Callable
from typing import Any

from aiohttp import web

__all__ = ["BoundedRunner", "raise_fd_limit"]

log = logging.getLogger(__name__)

_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 36\r\n"
    b"Connection: close\r\nRetry-After: 5\r\n\r\ntoo many connections; try again soon"
)


class _Busy(asyncio.Protocol):
    """Answers 503 and hangs up: the cheapest thing to do with one connection too many."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(_BUSY)
        transport.close()


class BoundedRunner(web.AppRunner):
    """An AppRunner whose sites refuse connections over ``max_connections`` and drop silent ones."""

    def __init__(self, app: web.Application, *, max_connections: int, header_timeout: float, **kwargs: Any) -> None:
        # keepalive_timeout also runs from the moment a connection opens until its
        # first request is complete: it is the header-read timeout.
        super().__init__(app, keepalive_timeout=header_timeout, handle_signals=False, access_log=None, **kwargs)
        self.max_connections = max_connections
        self.refused = 0
        self._warned = False

    @property
    def open_connections(self) -> int:
        """Connections being served now (the ones refused with 503 not counted)."""
        inner = super().server
        return 0 if inner is None else len(inner.connections)

    @property
    def server(self) -> Callable[[], asyncio.Protocol] | None:  # type: ignore[override]
        inner = super().server
        if inner is None:
            return None

        def factory() -> asyncio.Protocol:
            if len(inner.connections) >= self.max_connections:
                self.refused += 1
                if not self._warned:
                    self._warned = True
                    log.warning("more than %d connections at once: new ones get 503 until some close", self.max_connections)
                return _Busy()
            self._warned = False
            return inner()

        return factory


def raise_fd_limit(wanted: int = 8192) -> int:
    """Lift the soft open-files limit toward the hard one (1,024 is common), so many clients never mean EMFILE."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        if soft != resource.RLIM_INFINITY and soft < target:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return target
        return soft
    except (ValueError, OSError):
        return -1


def bound_port(runner: web.BaseRunner, default: int) -> int:
    """The port a started runner listens on (the one the OS chose, for port 0)."""
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return default
