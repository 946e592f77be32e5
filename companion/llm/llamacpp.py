"""A GGUF model in-process through llama.cpp's own server code (the ``xllamacpp`` package).

Why this is the embedded default: on a 2-core CPU llama.cpp writes several
times faster than transformers, keeps each slot's KV cache between requests
(turn N+1 only prefills the new message), decodes several requests at once
(a reply and a game action side by side), and constrains output to a JSON
schema natively. The wheel is prebuilt: no compiler and no torch.

``Server.handle_chat_completions`` blocks until the reply is complete and
calls back once per OpenAI-style chunk; it runs in a daemon thread, chunks
cross to the event loop with ``call_soon_threadsafe``, and the callback's
return value tells llama.cpp to stop, so cancelling a reply frees its slot
within one token.

The embedded server also listens on a random loopback port (llama.cpp starts
its HTTP front end whatever we do); it is locked with a random API key that
never leaves this process, so a web page cannot use it. We use that front end
for two things the Python binding lacks: saving and restoring slot states
(``slot_state.py``: a new process does not prefill what the last one read)
and counting tokens with the model's own tokenizer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import secrets
import sys
import threading
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from companion.llm.base import LLM, PROVIDERS, GenerationOptions, LLMChunk, LLMContextOverflow, LLMError, Message, Priority
from companion.llm.chunks import ToolCallDeltas, read_choice, text_only_messages, tool_calls
from companion.llm.gguf_meta import DEFAULT_MODEL_NAME, GGUFError, default_gguf_path, read_metadata
from companion.llm.sampling import SMALL_MODEL_BYTES, SpeedRecord, history_tokens_for, measured_prompt_speed, sampling_for
from companion.llm.slot_state import SlotPicker, SlotStates, model_id, prefix_key
from companion.runtime.threads import compute_threads, run_in_daemon_thread, stand_back

if TYPE_CHECKING:
    from companion.config import Settings

log = logging.getLogger(__name__)

__all__ = ["LlamaCppLLM"]

_END = object()
MAX_PREFIXES = 8  # warmed prompt starts remembered (one per character of a group; a persona switch adds one)


def _import_xllamacpp() -> Any:
    try:
        import xllamacpp
    except ImportError:
        raise LLMError(
            "the llamacpp provider needs the xllamacpp package (a prebuilt llama.cpp): "
            "pip install 'companion[llamacpp]'"
        ) from None
    return xllamacpp


CPU_BATCH = 128  # prompt tokens per decode on a CPU: about 0.6 s of reading on a slow 2-core machine


class LlamaCppLLM(LLM):
    name = "llamacpp"
    prefills_ahead = True  # each conversation's cache is kept under its key: reading its next prompt early pays

    def __init__(
        self,
        *,
        model: str = "",
        n_ctx: int = 8192,
        threads: int = 0,
        nice: int = 0,
        parallel: int = 2,
        gpu_layers: int | str = "auto",
        chat_template: str = "",
        stop: tuple[str, ...] | list[str] = (),
        mmproj: str = "",
        state_dir: str | Path = "",
        state_cache_mib: int = 512,
        sampling: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_ref = model
        self.n_ctx = n_ctx
        self.threads = threads or compute_threads()
        self.nice = nice
        self.parallel = parallel
        self.gpu_layers = gpu_layers
        self.chat_template = chat_template
        self.extra_stop = tuple(stop)
        self.mmproj = mmproj
        self._server: Any = None
        self._template = ""
        self._load_lock = asyncio.Lock()
        self._warned_images = False
        self.last_timings: dict[str, Any] = {}  # llama.cpp's own figures for the last request not in the background
        self.last_release_ms: float | None = None  # cancel requested -> slot free, for the last cancelled request
        self.state_dir = Path(state_dir).expanduser() if state_dir else None
        self.state_cache_mib = state_cache_mib
        self._states: SlotStates | None = None  # saved slot states (None: not kept)
        self._slots = SlotPicker(parallel)
        self._prefix = ""  # the key of the stable prompt start warmed last
        self._prefixes: dict[str, int] = {}  # every warmed prompt start (a group warms one per character): key -> messages
        self._api_key = secrets.token_urlsafe(24)
        self._saving: set[asyncio.Task[None]] = set()
        self._token_counts: dict[str, int] = {}
        self.sampling_overrides = dict(sampling or {})
        self.sampling: dict[str, Any] = {}  # the samplers every free-text request uses, set when the model loads
        self.prompt_speed: float | None = None  # prompt tokens per second measured here (this or an earlier process)
        self._speeds = SpeedRecord(self.state_dir)
        self._speed_key = ""
        self._devices = ""  # where the model runs, asked of llama.cpp when it loads

    @property
    def capacity(self) -> int:
        """How many requests decode at once (the scheduler admits this many)."""
        return self.parallel

    @property
    def is_default(self) -> bool:
        return not self.model_ref

    @property
    def supports_images(self) -> bool:
        return bool(self.mmproj)

    @property
    def devices(self) -> str:
        """Where this model runs, for /health and doctor (asked of llama.cpp once, when the model loads)."""
        return self._devices or accelerators()

    @property
    def history_tokens(self) -> int | None:
        """The history this model reads here within a few seconds from nothing (sampling.py), when the user did not
        choose: None where the configured budget stands (a small model; a CPU before any speed was measured)."""
        if self._server is None:
            return None
        return history_tokens_for(
            self.prompt_speed, self.n_ctx, small=self.small_model, accelerated=not self._devices.startswith("CPU only")
        )

    @property
    def small_model(self) -> bool:
        """A model small enough that the reply path helps it (its sampler preset, quoted memories)."""
        try:
            return self.model_path().stat().st_size < SMALL_MODEL_BYTES
        except (LLMError, OSError):
            return False

    @property
    def supports_tools(self) -> bool:
        """Tools go through llama.cpp's Jinja templates; only a template that renders ``tools`` can take them."""
        return "tools" in self._template

    def model_path(self) -> Path:
        if self.is_default:
            return default_gguf_path()
        path = Path(self.model_ref).expanduser()
        if not path.is_file():
            raise LLMError(
                f"llamacpp: model file {path} does not exist; set llm.llamacpp.model to a .gguf file "
                "(or leave it empty for the embedded model)"
            )
        return path

    def _inspect(self, path: Path) -> dict[str, Any]:
        try:
            return read_metadata(path)  # the header only (token tables are skipped): a few ms
        except GGUFError as exc:
            raise LLMError(f"llamacpp: {exc} (llm.llamacpp.model)") from None

    async def check(self) -> str:
        xllamacpp = _import_xllamacpp()
        path = self.model_path()
        meta = await asyncio.to_thread(self._inspect, path)
        what = f"embedded {DEFAULT_MODEL_NAME}" if self.is_default else str(path)
        size = path.stat().st_size / 2**20
        info = xllamacpp.get_system_info().strip().rstrip("|").strip()
        tools = "tools yes" if "tools" in (self.chat_template or meta.get("tokenizer.chat_template") or "") else "tools no"
        return (
            f"{what} ({meta.get('general.architecture', '?')}, {size:.0f} MiB, {tools}); "
            f"{self.threads} threads, {self.parallel} slots, gpu_layers {self.gpu_layers}, runs on {accelerators()}; "
            f"llama.cpp build: {info}"
        )

    async def start(self) -> None:
        async with self._load_lock:
            if self._server is None:
                started = time.perf_counter()
                self._server = await run_in_daemon_thread(self._load)
                log.info(
                    "llamacpp: loaded %s in %.1f s; runs on %s", self.model_path().name, time.perf_counter() - started, self._devices
                )

    def _load(self) -> Any:
        xllamacpp = _import_xllamacpp()
        stand_back(self.nice)  # this thread starts llama.cpp's: they inherit it
        path = self.model_path()
        meta = self._inspect(path)
        self._template = self.chat_template or meta.get("tokenizer.chat_template") or ""
        self.sampling = sampling_for(path.stat().st_size, self.sampling_overrides).llamacpp(self.n_ctx)
        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        self._devices = accelerators()
        # The devices by name only: their free memory changes from run to run, the speed does not.
        self._speed_key = f"{model_id(path)} {self.gpu_layers} {re.sub(r' [(][0-9.]+ GiB free[)]', '', self._devices)}"
        self.prompt_speed = self._speeds.get(self._speed_key)
        trained = meta.get(f"{meta.get('general.architecture', '')}.context_length")
        if isinstance(trained, int) and 0 < trained < self.n_ctx:
            log.info("llamacpp: %s was trained on %d tokens of context; using that instead of n_ctx %d", path.name, trained, self.n_ctx)
            self.n_ctx = trained
        params.n_ctx = self.n_ctx
        params.n_parallel = self.parallel
        params.cpuparams.n_threads = self.threads
        params.cpuparams_batch.n_threads = self.threads
        params.cpuparams.poll = 0  # do not spin between requests: whisper and the embedder share these cores
        params.cpuparams_batch.poll = 0
        if self.gpu_layers == "auto":
            params.n_gpu_layers = -1  # with fit_params (llama.cpp's default): as many layers as fit in free device memory
            params.fit_params = True
        else:
            params.n_gpu_layers = int(self.gpu_layers) if int(self.gpu_layers) >= 0 else 999
            params.fit_params = False
        if self._devices.startswith("CPU only") or str(self.gpu_layers) == "0":
            # A reply that comes while memory work reads a long prompt waits for one batch of it (a stop is seen between
            # batches): 0.2 s, not 1.5-2 s on two cores. A CPU reads as fast in these; a GPU keeps llama.cpp's large ones.
            params.n_batch = params.n_ubatch = CPU_BATCH
        params.n_threads_http = 1
        params.kv_unified = True  # slots share the whole window: one long conversation may use all of n_ctx
        params.n_cache_reuse = 64  # reuse cached chunks after a changed part (memories, a history window that slid) by shifting them
        params.verbosity = -1
        params.api_keys = [self._api_key]  # only we use the HTTP side (slot states, tokens): lock it
        if self.state_dir is not None and self.state_cache_mib > 0:
            try:
                self._states = SlotStates(self.state_dir, model_id(path), self.state_cache_mib << 20)
                self._states.evict()
                params.slot_save_path = str(self.state_dir) + os.sep
                # llama.cpp otherwise moves an idle slot's cache to RAM and clears the slot when a new task
                # (our save) arrives: the save would find it empty. We choose slots ourselves instead.
                params.cache_idle_slots = False
            except OSError as exc:
                log.warning("llamacpp: cannot keep slot states in %s (%s); each new process prefills the prompt again", self.state_dir, exc)
                self._states = None
        params.use_jinja = True
        if self.chat_template:
            params.chat_template = self.chat_template
        if self.mmproj:
            mmproj = Path(self.mmproj).expanduser()
            if not mmproj.is_file():
                raise LLMError(f"llamacpp: projector file {mmproj} does not exist (llm.llamacpp.mmproj)")
            params.mmproj.path = str(mmproj)
        try:
            return xllamacpp.Server(params)
        except Exception as exc:  # noqa: BLE001 - llama.cpp reports load failures as plain exceptions
            raise LLMError(
                f"llamacpp: cannot load {path}: {exc}. Is it a complete GGUF file of a model this llama.cpp knows? "
                "(llm.llamacpp.model)"
            ) from None

    def _measured(self, timings: dict[str, Any]) -> None:
        """Keep the prompt speed llama.cpp reported; a new figure moves the kept one a quarter of the way."""
        speed = measured_prompt_speed(timings)
        if speed is None:
            return
        self.prompt_speed = speed if self.prompt_speed is None else 0.75 * self.prompt_speed + 0.25 * speed

    async def _save_speed(self) -> None:
        """Keep the measured speed for the next process (after warm-up and at close; the file write off the loop)."""
        if self._speed_key and self.prompt_speed is not None:
            await asyncio.to_thread(self._speeds.put, self._speed_key, self.prompt_speed)

    async def close(self) -> None:
        if self._saving:  # a one-shot command exits right after its reply: let the state reach the disk
            await asyncio.wait(set(self._saving), timeout=5.0)
        await self._save_speed()
        held, self._server = [self._server], None
        if held[0] is not None:
            await _release(held)  # no other reference here: the last one goes in its thread

    async def warm(self, messages: list[Message]) -> None:
        """Prefill ``messages`` (the stable prompt start) into a slot now, so the first reply only reads the new message.

        With slot states kept, a prefix some earlier process saved is loaded from disk instead (milliseconds).
        """
        key = prefix_key(messages)
        self._prefix = key
        self._prefixes[key] = len(messages)
        while len(self._prefixes) > MAX_PREFIXES:
            del self._prefixes[next(iter(self._prefixes))]
        if self._server is None:
            await self.start()
        if self._states is not None and self._states.has(key):
            picked = self._slots.acquire(key, self._saved)
            if picked is not None:
                slot, restore = picked
                ok = restore is None or await self._restore(slot, restore)
                self._slots.release(slot, holds=key if ok else None)
                if ok:
                    return
        async for _ in self.stream(messages, GenerationOptions(max_tokens=2, temperature=0.0, cache_key=key)):
            pass
        await self._save_speed()
        await self.saved()  # the first reply should find the prefix's slot free (and the file written)

    async def _own_slot_free(self, key: str, wait: float = 0.5) -> None:
        """Wait (at most ``wait`` s) while the slot holding ``key``'s cache is busy (a stopped read-ahead, a state being
        written: tens of ms). Another slot would load the state from disk, without what was read since it was saved."""
        deadline = time.perf_counter() + wait
        while key and self._slots.holding_busy(key) and time.perf_counter() < deadline:
            await asyncio.sleep(0.005)

    async def _read_to(self, request: dict[str, Any], text: str) -> dict[str, Any]:
        """A request that reads the chat prompt only up to ``text`` in it: the template's own rendering, cut there (a
        next message's start, its memories, read ahead). Tokenised alone, at most its last token differs from the
        whole prompt's: llama.cpp reads from there."""
        body: dict[str, Any] = {"messages": request["messages"]}
        if request.get("tools"):
            body["tools"] = request["tools"]
        try:
            rendered = await asyncio.to_thread(self._http, "/apply-template", body)
        except Exception as exc:  # noqa: BLE001 - surfaced as the provider's error: a read-ahead skipped
            raise LLMError(f"llamacpp: could not render the prompt to read ahead: {exc}") from None
        prompt = str(rendered.get("prompt", ""))
        at = prompt.find(text)
        if at <= 0:
            raise LLMError("llamacpp: the point to read the prompt up to is not in it")
        return {"prompt": prompt[:at], "n_predict": 1, "temperature": 0.0, "cache_prompt": True, "stream": True}

    async def saved(self) -> None:
        """Wait (at most 5 s) for the slot states being written: a request for a conversation then finds its own slot
        free, with its cache, instead of another slot that must load the state from disk first."""
        if self._saving:
            await asyncio.wait(set(self._saving), timeout=5.0)

    def _prefix_for(self, messages: list[Message]) -> str:
        """The warmed prompt start ``messages`` begin with: a new conversation starts from it, not from nothing.

        In a group each character has her own system prompt, so her own start; checked by hashing the first
        messages (a few kB), not assumed from the last one warmed.
        """
        for key, count in reversed(self._prefixes.items()):
            if len(messages) > count and prefix_key(messages[:count]) == key:
                return key
        return self._prefix

    # -- slot states on disk ---------------------------------------------------------------

    def _saved(self, key: str) -> bool:
        return self._states is not None and self._states.has(key)

    def _http(self, path: str, body: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        """A call to this process's own llama.cpp HTTP front end (loopback, locked with our key)."""
        address = str(self._server.listening_address)
        if "://" not in address:
            address = "http://" + address
        request = urllib.request.Request(
            address.rstrip("/") + path, data=json.dumps(body).encode(), method="POST",
            headers={"Authorization": f"Bearer {self._api_key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - our own loopback server
            return dict(json.loads(response.read() or b"{}"))

    async def _restore(self, slot: int, key: str) -> bool:
        """Load ``key``'s saved state into ``slot``; a state that does not load is deleted (it would fail again)."""
        assert self._states is not None
        try:
            answer = await asyncio.to_thread(self._http, f"/slots/{slot}?action=restore", {"filename": self._states.filename(key)})
        except Exception as exc:  # noqa: BLE001 - a cache miss, never a failed reply
            log.info("llamacpp: a saved slot state did not load (%s); reading the prompt instead", exc)
            self._states.drop(key)
            return False
        self._states.touch(key)
        log.debug("llamacpp: restored %s tokens into slot %d", answer.get("n_restored"), slot)
        return True

    async def _save_then_release(self, slot: int, key: str) -> None:
        """Save ``slot`` as ``key`` (to a temporary name, renamed when complete), then free the slot."""
        states = self._states
        holds: str | None = key
        try:
            if states is not None and self._server is not None:
                await asyncio.to_thread(self._http, f"/slots/{slot}?action=save", {"filename": states.temp_name(key)})
                await asyncio.to_thread(states.commit, key)
        except Exception as exc:  # noqa: BLE001 - the next process prefills instead
            log.info("llamacpp: could not save the slot state (%s)", exc)
        finally:
            self._slots.release(slot, holds=holds)

    async def count_tokens(self, texts: list[str]) -> list[int]:
        """Tokens of each text by the model's own tokenizer (llama.cpp's /tokenize)."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._token_counts]
        if missing:
            if self._server is None:
                await self.start()

            def count() -> dict[str, int]:
                return {t: len(self._http("/tokenize", {"content": t, "add_special": False}).get("tokens", ())) for t in missing}

            try:
                counted = await asyncio.to_thread(count)
            except Exception as exc:  # noqa: BLE001 - an estimate still budgets
                log.debug("llamacpp: /tokenize failed (%s); estimating", exc)
                return await super().count_tokens(texts)
            if len(self._token_counts) > 4096:  # history repeats every turn; a day of it does not
                self._token_counts.clear()
            self._token_counts.update(counted)
        return [self._token_counts[t] for t in texts]


    def _request(self, messages: list[Message], options: GenerationOptions) -> dict[str, Any]:
        if not self.supports_images:
            messages, dropped = text_only_messages(messages, None if self._warned_images else log, "llm.llamacpp.mmproj is not set")
            self._warned_images = self._warned_images or dropped
        request: dict[str, Any] = {
            "messages": _clean(messages),
            "stream": True,
            "max_tokens": options.max_tokens,
            "temperature": options.temperature,
            "cache_prompt": True,
            "return_progress": True,  # a chunk after each batch of the prompt read: a stop is seen there, not after it all
        }
        stop = [*options.stop, *self.extra_stop]
        if stop:
            request["stop"] = list(dict.fromkeys(stop))
        if options.tools and self.supports_tools:
            request["tools"] = list(options.tools)
        if options.response_format:
            request["response_format"] = options.response_format
        else:
            # Samplers against loops (llm/sampling.py): a small model otherwise says a phrase again
            # or copies its previous reply word for word. Not for JSON, whose keys repeat by design.
            request.update(self.sampling)
        return request

    async def _stream(self, messages: list[Message], options: GenerationOptions) -> AsyncIterator[LLMChunk]:
        if self._server is None:
            await self.start()
        server = self._server
        request = self._request(messages, options)
        if options.read_to:
            request = await self._read_to(request, options.read_to)
        slot: int | None = None
        if self._states is not None:
            await self._own_slot_free(options.cache_key)
            picked = self._slots.acquire(options.cache_key, self._saved, self._prefix_for(messages))
            if picked is not None:
                slot, restore = picked
                if restore is not None:
                    await self._restore(slot, restore)
                request["id_slot"] = slot
        prefilled = False  # the prompt was read (a chunk came back): the slot's state is worth keeping
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()
        released = threading.Event()

        def put(item: Any) -> bool:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is gone: stop generating
                return False
            return True

        def on_chunk(chunk: Any) -> bool:
            return not put(chunk) or stop.is_set()  # True tells llama.cpp to cancel the task

        def generate() -> None:
            try:
                if "prompt" in request:  # a prompt read up to a point (_read_to): raw text, as the template wrote it
                    result = server.handle_completions(request, on_chunk)
                else:
                    result = server.handle_chat_completions(request, on_chunk)
                if isinstance(result, dict) and "error" in result:
                    put(_error(result))
            except BaseException as exc:  # noqa: BLE001 - handed to the event loop
                put(LLMError(f"llamacpp: the request was refused: {exc}"))
            finally:
                released.set()
                put(_END)

        thread = threading.Thread(target=generate, name="llamacpp-request", daemon=True)
        thread.start()
        tools: ToolCallDeltas = {}
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    break
                if isinstance(item, LLMError):
                    raise item
                if not isinstance(item, dict):
                    continue
                if "error" in item:
                    raise _error(item)
                prefilled = True
                if item.get("timings"):
                    if options.priority is not Priority.BACKGROUND:  # a reply's figures, not memory's or a read-ahead's
                        self.last_timings = dict(item["timings"])
                    self._measured(dict(item["timings"]))
                if options.read_to:
                    continue  # only read: its one token is not an answer
                for choice in item.get("choices") or []:
                    chunk, _done = read_choice(choice, tools)
                    if chunk is not None and (chunk.text or not tools):
                        yield chunk
            if tools:
                yield LLMChunk(tool_calls=tool_calls(tools), finish_reason="tool_calls")
        finally:
            try:
                if not released.is_set():
                    asked = time.perf_counter()
                    stop.set()
                    # llama.cpp sees the flag at its next token and frees the slot; wait for that
                    # off the loop so the next request finds the slot (and its cache) free.
                    await loop.run_in_executor(None, released.wait, 5.0)
                    self.last_release_ms = (time.perf_counter() - asked) * 1000
            finally:
                if slot is not None:
                    # A reply cut short (by us, or by the listener) still read its whole prompt: keep it too.
                    if prefilled and released.is_set() and options.cache_key:
                        task = loop.create_task(self._save_then_release(slot, options.cache_key))
                        self._saving.add(task)
                        task.add_done_callback(self._saving.discard)
                    else:
                        # failed, stuck or unkeyed: what the slot holds is not worth keeping under a key
                        self._slots.release(slot, holds=None)


async def _release(held: list[Any], wait: float = 5.0) -> None:
    """Stop the C++ server (``held``'s one item) by dropping its last reference in a daemon thread, waiting at most
    ``wait`` seconds.

    Its destructor joins llama.cpp's threads: that takes a moment, which must not stall the event loop, and it
    was seen to deadlock now and then (a server closed right after it started, in the test suite), which must not
    hang shutdown: the thread is left behind, and the process exits without it.
    """
    done = threading.Event()

    def drop() -> None:
        server = held.pop()
        # The event loop may still hold it for a moment (the future that brought it back from the loading thread,
        # in a callback not yet released): wait for that to go, or the destructor would run on the loop after all.
        deadline = time.monotonic() + wait
        while sys.getrefcount(server) > 2 and time.monotonic() < deadline:  # 2: ``server`` and the call's argument
            time.sleep(0.01)  # real time on purpose: another thread's reference, no event to wait on
        del server
        done.set()

    threading.Thread(target=drop, name="llamacpp-stop", daemon=True).start()
    if not await asyncio.to_thread(done.wait, wait):
        log.warning("llamacpp: the model's server did not stop within %.0f s; leaving it behind", wait)


def accelerators() -> str:
    """The devices this llama.cpp build can run on ("CPU only", or e.g. "CUDA0 NVIDIA GeForce RTX 4070 (11.2 GiB free)")."""
    try:
        devices = _import_xllamacpp().get_device_info()
    except Exception:  # noqa: BLE001 - a description, never a failure
        return "unknown devices"
    gpus = [
        f"{d.get('name', '?')} {d.get('description', '')} ({int(d.get('memory_free', 0)) / 2**30:.1f} GiB free)".replace("  ", " ")
        for d in devices
        if "CPU" not in str(d.get("type", "")) and str(d.get("name", "")).upper() != "CPU"
    ]
    return ", ".join(gpus) if gpus else "CPU only (this llama.cpp build has no GPU backend, or no GPU is visible)"


def _error(payload: dict[str, Any]) -> LLMError:
    err = payload.get("error")
    message = err.get("message", str(err)) if isinstance(err, dict) else str(err)
    if "context" in message and ("exceed" in message or "size" in message):
        return LLMContextOverflow(f"llamacpp: the prompt is longer than the context window ({message}); raise llm.llamacpp.n_ctx")
    return LLMError(f"llamacpp: {message}")


def _clean(messages: list[Message]) -> list[Message]:
    """llama.cpp's templates want content as text or parts; None (an assistant turn that only called tools) becomes ""."""
    return [m if m.get("content") is not None else {**m, "content": ""} for m in messages]


@PROVIDERS.register("llamacpp")
def from_settings(settings: Settings, **common: Any) -> LlamaCppLLM:
    """A GGUF model in-process through llama.cpp (the embedded default when no model is named)."""
    c = settings.llm.llamacpp
    return LlamaCppLLM(
        model=c.model, n_ctx=c.n_ctx, threads=c.threads, nice=c.nice, parallel=c.parallel, gpu_layers=c.gpu_layers,
        chat_template=c.chat_template, stop=c.stop, mmproj=c.mmproj,
        state_dir=settings.data_path() / "llm-state", state_cache_mib=c.state_cache_mib,
        sampling=settings.llm.sampling.overrides(), **common,
    )
