"""The character: persona, SillyTavern character cards (V2/V3 PNG, JSON, CHARX), lorebooks and ``{{macros}}``.

Pure data and parsing: what she is, not how she talks to anyone.
May import: ``companion.runtime``, ``companion.config``, ``companion.text``. Never the core, the model or adapters.
"""
