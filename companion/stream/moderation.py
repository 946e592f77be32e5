"""Moved to ``companion/moderation.py`` (the engine's core must not import from stream/); kept for imports."""

from ..moderation import *  # noqa: F403
from ..moderation import __all__  # noqa: F401
