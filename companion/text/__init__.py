"""Pure text: the sentence chunker, emotion tags, reasoning and markup filters (``chunking``) and reply hygiene
(``hygiene``: what a small model writes that a listener must not hear).

No I/O, no event loop, no state beyond one reply: tested directly.
May import: the standard library only.
"""
