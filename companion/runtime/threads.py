"""Threads: a blocking model call run off the event loop in a daemon thread, and how model threads share the CPU
(llama.cpp's count and priority, NumPy's BLAS kept to one thread).

Daemon, not the default executor: a model load that takes seconds must never
keep the interpreter from exiting on Ctrl+C. Used by both local providers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["run_in_daemon_thread", "one_blas_thread", "compute_threads", "stand_back"]

log = logging.getLogger(__name__)

T = TypeVar("T")


async def run_in_daemon_thread(fn: Callable[[], T]) -> T:
    """Run ``fn`` in a daemon thread so a long load never blocks interpreter exit on Ctrl+C."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def runner() -> None:
        try:
            result = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
            _hand_back(loop, _set_exception, future, exc)
        else:
            _hand_back(loop, _set_result, future, result)

    threading.Thread(target=runner, name="model-worker", daemon=True).start()
    return await future


def _hand_back(loop: asyncio.AbstractEventLoop, setter: Callable[..., None], future: asyncio.Future[Any], value: Any) -> None:
    """Give the outcome to the loop that waits for it, unless that loop has closed meanwhile (the process is
    shutting down, or whoever waited is gone): then nobody is left to tell."""
    try:
        loop.call_soon_threadsafe(setter, future, value)
    except RuntimeError:
        pass


def _set_result(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _set_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


def one_blas_thread() -> bool:
    """Limit the BLAS libraries loaded in this process (NumPy's, SciPy's) to one thread; True if a limit was set.

    OpenBLAS keeps its worker threads busy-waiting for a while after every call it split across them. Memory recall
    runs the embedded sentence encoder (memory/bert.py, NumPy) just before the model reads the new message: on two
    cores the read then took 5.4 ms a token instead of 4.5, and 8.2 with an embedding beside it, because llama.cpp's
    threads stand back (``[llm.llamacpp] nice``) and wait for each other after every layer. With one BLAS thread
    nothing spins (4.3 and 4.4 ms), and a sentence embeds faster (39 against 51 ms): its matrices are too small to
    gain from more threads.
    Measured by ``bench/blas_beside_llm.py``.

    Process-wide: called when the engine starts (again for each start: a library loaded since is limited too).
    Torch's own threads (sentence-transformers models other than the embedded one) are not limited this way.
    """
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
    return True


def compute_threads() -> int:
    """Threads for llama.cpp: one per physical core this process may use, at most 8.

    A second hyperthread on a core adds no arithmetic to a matrix multiply and steals time from whisper and the
    embedder; past 8 threads memory bandwidth, not cores, bounds the speed.
    """
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = list(range(os.cpu_count() or 2))
    cores = set()
    for cpu in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add((topology / "physical_package_id").read_text().strip() + ":" + (topology / "core_id").read_text().strip())
        except OSError:
            cores.add(str(cpu))  # no topology (not Linux, a container hiding it): count the CPU itself
    return max(1, min(8, len(cores)))


def stand_back(nice: int) -> None:
    """Lower the calling thread's priority by ``nice`` (Linux: threads it starts inherit it; elsewhere nothing).

    The model's threads and piper's share the cores while she speaks her first words and writes the next: on two
    cores piper took 266 ms for a short sentence beside the model's two threads at equal priority, 157 ms with
    them at nice 10 (``bench/tts_beside_llm.py``; 104 ms alone), and a voice turn's first chunk 231-306 ms against
    112-133 ms (``bench/voice_latency.py``). The model nearly pauses meanwhile (6 pieces/s instead of 39), which
    costs little: the first words' audio lasts seconds, and no silence inside replies was measured. On Linux a
    thread's nice value is its own; elsewhere it would lower the whole process, the voice included, so it is
    left alone.
    """
    if nice <= 0 or sys.platform != "linux":
        return
    try:
        os.setpriority(os.PRIO_PROCESS, 0, min(19, os.getpriority(os.PRIO_PROCESS, 0) + nice))
    except OSError as exc:  # a sandbox without setpriority: equal terms, as before
        log.debug("cannot lower the model's priority: %s", exc)
