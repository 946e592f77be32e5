"""Which browser requests the web server accepts (pure): loopback is not a trust boundary.

Any page the user opens can send requests to 127.0.0.1: a form posting
text/plain needs no preflight, and a DNS-rebinding page reaches us under its
own host name. So, on every request:

* the Host must be a loopback name, the bound address or a configured name
  (a rebinding page's Host is its own domain); in token mode the token is
  the boundary and any Host is fine (the companion is reached by LAN address);
* a state change (POST, PUT, PATCH, DELETE) must come as JSON (a cross-site
  page cannot send that without a preflight we never answer) and, when the
  browser says where it comes from, from our own origin;
* a websocket upgrade from a browser must come from our own origin.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlparse

__all__ = ["refusal", "host_name", "SECURITY_HEADERS"]

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Scripts only from our own files (no inline script, no eval, no blob worklets): an injected
# <script> never runs. Styles may be inline (the pages' own <style> blocks). Pages are never
# framed by other sites (clickjacking); connections go back to us only.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "media-src 'self' blob:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def host_name(host: str) -> str:
    """'127.0.0.1:8765' -> '127.0.0.1', '[::1]:8765' -> '::1', 'LOCALHOST' -> 'localhost'."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host[1:]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def refusal(
    *,
    method: str,
    host: str,
    origin: str | None,
    content_type: str,
    websocket: bool,
    bind_host: str,
    allowed_hosts: Iterable[str] = (),
    token_mode: bool = False,
) -> str | None:
    """Why this request is refused, or None to serve it."""
    name = host_name(host)
    if not token_mode:
        allowed = set(LOOPBACK_NAMES) | {host_name(h) for h in allowed_hosts}
        if bind_host not in ("0.0.0.0", "::", ""):
            allowed.add(host_name(bind_host))
        if name not in allowed:
            return f"Host {host!r} is not this companion (add it to [web] allowed_hosts if you use that name)"
    same_origin = origin is None or urlparse(origin).netloc.lower() == host.strip().lower()
    if websocket and not same_origin:
        return "cross-origin websocket refused"
    if method.upper() in STATE_CHANGING:
        if not same_origin:
            return "cross-origin request refused"
        if method.upper() != "DELETE" and content_type.split(";")[0].strip().lower() != "application/json":
            return "send JSON (Content-Type: application/json)"
    return None
