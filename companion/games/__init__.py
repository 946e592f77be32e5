"""Co-playing games that speak the Neuro game API (VedalAI/neuro-sdk)."""

from companion.core.platforms import declare_platform

# Game commentary and decisions are said to whoever watches.
declare_platform("game", heard=True, broadcast=True)
