"""Moved to ``companion/audio_level.py`` (the engine's core must not import from voice/); kept for imports."""

from ..audio_level import STEP, AudioLevel

__all__ = ["AudioLevel", "STEP"]
