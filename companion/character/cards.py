"""Character card files: Character Card V2/V3 as JSON, PNG (tEXt chunks) and CHARX (zip).

Reading and writing only; what the fields mean for the prompt lives in
``persona.py``. Cards come from strangers on the internet, so every path is
size-limited and every failure is a ``CardError`` that names the file and the
problem, never a traceback.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

from companion.runtime import safejson

__all__ = [
    "CardError",
    "MAX_CARD_BYTES",
    "read_card_file",
    "card_from_json",
    "read_png_card",
    "write_png_card",
    "read_charx",
    "placeholder_png",
]

MAX_CARD_BYTES = 32 * 1024 * 1024  # PNG cards carry an image; CHARX may carry assets
MAX_JSON_BYTES = 8 * 1024 * 1024
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class CardError(Exception):
    """A character card that cannot be used; the message names the file and the problem."""


def read_card_file(path: Path) -> tuple[dict[str, Any], bytes | None]:
    """Read any supported card file; returns (card JSON object, PNG bytes if it was a PNG)."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise CardError(f"character card {path}: cannot be read ({exc.strerror})") from None
    if size > MAX_CARD_BYTES:
        raise CardError(f"character card {path}: {size // 1024} KiB is too large (limit {MAX_CARD_BYTES // (1024 * 1024)} MiB)")
    data = path.read_bytes()
    where = f"character card {path}"
    if data.startswith(PNG_SIGNATURE):
        return read_png_card(data, where), data
    if data.startswith(b"PK\x03\x04"):
        return read_charx(data, where), None
    if size > MAX_JSON_BYTES:
        raise CardError(f"{where}: {size // 1024} KiB is too large for a JSON card")
    return card_from_json(data, where), None


def card_from_json(data: bytes | str, where: str) -> dict[str, Any]:
    try:
        text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise CardError(f"{where}: not UTF-8 text, and not a PNG or CHARX card either") from None
    try:
        obj = safejson.loads(text)
    except safejson.JSONInputError as exc:
        raise CardError(f"{where}: {exc}") from None
    if not isinstance(obj, dict):
        raise CardError(f"{where}: expected a JSON object at the top level")
    return obj


# -- PNG ----------------------------------------------------------------------


def _chunks(png: bytes, where: str) -> list[tuple[bytes, bytes]]:
    if not png.startswith(PNG_SIGNATURE):
        raise CardError(f"{where}: not a PNG file")
    chunks = []
    pos = len(PNG_SIGNATURE)
    while pos + 8 <= len(png):
        length, kind = struct.unpack(">I4s", png[pos : pos + 8])
        end = pos + 12 + length
        if end > len(png):
            raise CardError(f"{where}: the PNG is truncated (chunk {kind!r} runs past the end of the file)")
        chunks.append((kind, png[pos + 8 : pos + 8 + length]))
        pos = end
        if kind == b"IEND":
            break
    return chunks


def read_png_card(png: bytes, where: str = "PNG card") -> dict[str, Any]:
    """The card in a PNG: tEXt ``ccv3`` (V3) wins over ``chara`` (V2); keywords match case-insensitively."""
    found: dict[str, bytes] = {}
    for kind, body in _chunks(png, where):
        if kind != b"tEXt" or b"\x00" not in body:
            continue
        keyword, text = body.split(b"\x00", 1)
        key = keyword.decode("latin-1").lower()
        if key in ("chara", "ccv3"):
            found[key] = text
    if not found:
        raise CardError(f"{where}: this PNG holds no character card (no 'chara' or 'ccv3' text chunk)")
    key = "ccv3" if "ccv3" in found else "chara"
    try:
        raw = base64.b64decode(found[key], validate=False)
        if not raw:
            raise binascii.Error("empty")
    except (binascii.Error, ValueError):
        raise CardError(f"{where}: the '{key}' chunk is not valid base64") from None
    return card_from_json(raw, f"{where} ('{key}' chunk)")


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def write_png_card(png: bytes, card: dict[str, Any], *, v2_copy: dict[str, Any] | None = None) -> bytes:
    """``png`` with its card chunks replaced: ``ccv3`` (and ``chara`` for V2 readers, as SillyTavern does)."""
    chunks = [(k, b) for k, b in _chunks(png, "image") if not (k == b"tEXt" and b.split(b"\x00", 1)[0].lower() in (b"chara", b"ccv3"))]
    out = [PNG_SIGNATURE]
    texts = []
    if v2_copy is not None:
        texts.append(_chunk(b"tEXt", b"chara\x00" + base64.b64encode(json.dumps(v2_copy, ensure_ascii=False).encode())))
    texts.append(_chunk(b"tEXt", b"ccv3\x00" + base64.b64encode(json.dumps(card, ensure_ascii=False).encode())))
    for kind, body in chunks:
        if kind == b"IEND":
            out.extend(texts)
        out.append(_chunk(kind, body))
    return b"".join(out)


def placeholder_png(size: int = 64, rgb: tuple[int, int, int] = (124, 92, 255)) -> bytes:
    """A plain square PNG, for exporting a card that came without an image."""
    raw = b"".join(b"\x00" + bytes(rgb) * size for _ in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b"")


# -- CHARX --------------------------------------------------------------------


def read_charx(data: bytes, where: str = "CHARX card") -> dict[str, Any]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            try:
                info = archive.getinfo("card.json")
            except KeyError:
                raise CardError(f"{where}: this CHARX archive has no card.json at its root") from None
            if info.file_size > MAX_JSON_BYTES:
                raise CardError(f"{where}: card.json is too large ({info.file_size // 1024} KiB)")
            return card_from_json(archive.read(info), f"{where} (card.json)")
    except zipfile.BadZipFile:
        raise CardError(f"{where}: not a valid zip archive") from None
