"""A local stand-in for the Hugging Face hub: what huggingface_hub asks when it lists and downloads files."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

COMMIT = "a" * 40


@dataclass
class StandInHub:
    repos: dict[str, dict[str, bytes]] = field(default_factory=dict)  # repo id -> file name -> content
    gated: set[str] = field(default_factory=set)
    cut_next: int | None = None  # the next GET drops after this many bytes; later GETs get 503 until `unavailable` is cleared
    unavailable: bool = False
    corrupt: set[str] = field(default_factory=set)  # files served with damaged bytes
    ranges: list[str] = field(default_factory=list)  # the Range header of each GET
    url: str = ""

    def add(self, repo: str, name: str, content: bytes) -> None:
        self.repos.setdefault(repo, {})[name] = content

    def start(self) -> "StandInHub":
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _error(self, status: int, code: str) -> None:
                self.send_response(status)
                self.send_header("X-Error-Code", code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _file(self, head: bool) -> None:
                parts = self.path.split("?")[0].strip("/").split("/")
                if len(parts) < 5 or parts[2] != "resolve":
                    return self._error(404, "RepoNotFound")
                repo, name = "/".join(parts[:2]), "/".join(parts[4:])
                if repo in hub.gated:
                    return self._error(401, "GatedRepo")
                if repo not in hub.repos:
                    return self._error(404, "RepoNotFound")
                if name not in hub.repos[repo]:
                    return self._error(404, "EntryNotFound")
                good = hub.repos[repo][name]
                body = bytes(b ^ 0xFF for b in good) if name in hub.corrupt else good
                start = 0
                if not head and hub.unavailable:
                    return self._error(503, "Unavailable")
                if not head:
                    hub.ranges.append(self.headers.get("Range", ""))
                    if self.headers.get("Range", "").startswith("bytes="):
                        start = int(self.headers["Range"][6:].split("-")[0])
                self.send_response(206 if start else 200)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", f'"{hashlib.sha256(good).hexdigest()}"')
                self.send_header("X-Linked-Etag", f'"{hashlib.sha256(good).hexdigest()}"')
                self.send_header("X-Linked-Size", str(len(good)))
                self.send_header("Content-Length", str(len(body) - start))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.end_headers()
                if head:
                    return
                data = body[start:]
                if hub.cut_next is not None:
                    cut, hub.cut_next, hub.unavailable = hub.cut_next, None, True
                    self.wfile.write(data[:cut])
                    self.wfile.flush()
                    self.connection.shutdown(2)  # the connection drops mid-file
                    return
                self.wfile.write(data)

            def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
                self._file(head=True)

            def do_GET(self) -> None:  # noqa: N802
                if self.path.startswith("/api/models/"):
                    parts = self.path.split("?")[0].split("/")
                    repo = "/".join(parts[3:5])
                    if repo not in hub.repos:
                        return self._error(404, "RepoNotFound")
                    listing = [{"type": "file", "path": n, "size": len(c), "oid": "0" * 40} for n, c in hub.repos[repo].items()]
                    body = json.dumps(listing).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                self._file(head=False)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def packaged_gguf() -> bytes:
    from companion.llm.gguf_meta import default_gguf_path

    return Path(default_gguf_path()).read_bytes()


def tiny_gguf(size: int = 3_000_000, arch: str = "llama") -> bytes:
    """A GGUF header (version 3, no tensors, general.architecture set) padded to ``size`` bytes: passes our checks."""
    import struct

    def text(value: str) -> bytes:
        raw = value.encode()
        return struct.pack("<Q", len(raw)) + raw

    header = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + text("general.architecture") + struct.pack("<I", 8) + text(arch)
    return header + b"\0" * (size - len(header))


def serve_recommended(monkeypatch, tmp_path: Path, size: int):  # noqa: ANN001, ANN201 - pytest's monkeypatch
    """A stand-in hub (HF_ENDPOINT) serving the catalog model recommended for this machine as a ``size``-byte GGUF,
    with the hub cache in ``tmp_path/hf``. Returns (catalog entry, hub); stop the hub when done."""
    from huggingface_hub import constants

    from companion.init.wizard import _recommended_download

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    entry, _ = _recommended_download()
    hub = StandInHub().start()
    hub.add(entry.repo, entry.file, tiny_gguf(size))
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    return entry, hub
