"""The web protocol document stays in step with the code."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_websocket_message_and_route_is_documented():
    """Each message type the web server sends or accepts, and each route it serves, appears in docs/protocol.md."""
    doc = (ROOT / "docs" / "protocol.md").read_text()
    code = "".join((ROOT / "companion" / "adapters" / name).read_text() for name in ("web.py", "web_voice.py"))
    types = set(re.findall(r'"type": "([a-z_]+)"', code)) | set(re.findall(r'kind == "([a-z_]+)"', code))
    routes = set(re.findall(r'add_(?:get|post|delete)\("([^"]+)"', code))
    assert types and routes
    missing = [t for t in sorted(types) if f'"type": "{t}"' not in doc] + [r for r in sorted(routes) if r.split("{")[0] not in doc]
    assert missing == []
