"""NumPy's BLAS kept to one thread, so its idle workers never spin on the cores the model reads with.

OpenBLAS (NumPy's BLAS) keeps its worker threads busy-waiting for a while after every call it split across
them. Memory recall runs the embedded sentence encoder (companion/memory/bert.py, NumPy) just before the model
reads the new message, and stores what the person said beside that read: on two cores the read then took
6.0 and 7.8 ms a token instead of 5.0 (a 40-token prompt: 40 to 110 ms more), because llama.cpp's threads
stand back (``[llm.llamacpp] nice``) and wait for each other after every layer. With one BLAS thread nothing
spins, and a sentence embeds just as fast (38 against 42 ms): its matrices are too small to gain from more.
Measured by ``bench/blas_beside_llm.py``.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

__all__ = ["one_blas_thread"]

_done = False


def one_blas_thread() -> bool:
    """Limit the BLAS libraries loaded in this process (NumPy's) to one thread; True if a limit was set.

    Process-wide and lasting: called once, when the companion starts. Torch's own threads (sentence-transformers
    models other than the embedded one) are not BLAS libraries threadpoolctl limits this way, and are left alone.
    """
    global _done
    if _done:
        return True
    try:
        import numpy  # noqa: F401 - loads its BLAS, which threadpoolctl finds among the loaded libraries
        from threadpoolctl import threadpool_limits
    except ImportError:
        log.debug("threadpoolctl is not installed: NumPy's BLAS keeps its default threads")
        return False
    try:
        threadpool_limits(limits=1, user_api="blas")
    except Exception as exc:  # noqa: BLE001 - a speed setting, never a reason not to start
        log.debug("cannot limit NumPy's BLAS threads: %s", exc)
        return False
    _done = True
    return True
