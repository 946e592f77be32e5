"""Minecraft co-play: a mineflayer bot (Node.js, in ``bot/``) that the companion drives through skills.

``process.py`` runs and supervises the Node.js child and speaks its JSON-lines
protocol; ``skills.py`` turns skills into tools the LLM calls and holds the
small-model planner; ``adapter.py`` links in-game chat and events to the
conversation path; ``demo.py`` plays on a local test server.
"""

from companion.core.platforms import declare_platform

# In-game chat and commentary: heard by whoever watches.
declare_platform("minecraft", heard=True, broadcast=True)
