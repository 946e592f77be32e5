"""Pure text: the sentence chunker, emotion tags, reasoning and markup filters (``chunking``) and reply hygiene
(``hygiene``: what a small model writes that a listener must not hear).

No I/O, no event loop, no state beyond one reply: tested directly.
May import: the standard library only.
"""

from companion.text.chunking import *  # noqa: F403 - the chunker's names, where `companion.text` used to hold them
from companion.text.chunking import __all__  # noqa: F401
