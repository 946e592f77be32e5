"""Where bundled data (default persona, web pages) lives.

In a source checkout or editable install it sits at the repository root
(``persona/``, ``web/``) so users edit it in place; a wheel carries copies
under ``companion/_bundled/``.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1]  # the companion package


def bundled(name: str) -> Path:
    """Path of the bundled folder ``name`` ("persona" or "web")."""
    for candidate in (_PACKAGE / "_bundled" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"bundled folder {name!r} is missing from this installation; reinstall companion"
    )
