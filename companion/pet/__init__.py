"""Her own window on the desktop (`companion pet`): a frameless, transparent, always-on-top view of a running companion.

The window is a web view of the companion's own `/pet` page over the same `/events` and `/ws` sockets as the web
chat, not a second engine: `geometry` (pure: where it stands, remembered, kept on screen), `platform` (pure: what
this desktop allows, and the one notice when it falls back), `window` (pywebview and the toolkit under it) and
`launch` (finding or starting the companion, and the command).
"""
