"""The real llama.cpp provider (xllamacpp) with the packaged SmolLM2-135M GGUF, read directly."""

import asyncio
import json
import logging
import threading
import time
from pathlib import Path

import jsonschema
import pytest

from companion.core.reply import NEXT_WORDS
from companion.llm.base import GenerationOptions, LLMError, LLMPreempted, Priority
from companion.llm.llamacpp import LlamaCppLLM
from companion.llm.scheduler import LLMScheduler
from companion.testing import eventually

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def llama() -> LlamaCppLLM:
    llm = LlamaCppLLM(n_ctx=2048, parallel=2)
    asyncio.run(llm.start())
    return llm


MESSAGES = [
    {"role": "system", "content": "You are Mika, a cheerful companion who loves tea."},
    {"role": "user", "content": "Hello! What is your favourite drink?"},
]


async def _collect(llm: LlamaCppLLM, messages, options) -> tuple[str, float]:
    started = time.perf_counter()
    first = None
    text = ""
    async for chunk in llm.stream(messages, options):
        if chunk.text and first is None:
            first = time.perf_counter() - started
        text += chunk.text
    return text, first or 0.0


async def test_streams_a_reply_in_pieces(llama):
    """A chat turn arrives as several streamed pieces with no template markers in them."""
    pieces = [c.text async for c in llama.stream(MESSAGES, GenerationOptions(max_tokens=30, temperature=0))]
    texts = [p for p in pieces if p]
    assert len(texts) >= 3
    reply = "".join(texts)
    assert len(reply.split()) >= 3
    assert "<|im_start|>" not in reply and "<|im_end|>" not in reply


async def test_streaming_does_not_block_the_event_loop(llama):
    """While a reply is generated, the loop keeps ticking (generation runs in a thread)."""
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            await asyncio.sleep(0.01)  # real time on purpose: the loop's own heartbeat is what this test measures
            ticks += 1

    task = asyncio.create_task(ticker())
    started = time.perf_counter()
    await _collect(llama, MESSAGES, GenerationOptions(max_tokens=60, temperature=0))
    elapsed = time.perf_counter() - started
    stop.set()
    await task
    assert ticks >= 0.5 * elapsed / 0.01


async def test_cancelling_mid_stream_frees_the_slot_promptly(llama):
    """Closing the stream after a few pieces stops llama.cpp within a fraction of a second, and the next request runs."""
    stream = llama.stream(MESSAGES, GenerationOptions(max_tokens=400, temperature=0.8))
    seen = 0
    async for chunk in stream:
        seen += bool(chunk.text)
        if seen == 3:
            break
    started = time.perf_counter()
    await stream.aclose()
    closed = time.perf_counter() - started
    # 400 tokens would take this CPU over 5 s: a release within 2 s is a stop, with room for a busy machine
    assert llama.last_release_ms is not None and llama.last_release_ms < 2000
    assert closed < 2.5
    text, _ = await _collect(llama, MESSAGES, GenerationOptions(max_tokens=8, temperature=0))
    assert text.strip()


async def test_json_schema_output_is_valid(llama):
    """response_format json_schema constrains the tiny model to a valid object."""
    schema = {
        "type": "object",
        "properties": {"action": {"enum": ["play", "pass"]}, "cell": {"type": "integer", "minimum": 1, "maximum": 9}},
        "required": ["action", "cell"],
    }
    options = GenerationOptions(
        max_tokens=80,
        temperature=0.7,
        response_format={"type": "json_schema", "json_schema": {"name": "move", "schema": schema}},
    )
    messages = [{"role": "user", "content": "Pick a move in tic-tac-toe as JSON."}]
    for _ in range(3):
        text, _ = await _collect(llama, messages, options)
        jsonschema.validate(json.loads(text), schema)


async def test_two_requests_decode_at_once(llama):
    """Two concurrent requests (two slots) are decoded together: their tokens interleave instead of one waiting for the other."""
    options = GenerationOptions(max_tokens=48, temperature=0)
    other = [MESSAGES[0], {"role": "user", "content": "Tell me about the sea."}]
    arrivals: dict[str, list[float]] = {"a": [], "b": []}

    async def timed(name: str, messages) -> str:
        text = ""
        async for chunk in llama.stream(messages, options):
            if chunk.text:
                arrivals[name].append(time.perf_counter())
                text += chunk.text
        return text

    a, b = await asyncio.gather(timed("a", MESSAGES), timed("b", other))
    assert a.strip() and b.strip() and len(arrivals["a"]) > 3 and len(arrivals["b"]) > 3
    # Each one's tokens were still coming when the other's started: both slots decoded at once (timing-free).
    assert arrivals["b"][0] < arrivals["a"][-1] and arrivals["a"][0] < arrivals["b"][-1]


async def test_second_turn_reuses_the_prompt_cache(llama):
    """Turn 2 of a conversation only prefills the new message: llama.cpp reports the earlier tokens as cached."""
    first, _ = await _collect(llama, MESSAGES, GenerationOptions(max_tokens=20, temperature=0))
    turn1 = dict(llama.last_timings)
    follow = MESSAGES + [{"role": "assistant", "content": first}, {"role": "user", "content": "Why that one?"}]
    await _collect(llama, follow, GenerationOptions(max_tokens=20, temperature=0))
    turn2 = llama.last_timings
    assert turn2["cache_n"] >= turn1["prompt_n"] + turn1.get("cache_n", 0) - 2
    assert turn2["prompt_n"] < turn2["cache_n"]


async def test_stop_strings_end_the_reply(llama):
    """A stop string given in the options ends generation before it."""
    messages = [{"role": "user", "content": "Count from one to ten in words, separated by commas."}]
    text, _ = await _collect(llama, messages, GenerationOptions(max_tokens=60, temperature=0, stop=("five",)))
    assert "five" not in text.lower() and "six" not in text.lower()


async def test_images_are_dropped_with_one_warning_without_a_projector(llama, caplog):
    """A text-only GGUF gets the text of an image message and a warning that says how to enable images."""
    caplog.set_level(logging.WARNING)
    llama._warned_images = False
    messages = [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]}]
    text, _ = await _collect(llama, messages, GenerationOptions(max_tokens=8, temperature=0))
    assert text.strip()
    assert "mmproj" in caplog.text


async def test_smollm2_template_takes_no_tools(llama):
    """SmolLM2's chat template has no tool format, so the engine is told not to offer tools."""
    assert llama.supports_tools is False


async def test_doctor_check_names_the_model_and_the_build(llama):
    """check() names the embedded model and prints llama.cpp's CPU features."""
    status = await llama.check()
    assert "SmolLM2-135M-Instruct" in status and "slots" in status and "CPU" in status


async def test_missing_model_file_is_a_clear_error(tmp_path: Path):
    """A wrong path names the file and the setting to change."""
    llm = LlamaCppLLM(model=str(tmp_path / "nope.gguf"))
    with pytest.raises(LLMError, match="llm.llamacpp.model"):
        await llm.start()


async def test_a_file_that_is_not_gguf_is_a_clear_error(tmp_path: Path):
    """A text file given as the model is refused before llama.cpp sees it."""
    bad = tmp_path / "model.gguf"
    bad.write_text("not a model")
    llm = LlamaCppLLM(model=str(bad))
    with pytest.raises(LLMError, match="not a GGUF"):
        await llm.start()


HERMES_TEMPLATE = (
    "{%- if tools %}<|im_start|>system\n{% if messages[0].role == 'system' %}{{ messages[0].content }}\n{% endif %}"
    "You may call functions. Signatures within <tools></tools>:\n<tools>{% for tool in tools %}{{ tool | tojson }}\n"
    "{% endfor %}</tools>\nFor each call return <tool_call>{\"name\": <name>, \"arguments\": <args>}</tool_call><|im_end|>\n"
    "{%- elif messages[0].role == 'system' %}<|im_start|>system\n{{ messages[0].content }}<|im_end|>\n{%- endif %}"
    "{%- for message in messages %}{%- if message.role == 'assistant' and message.tool_calls %}<|im_start|>assistant\n"
    "{%- for tc in message.tool_calls %}<tool_call>\n{\"name\": \"{{ tc.function.name }}\", \"arguments\": "
    "{{ tc.function.arguments | tojson }}}\n</tool_call>{%- endfor %}<|im_end|>\n"
    "{%- elif message.role == 'tool' %}<|im_start|>user\n<tool_response>\n{{ message.content }}\n</tool_response><|im_end|>\n"
    "{%- elif message.role != 'system' %}<|im_start|>{{ message.role }}\n"
    "{{ message.content }}<|im_end|>\n{%- endif %}{%- endfor %}{%- if add_generation_prompt %}<|im_start|>assistant\n{%- endif %}"
)
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}}


async def test_tools_go_through_a_template_that_supports_them():
    """With a tool-aware chat template the provider offers tools and they reach the prompt; SmolLM2's own does not."""
    llm = LlamaCppLLM(n_ctx=2048, parallel=1, chat_template=HERMES_TEMPLATE)
    await llm.start()
    assert llm.supports_tools
    messages = [{"role": "system", "content": "You are Mika."}, {"role": "user", "content": "Weather in Paris?"}]
    sizes = []
    for tools in ((), (WEATHER_TOOL,)):
        async for _ in llm.stream(messages, GenerationOptions(max_tokens=1, temperature=0, tools=tools)):
            pass
        sizes.append(llm.last_timings["prompt_n"] + llm.last_timings.get("cache_n", 0))
    await llm.close()
    assert sizes[1] > sizes[0] + 40  # the tool's signature was rendered into the prompt


async def test_context_overflow_is_reported_as_such(tmp_path):
    """A prompt over n_ctx raises LLMContextOverflow naming the setting, so the engine can shorten the history."""
    from companion.llm.base import LLMContextOverflow

    llm = LlamaCppLLM(n_ctx=512, parallel=1)
    await llm.start()
    with pytest.raises(LLMContextOverflow, match="n_ctx"):
        await _collect(llm, [{"role": "user", "content": "hello " * 700}], GenerationOptions(max_tokens=4))
    await llm.close()


SYSTEM = [{"role": "system", "content": "You are Mika, a cheerful companion who loves tea and rainy days. " * 8}]


async def _turn(llm: LlamaCppLLM, messages, key: str) -> str:
    text = ""
    async for chunk in llm.stream(messages, GenerationOptions(max_tokens=12, temperature=0, cache_key=key)):
        text += chunk.text
    return text


async def test_a_new_process_reads_only_the_new_message(tmp_path: Path):
    """A fresh llama.cpp (a new process) restores the saved conversation: its first turn prefills neither the system prompt nor the history."""
    first = LlamaCppLLM(n_ctx=2048, state_dir=tmp_path)
    await first.warm(SYSTEM)
    assert first.prompt_speed is not None and first.prompt_speed > 0  # measured on the warm-up prefill
    history = [*SYSTEM, {"role": "user", "content": "Hi Mika, I'm Robin and I love hiking."}]
    reply = await _turn(first, history, "conversation:robin")
    await first.close()
    history += [{"role": "assistant", "content": reply}, {"role": "user", "content": "What do you like to drink?"}]

    second = LlamaCppLLM(n_ctx=2048, state_dir=tmp_path)
    await second.warm(SYSTEM)
    assert second.last_timings == {}  # the prefix came from disk: nothing was prefilled to warm up
    assert second.prompt_speed == pytest.approx(first.prompt_speed, rel=0.01)  # ...yet it knows how fast it reads
    await _turn(second, history, "conversation:robin")
    timings = second.last_timings
    assert timings["cache_n"] > 150 and timings["prompt_n"] < 30, timings  # only the new message was read
    await second.close()


NOTES = "What you remember about Robin, newest first:\n- Robin loves hiking.\n- Robin has a dog called Pickles.\n\n"


async def _turn_with_memories(tmp_path: Path) -> tuple[LLMScheduler, str, list]:
    """A turn whose message carried recalled memories: the model, the conversation's key, and its history after it."""
    llm = LLMScheduler(LlamaCppLLM(n_ctx=2048, state_dir=tmp_path))
    await llm.warm(SYSTEM)
    key = "conversation:robin"
    question = "What should I cook tonight after a long walk?"
    reply = await _turn(llm, [*SYSTEM, {"role": "user", "content": NOTES + question}], key)
    return llm, key, [*SYSTEM, {"role": "user", "content": question}, {"role": "assistant", "content": reply}]


@pytest.mark.parametrize("ahead", [False, True])
async def test_reading_the_next_prompt_ahead_spares_the_next_reply_the_last_exchange(tmp_path: Path, ahead: bool):
    """A turn whose message carried recalled memories leaves a cache the next prompt does not continue (history shows
    the message plain): read ahead after the turn, the next reply reads only its new message; without, the last
    exchange again."""
    llm, key, history = await _turn_with_memories(tmp_path)
    if ahead:
        assert await llm.prefill(history, key)  # at once: it waits for the turn's slot to be saved, and reads there
    # the next question comes seconds later, a slot state takes milliseconds to write
    await eventually(lambda: not llm.inner._saving, what="the slot states saved")  # noqa: SLF001
    await _turn(llm, [*history, {"role": "user", "content": "And for dessert?"}], key)
    read = llm.last_timings["prompt_n"]
    if ahead:
        assert read < 20, llm.last_timings  # the new message and the template's few tokens
    else:
        assert read > 25, llm.last_timings  # the question and her reply again: what the read-ahead spares
    await llm.close()


@pytest.mark.parametrize("same_memories", [True, False])
async def test_memories_read_ahead_leave_the_next_reply_only_the_persons_words(tmp_path: Path, same_memories: bool):
    """Read ahead with this turn's memories, up to where the next message's words will stand: when the next message
    recalls the same memories the reply reads only its words; when others come, it reads them, and no more than that."""
    llm, key, history = await _turn_with_memories(tmp_path)
    assert await llm.prefill([*history, {"role": "user", "content": NOTES + NEXT_WORDS}], key, read_to=NEXT_WORDS)
    await eventually(lambda: not llm.inner._saving, what="the slot states saved")  # noqa: SLF001
    recalled = NOTES if same_memories else "What you remember about Robin, newest first:\n- Robin works nights at a bakery in the old town and sings in a choir every Sunday.\n\n"
    await _turn(llm, [*history, {"role": "user", "content": recalled + "And for dessert?"}], key)
    read = llm.last_timings["prompt_n"]
    if same_memories:
        assert read < 20, llm.last_timings  # the words and the template's few tokens
    else:
        assert 25 < read < 40, llm.last_timings  # the other memory too, from where it differs: not the notes' start
    await llm.close()


async def test_a_request_right_after_another_of_its_conversation_waits_for_its_own_slot(tmp_path: Path):
    """A reply that comes while its conversation's last request is still being saved uses that slot once it is free,
    with everything it read, rather than loading an older state from disk into another slot."""
    llm = LlamaCppLLM(n_ctx=2048, state_dir=tmp_path)
    await llm.warm(SYSTEM)
    key = "conversation:robin"
    history = [*SYSTEM, {"role": "user", "content": "Tell me about hiking with a dog in the mountains."}]
    reply = await _turn(llm, history, key)
    loaded: list[str] = []
    restore = llm._restore  # noqa: SLF001

    async def counted(slot: int, state: str) -> bool:
        loaded.append(state)
        return await restore(slot, state)

    llm._restore = counted  # type: ignore[method-assign]  # noqa: SLF001
    assert llm._saving  # noqa: SLF001 - the state of the turn just ended is still being written
    await _turn(llm, [*history, {"role": "assistant", "content": reply}, {"role": "user", "content": "And in winter?"}], key)
    assert loaded == [] and llm.last_timings["prompt_n"] < 20, (loaded, llm.last_timings)
    await llm.close()


async def test_a_reply_arriving_while_memory_work_reads_a_long_prompt_starts_within_a_batch():
    """Memory work reading a long prompt is stopped between batches when a reply arrives: the reply's first words come
    long before that prompt alone takes to read (on a CPU it is read in batches of 128 tokens)."""
    llm = LLMScheduler(LlamaCppLLM(n_ctx=4096))
    await llm.start()
    facts = " ".join(f"My neighbour number {i} keeps {i + 2} chickens and a small grey goat." for i in range(45))
    memory_work = [{"role": "user", "content": "Summarise what I said: " + facts}]
    started = time.perf_counter()
    async for _ in llm.stream(memory_work, GenerationOptions(max_tokens=1, priority=Priority.BACKGROUND)):
        pass
    alone = time.perf_counter() - started

    async def background() -> None:
        with pytest.raises(LLMPreempted):
            async for _ in llm.stream([{"role": "user", "content": "Again: " + facts}], GenerationOptions(max_tokens=50, priority=Priority.BACKGROUND)):
                pass

    work = asyncio.create_task(background())
    await eventually(lambda: llm._running, what="memory work reading its prompt")  # noqa: SLF001
    asked, first = time.perf_counter(), None
    async for _ in llm.stream([{"role": "user", "content": "Hello! How are you?"}], GenerationOptions(max_tokens=4)):
        first = first or time.perf_counter()
    await work
    assert first is not None and first - asked < alone / 2, (first - asked, alone)
    await llm.close()


async def test_a_read_ahead_to_a_point_not_in_the_prompt_is_refused_and_reads_nothing(tmp_path: Path):
    """A read-ahead whose stopping point is not in the prompt fails (debug-logged by the caller), leaving the cache as it was."""
    llm = LLMScheduler(LlamaCppLLM(n_ctx=2048, state_dir=tmp_path))
    await llm.warm(SYSTEM)
    assert not await llm.prefill([*SYSTEM, {"role": "user", "content": "Hello"}], "conversation:x", read_to="\u2063absent\u2063")
    assert "conversation:x" not in llm.inner._slots.owner.values()  # noqa: SLF001 - no slot took it in
    await llm.close()


async def test_a_changed_card_or_model_does_not_reuse_a_saved_state(tmp_path: Path):
    """A changed system prompt or another model file prefills from the start: a saved state never stands in for another prompt."""
    llm = LlamaCppLLM(n_ctx=2048, state_dir=tmp_path / "states")
    await _turn(llm, [*SYSTEM, {"role": "user", "content": "Hello!"}], "conversation:c")
    await llm.close()

    changed = [{"role": "system", "content": "You are Aria, a grumpy pirate who hates tea. " * 8}, {"role": "user", "content": "Hello!"}]
    card = LlamaCppLLM(n_ctx=2048, state_dir=tmp_path / "states")
    await _turn(card, changed, "conversation:c")
    assert card.last_timings["cache_n"] < 10, card.last_timings
    await card.close()

    copy = tmp_path / "copy.gguf"
    copy.write_bytes(LlamaCppLLM().model_path().read_bytes())
    other = LlamaCppLLM(model=str(copy), n_ctx=2048, state_dir=tmp_path / "states")
    await _turn(other, [*SYSTEM, {"role": "user", "content": "Hello!"}], "conversation:c")
    assert other.last_timings["cache_n"] == 0, other.last_timings
    await other.close()


async def test_tokens_are_counted_by_the_model_tokenizer(llama):
    """Budgets count tokens with the model's own tokenizer, not characters divided by four."""
    counts = await llama.count_tokens(["Hello", "supercalifragilisticexpialidocious " * 5])
    assert counts[0] == 1 and counts[1] > 5 * 3


def test_the_devices_it_runs_on_are_named(llama):
    """gpu_layers "auto" loads on whatever this build has, and the devices are named (CPU only here, a GPU's name elsewhere)."""
    import xllamacpp

    gpus = [d for d in xllamacpp.get_device_info() if d["name"].upper() != "CPU"]
    assert llama.gpu_layers == "auto"
    if gpus:
        assert gpus[0]["name"] in llama.devices
    else:
        assert llama.devices.startswith("CPU only")


async def test_the_window_is_capped_at_what_the_model_was_trained_on():
    """An n_ctx larger than the model's trained context is brought down to it (no memory spent on a window it cannot use)."""
    from companion.llm.gguf_meta import default_gguf_path, read_metadata

    trained = read_metadata(default_gguf_path())["llama.context_length"]
    llm = LlamaCppLLM(n_ctx=trained * 4)
    await llm.start()
    assert llm.n_ctx == trained
    await llm.close()


def _name(tid: str) -> str:
    python = {str(t.native_id): t.name for t in threading.enumerate()}
    if tid in python:
        return python[tid]
    try:
        return (Path("/proc/self/task") / tid / "comm").read_text().strip()
    except OSError:
        return "?"


def _threads() -> dict[str, tuple[int, int]]:
    """This process's threads: id -> (nice value, CPU ticks used so far), from /proc."""
    found = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[task.name] = (int(fields[16]), int(fields[11]) + int(fields[12]))
    return found


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="per-thread nice values are Linux's")
async def test_the_model_thinks_at_a_lower_priority_than_the_rest_of_the_process():
    """The threads that do llama.cpp's arithmetic run at the configured nice value; the event loop's thread does not."""
    import os

    base = os.getpriority(os.PRIO_PROCESS, 0)
    loop_thread = str(threading.get_native_id())
    # threads an earlier test left winding down (a server being freed) are not this model's: left out, as is the
    # loop's own thread, whose work in the meantime (a garbage collection, say) is not the model's arithmetic
    earlier = set(_threads())
    llm = LlamaCppLLM(n_ctx=1024, parallel=1, nice=7)
    await llm.start()
    try:
        before = _threads()
        await _collect(llm, MESSAGES, GenerationOptions(max_tokens=48, temperature=0.0))
        after = _threads()
    finally:
        await llm.close()
    mine = {tid: figures for tid, figures in after.items() if tid not in earlier}
    busy = {tid: nice for tid, (nice, ticks) in mine.items() if ticks - before.get(tid, (0, 0))[1] >= 5}
    names = {tid: _name(tid) for tid in busy}
    assert busy and all(nice == min(19, base + 7) for nice in busy.values()), (busy, names, base)
    assert after[loop_thread][0] == base  # the loop itself does not stand back
    assert os.getpriority(os.PRIO_PROCESS, 0) == base



async def test_a_server_that_will_not_stop_does_not_hang_close(caplog):
    """The server is dropped in a thread of its own: a destructor that hangs (seen in llama.cpp) costs `wait` seconds
    and one warning, and the event loop keeps turning meanwhile."""
    import threading

    from companion.llm.llamacpp import _release

    release = threading.Event()
    dropped_in: list[int] = []

    class Stuck:
        def __del__(self) -> None:
            dropped_in.append(threading.get_ident())
            release.wait(10)

    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0)  # a loop turn: counts only while the loop is free
            ticks += 1

    ticker = asyncio.create_task(tick())
    started = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="companion.llm.llamacpp"):
        await _release([Stuck()], wait=0.3)
    took = time.perf_counter() - started
    release.set()
    ticker.cancel()
    assert 0.3 <= took < 2.0 and ticks >= 10
    assert dropped_in and dropped_in[0] != threading.get_ident()
    assert "did not stop" in caplog.text


async def test_the_server_is_stopped_off_the_loop_even_when_the_loop_lets_go_of_it_last():
    """The loop may hold the server a moment longer than close() (the future that brought it back from its loading
    thread): the stop waits for that, so the destructor, which can deadlock, still runs in the stopping thread."""
    from companion.llm.llamacpp import _release

    dropped_in: list[int] = []

    class Server:
        def __del__(self) -> None:
            dropped_in.append(threading.get_ident())

    server = Server()
    lingering = [server]  # what the loop still holds
    held = [server]
    del server
    stopping = asyncio.create_task(_release(held, wait=5.0))
    for _ in range(3):
        await asyncio.sleep(0)  # a few loop turns, then the loop lets go
    lingering.clear()
    await stopping
    assert dropped_in and dropped_in[0] != threading.get_ident()
