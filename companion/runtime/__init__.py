"""Runtime plumbing: the event bus and its event types, the supervisor that keeps connections up, background
tasks, the SQLite worker thread, backoff, safe JSON, JSON Schema checks and the bundled resources.

Everything above uses it; it knows nothing of conversations, characters or platforms.
May import: ``companion.config`` (settings, masking, the data folder) and the standard library. Nothing else.
"""
