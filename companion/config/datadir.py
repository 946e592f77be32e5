"""The data folder: private to the user, checked before anything is written to it.

It holds conversation history, long-term memories and access tokens, so it
is created 0700 and its files 0600. A folder that cannot be created or
written (read-only disk, wrong permissions, a file in the way) is reported
once, with what to do, before any part starts.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from companion.config import ConfigError

__all__ = ["DataDirError", "prepare_data_dir", "PRIVATE_UMASK"]

PRIVATE_UMASK = 0o077  # files the process creates (databases, logs, WAL files) are the user's alone
_HINT = "hint: pick a writable folder with --data-dir or [companion] data_dir, or fix the folder's permissions"


class DataDirError(ConfigError):
    """The data folder cannot be used; the message says why and what to do."""


def prepare_data_dir(path: Path) -> Path:
    """Create ``path`` (0700), tighten what is in it to the user, and prove it is writable."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except FileExistsError:
        raise DataDirError(f"the data folder {path} is a file, not a folder.\n  {_HINT}") from None
    except OSError as exc:
        raise DataDirError(f"cannot create the data folder {path}: {exc.strerror or exc}.\n  {_HINT}") from None
    if not path.is_dir():
        raise DataDirError(f"the data folder {path} is not a folder.\n  {_HINT}")
    _make_private(path)
    probe = path / f".write-check-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise DataDirError(f"the data folder {path} is not writable: {exc.strerror or exc}.\n  {_HINT}") from None
    return path


def _make_private(path: Path) -> None:
    """0700 on the folder and 0600 on its files, where we own them (data written by older versions was 0644)."""
    try:
        if path.stat().st_uid != os.getuid():
            return
        os.chmod(path, 0o700)
        for child in path.iterdir():
            info = child.lstat()
            if stat.S_ISREG(info.st_mode) and info.st_mode & 0o077 and info.st_uid == os.getuid():
                os.chmod(child, 0o600)
    except OSError:
        pass  # a read-only folder is reported by the write check that follows
