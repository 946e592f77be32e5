"""One rule for secrets: every value the configuration knows is masked wherever text leaves the process.

Secrets come from the config file and from environment variables; some are
only learned at run time (Twitch's OAuth tokens). They all go into one
process-wide set, and the sinks that show text to a person (log handlers,
including tracebacks; the web client's messages and JSON answers; the CLI's
standard output and error) pass their text through ``mask``. A server that
echoes our API key in its error message then shows "***" instead.
"""

from __future__ import annotations

import io
import logging
import re
import threading
from collections.abc import Iterable
from typing import Any, TextIO

__all__ = ["MASK", "register", "mask", "known", "clear", "MaskingFilter", "MaskingStream", "looks_secret"]

MASK = "***"
MIN_LENGTH = 6  # shorter values ("1", "abc") would mask ordinary words

_lock = threading.Lock()
_secrets: tuple[str, ...] = ()

_SECRET_WORDS = frozenset({"key", "token", "secret", "password", "passwd", "pass", "auth", "credential", "credentials"})


def looks_secret(name: str) -> bool:
    """True for a setting or variable name that holds a secret.

    ``api_key``, ``DISCORD_TOKEN``, ``client_secret``, ``APIKEY``; not
    ``token_env`` (a variable's name) nor ``max_tokens`` or ``hotkey``.
    """
    lowered = name.lower()
    if lowered.endswith("_env"):
        return False
    parts = re.split(r"[_\-.]", lowered)
    return any(part in _SECRET_WORDS or part.endswith(("apikey", "password")) for part in parts)


def register(values: Iterable[str | None]) -> None:
    """Add secrets to mask from now on (longest first, so a secret containing another is masked whole)."""
    global _secrets
    with _lock:
        merged = set(_secrets) | {v for v in values if v and len(v) >= MIN_LENGTH}
        _secrets = tuple(sorted(merged, key=len, reverse=True))


def clear() -> None:
    """Forget every registered secret (tests, and a config reload)."""
    global _secrets
    with _lock:
        _secrets = ()


def known() -> int:
    return len(_secrets)


def mask(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    if not text:
        return text
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class MaskingFilter(logging.Filter):
    """Masks the message and any traceback of a log record before a handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _secrets:
            return True
        message = record.getMessage()
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        return True


class MaskingStream(io.TextIOBase):
    """A text stream that masks secrets on the way to ``inner`` (the CLI wraps stdout and stderr with it).

    Output is masked per write; ``print`` writes each argument whole, so a
    secret is never split across two writes by our own code.
    """

    def __init__(self, inner: TextIO) -> None:
        self.inner = inner

    def write(self, text: str) -> int:
        self.inner.write(mask(text))
        return len(text)

    def flush(self) -> None:
        self.inner.flush()

    def isatty(self) -> bool:
        return self.inner.isatty()

    def fileno(self) -> int:
        return self.inner.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.inner, "encoding", "utf-8")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
