"""The conversation core: the engine (``Companion``), the reply handle, one ``Turn`` per LLM round, speech and the
voice router, the prompt, history, moderation, the audio level the avatar follows, and the platform traits.

A message becomes a prompt, a reply, speech and history here, whatever brought it. The core names no platform:
what differs per platform (heard or read, audience chat) is declared by the adapter (``core.platforms``).
May import: ``llm``, ``memory``, ``tools``, ``character``, ``text``, ``runtime``, ``config``. Never an adapter
(``voice``, ``avatar``, ``stream``, ``games``, ``minecraft``, ``adapters``, ``init``) and never ``app`` or ``cli``.
"""
