"""VTube Studio public API messages and errors: pure data, no I/O.

Facts from the API's own documentation (DenchiSoft/VTubeStudio README,
Events/README, Files/ErrorID.cs); see ../shared/PROTOCOLS.md.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ApiError", "envelope", "parse", "Reply", "Hotkey", "AUTH_ERRORS", "HOTKEY_BUSY_ERRORS"]

API_NAME = "VTubeStudioPublicAPI"
API_VERSION = "1.0"

# errorIDs (Files/ErrorID.cs)
API_ACCESS_DEACTIVATED = 1
REQUIRES_AUTHENTICATION = 8
TOKEN_REQUEST_DENIED = 50
AUTH_ERRORS = frozenset({8, 50, 51, 52, 53, 54, 100, 101, 102})
HOTKEY_BUSY_ERRORS = frozenset(range(200, 209))
PARAM_CONTROLLED_BY_OTHER_PLUGIN = 454

_ids = itertools.count(1)


class ApiError(Exception):
    """An APIError reply: ``error_id`` as in ErrorID.cs, ``message`` from VTube Studio."""

    def __init__(self, error_id: int, message: str, request: str = "") -> None:
        super().__init__(f"VTube Studio error {error_id} on {request or 'a request'}: {message}")
        self.error_id = error_id
        self.message = message
        self.request = request


def next_request_id() -> str:
    return f"companion-{next(_ids)}"


def envelope(message_type: str, data: dict[str, Any] | None = None, request_id: str | None = None) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "apiName": API_NAME,
        "apiVersion": API_VERSION,
        "requestID": request_id or next_request_id(),
        "messageType": message_type,
    }
    if data is not None:
        msg["data"] = data
    return msg


@dataclass(frozen=True, slots=True)
class Reply:
    message_type: str
    request_id: str | None
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def is_event(self) -> bool:
        return self.message_type.endswith("Event")

    @property
    def is_error(self) -> bool:
        return self.message_type == "APIError"

    def error(self, request: str = "") -> ApiError:
        return ApiError(int(self.data.get("errorID", -1)), str(self.data.get("message", "")), request)


def parse(frame: str | bytes) -> Reply | None:
    """A frame from VTube Studio, or None when it is not a message of this API (ignored, never fatal)."""
    try:
        obj = json.loads(frame)
    except (ValueError, TypeError):
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("messageType"), str):
        return None
    data = obj.get("data")
    rid = obj.get("requestID")
    return Reply(obj["messageType"], rid if isinstance(rid, str) else None, data if isinstance(data, dict) else {})


@dataclass(frozen=True, slots=True)
class Hotkey:
    hotkey_id: str
    name: str
    type: str = ""
    file: str = ""

    @classmethod
    def from_api(cls, item: dict[str, Any]) -> "Hotkey":
        return cls(str(item.get("hotkeyID", "")), str(item.get("name", "")), str(item.get("type", "")), str(item.get("file", "")))


# Words that name each emotion in typical model hotkeys ("Smile", "Angry face", "Cry", ...).
EMOTION_SYNONYMS: dict[str, tuple[str, ...]] = {
    "happy": ("happy", "smile", "joy", "glad", "laugh"),
    "sad": ("sad", "cry", "tear", "upset"),
    "angry": ("angry", "anger", "mad", "rage", "pout"),
    "surprised": ("surprise", "shock", "wow", "gasp"),
    "embarrassed": ("embarrass", "blush", "shy", "flustered"),
    "thinking": ("think", "ponder", "hmm", "curious"),
    "excited": ("excite", "sparkle", "star", "hype"),
    "scared": ("scared", "fear", "afraid", "panic"),
    "love": ("love", "heart"),
    "neutral": ("neutral", "default", "reset", "normal", "idle", "clear"),
}


def default_emotion_map(hotkeys: list[Hotkey], emotions: list[str]) -> dict[str, Hotkey]:
    """Emotion -> hotkey, by the hotkey names the current model actually has."""
    mapping: dict[str, Hotkey] = {}
    for emotion in emotions:
        words = EMOTION_SYNONYMS.get(emotion, (emotion,))
        for hotkey in hotkeys:
            name = f"{hotkey.name} {hotkey.file}".lower()
            if any(word in name for word in words):
                mapping[emotion] = hotkey
                break
    return mapping


def find_hotkey(hotkeys: list[Hotkey], ref: str) -> Hotkey | None:
    """A hotkey by id, or by name case-insensitively (what the user wrote in the config)."""
    for hotkey in hotkeys:
        if hotkey.hotkey_id == ref:
            return hotkey
    low = ref.lower()
    for hotkey in hotkeys:
        if hotkey.name.lower() == low:
            return hotkey
    return None
