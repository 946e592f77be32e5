"""Two characters on one stage: who speaks, what each reads, barge-in, and `companion chat` with two cards."""

import asyncio
import json
from contextlib import asynccontextmanager

import numpy as np
import pytest

from companion.config import Settings
from companion.core.engine import Companion
from companion.core.history import HistoryStore
from companion.group.build import build_cast
from companion.group.cast import Line
from companion.testing import ScriptedLLM, eventually
from tests.cli.test_cli import companion as run_companion
from tests.cli.test_cli import config_file


def card(tmp_path, name: str, description: str, talkativeness: str = "0.5"):
    path = tmp_path / f"{name.lower()}.json"
    path.write_text(json.dumps({"spec": "chara_card_v2", "spec_version": "2.0", "data": {
        "name": name, "description": description, "first_mes": "", "extensions": {"talkativeness": talkativeness},
    }}))
    return path


def group_settings(tmp_path, *, banter: int = 0, luna_talk: str = "0.5", kai_talk: str = "0.5") -> Settings:
    return Settings.model_validate({
        "companion": {"data_dir": str(tmp_path / "data")},
        "memory": {"enabled": False},
        "characters": [
            {"card": str(card(tmp_path, "Luna", "Luna is a cheerful streamer who loves chess.", luna_talk)), "host": True},
            {"card": str(card(tmp_path, "Kai", "Kai is Luna's sarcastic co-host.", kai_talk))},
        ],
        "group": {"banter": banter, "cohost_max_tokens": 40},
    })


def cast_on(settings: Settings, llm: ScriptedLLM, **options):
    def host(own: Settings) -> Companion:
        from companion.app import load_persona

        return Companion(own, llm=llm, character=load_persona(own), history=HistoryStore(own.data_path() / "history.sqlite3"))

    return build_cast(settings, host, lambda *_: None, **options)


@asynccontextmanager
async def served_group(tmp_path, fake_openai, settings_for):
    """Luna and Kai (no banter) on the fake OpenAI server, behind a started WebChat: yields the WebChat."""
    from companion.adapters.web import WebChat
    from companion.app import build_group

    settings = settings_for(fake_openai)
    settings.characters = group_settings(tmp_path).characters
    settings.group.banter = 0
    cast = build_group(settings)
    await cast.start()
    chat = WebChat(cast.host, cast.host.settings, cast=cast)
    await chat.start()
    try:
        yield chat
    finally:
        await chat.stop()
        await cast.close(0)


async def ask_both_about_chess(tmp_path, replies: list[str]):
    """Sam asks Luna and Kai who plays chess better, on a scripted LLM: (lines, the history, the LLM)."""
    llm = ScriptedLLM(replies)
    cast = cast_on(group_settings(tmp_path), llm)
    await cast.start()
    try:
        lines = await cast.respond("Luna and Kai, which of you is better at chess?", speaker_name="Sam")
        stored = await cast.host.history.recent("default", 10)
    finally:
        await cast.close(0)
    return lines, stored, llm


def system_of(prompt) -> str:
    return prompt[0]["content"]


async def test_both_named_both_answer_in_order_and_each_reads_the_other_as_someone_else(tmp_path):
    """Naming both gets a reply from each, in order; the second reads the first's line as said by her, by name."""
    lines, stored, llm = await ask_both_about_chess(tmp_path, ["I am, obviously.", "Luna, you lost to a toaster yesterday."])
    assert [(line.character, line.text) for line in lines] == [
        ("Luna", "I am, obviously."), ("Kai", "Luna, you lost to a toaster yesterday."),
    ]
    assert [(m.role, m.speaker_name) for m in stored] == [("user", "Sam"), ("assistant", "Luna"), ("assistant", "Kai")]
    luna_prompt, kai_prompt = llm.prompts
    assert "cheerful streamer" in system_of(luna_prompt) and "sarcastic co-host" in system_of(kai_prompt)
    # Kai reads Luna's answer as Luna's words after Sam's question, never as his own (an assistant message)
    assert not any(m["role"] == "assistant" and "obviously" in str(m["content"]) for m in kai_prompt)
    last = kai_prompt[-1]
    assert last["role"] == "user" and "Sam: Luna and Kai, which of you" in last["content"] and "Luna: I am, obviously." in last["content"]
    assert llm.options[1].max_tokens == 40  # the co-host's shorter budget
    # each keeps her own cached prompt state: two prompts that differ from the first token never share one slot
    assert llm.options[0].cache_key == "conversation:default#Luna" and llm.options[1].cache_key == "conversation:default#Kai"
    assert any(s.startswith("\nLuna:") for s in llm.options[1].stop)  # he does not write her next line


async def test_characters_banter_until_the_limit_then_the_person_speaks(tmp_path):
    """Each line naming the other gets an answer, until [group] banter lines between them; then they stop."""
    llm = ScriptedLLM(["Kai, tell them about the toaster.", "Luna, that never happened.", "Kai, it did!", "Luna, no.", "Kai?"])
    cast = cast_on(group_settings(tmp_path, banter=2, luna_talk="1.0", kai_talk="0.0"), llm)
    await cast.start()
    try:
        lines = await cast.respond("How was the chess tournament?")
        cast.quiet = lambda: True
        quiet_cast_lines = await cast.respond("And today?")
    finally:
        await cast.close(0)
    assert [line.character for line in lines] == ["Luna", "Kai", "Luna"]  # Luna answered, then 2 lines of banter
    assert [line.character for line in quiet_cast_lines] == ["Kai"]  # Luna spoke last; quiet mode: no banter


async def test_barge_in_stops_the_speaker_and_the_lines_still_to_come(tmp_path):
    """Interrupting while the first character speaks cancels the second's reply before it starts."""
    llm = ScriptedLLM(["I think " + "very " * 60 + "much so.", "Never reached."], token_delay=0.02)
    cast = cast_on(group_settings(tmp_path), llm)
    await cast.start()
    try:
        task = asyncio.ensure_future(cast.respond("Luna and Kai, say something long."))
        await eventually(lambda: cast._current is not None and cast._current.turn is not None, timeout=5, what="Luna writing")
        assert not cast.interrupt("discord:7")  # another conversation's stop button: not this turn
        assert cast.interrupt("default")
        lines = await task
    finally:
        await cast.close(0)
    assert [line.character for line in lines] == ["Luna"] and lines[0].result.interrupted
    assert len(llm.prompts) == 1  # Kai was never asked


async def test_each_character_keeps_its_own_memory_folder(tmp_path):
    """The co-host's memory of people lives in characters/kai of the data folder, the host's where it always was."""
    settings = group_settings(tmp_path)
    settings.memory.enabled = True
    made: list = []

    def memory(own, llm, character, embedder):
        made.append((character.name, own.data_path()))
        return None

    def host(own):
        from companion.app import load_persona

        return Companion(own, llm=ScriptedLLM(), character=load_persona(own), history=HistoryStore(own.data_path() / "h.sqlite3"))

    build_cast(settings, host, memory)
    assert made == [("Kai", tmp_path / "data" / "characters" / "kai")]


async def test_chat_with_two_cards_prints_a_json_object_per_character(tmp_path, fake_openai):
    """`companion chat -m ... --json` with two [[characters]] prints one JSON object from each character named."""
    luna, kai = card(tmp_path, "Luna", "A cheerful streamer."), card(tmp_path, "Kai", "A sarcastic co-host.")
    extra = f'[[characters]]\ncard = "{luna}"\nhost = true\n[[characters]]\ncard = "{kai}"\n[group]\nbanter = 0\n'
    code, out, err = await run_companion(
        "--config", config_file(tmp_path, fake_openai, extra), "chat", "-m", "Which of you is better at chess?", "--json",
    )
    assert code == 0, err
    replies = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert [r["character"] for r in replies] == ["Luna", "Kai"]
    assert all(r["reply"] and not r["error"] for r in replies)
    systems = [r["messages"][0]["content"] for r in fake_openai.requests if r.get("messages")]
    assert any("cheerful streamer" in s for s in systems) and any("sarcastic co-host" in s for s in systems)


async def test_the_web_page_gets_each_line_with_its_characters_name(tmp_path, fake_openai, settings_for):
    """Over the page's websocket, a message naming both is answered by each in turn, each turn with its name."""
    import aiohttp

    seen: list = []
    async with served_group(tmp_path, fake_openai, settings_for) as chat:
        async with aiohttp.ClientSession() as http:
            events = await http.ws_connect(f"http://127.0.0.1:{chat.port}/events")  # the overlay's and avatars' feed
            async with http.ws_connect(f"http://127.0.0.1:{chat.port}/ws?session=g1") as ws:
                hello = json.loads((await ws.receive(timeout=5)).data)
                await ws.send_str(json.dumps({"type": "chat", "text": "Kai and Luna, who wins at chess?"}))
                while sum(m["type"] == "turn_end" for m in seen) < 2:
                    seen.append(json.loads((await ws.receive(timeout=10)).data))
            feed: list = []
            while not any(m["type"] == "caption" and m.get("character") == "Luna" for m in feed):
                feed.append(json.loads((await events.receive(timeout=5)).data))
            await events.close()
            async with http.ws_connect(f"http://127.0.0.1:{chat.port}/ws?session=g1") as ws:
                again = json.loads((await ws.receive(timeout=5)).data)
    assert hello["characters"] == ["Luna", "Kai"] and hello["host"] == "Luna"
    starts = [m["character"] for m in seen if m["type"] == "turn_start"]
    ends = [(m["character"], bool(m["reply"])) for m in seen if m["type"] == "turn_end"]
    assert starts == ["Kai", "Luna"] and ends == [("Kai", True), ("Luna", True)]
    assert [(h["role"], h["name"]) for h in again["history"]][-2:] == [("assistant", "Kai"), ("assistant", "Luna")]
    # the overlay's captions and the avatars' cues say whose they are: Kai's first, then Luna's
    said = [(m["character"], m["text"]) for m in feed if m["type"] == "caption"]
    assert said[0][0] == "Kai" and said[-1][0] == "Luna" and all(text for _, text in said)
    assert {m["character"] for m in feed if m["type"] in ("emotion", "state")} <= {"Kai", "Luna"}
    assert [m["character"] for m in feed if m["type"] == "emotion"][:1] == ["Kai"]


class Recorder:
    """An audio output that keeps what each sentence was written with (its text and its voice's rate)."""

    first_play_at = None

    def __init__(self) -> None:
        self.written: list[tuple[str, int]] = []
        self.busy = False

    def begin(self) -> None: ...

    def write(self, index, text, samples, rate) -> None:
        if not self.written or self.written[-1] != (text, rate):
            self.written.append((text, rate))

    def end_sentence(self, index) -> None: ...

    def clear(self) -> str:
        return ""

    def heard(self) -> str:
        return " ".join(t for t, _ in self.written)

    async def wait_for_playout(self) -> None: ...


class Beep:
    """A voice known by its rate: 16 kHz is the host's outputs' own, 22.05 kHz Kai's."""

    def __init__(self, rate: int) -> None:
        self.sample_rate = rate
        self.started = self.closed = False

    async def start(self) -> None:
        self.started = True

    async def close(self) -> None:
        self.closed = True

    async def synthesize(self, text):
        import numpy as np

        yield np.full(160, 0.1, np.float32)


async def test_each_character_speaks_in_her_own_voice_on_the_hosts_outputs(tmp_path):
    """Both lines are heard on the speaker the host speaks on, one after the other, the co-host's in his own voice."""
    from companion.core.speech import Voice

    llm = ScriptedLLM(["I am, obviously.", "Luna, you lost to a toaster."])
    settings = group_settings(tmp_path)
    settings.characters[1].voice = "kai.onnx"
    kai_voice = Beep(22_050)

    def host(own: Settings) -> Companion:
        from companion.app import load_persona

        return Companion(own, llm=llm, character=load_persona(own), history=HistoryStore(own.data_path() / "h.sqlite3"))

    cast = build_cast(settings, host, lambda *_: None, lambda own: kai_voice if own.voice.tts.voice == "kai.onnx" else None)
    speaker = Recorder()
    cast.host.voices.add(Voice("speaker", speaker, Beep(16_000), owns="voice".__eq__))
    await cast.start()
    try:
        await cast.respond("Luna and Kai, who is better at chess?", conversation_id="voice", platform="voice")
    finally:
        await cast.close(0)
    assert speaker.written == [("I am, obviously.", 16_000), ("Luna, you lost to a toaster.", 22_050)]
    assert kai_voice.started and kai_voice.closed


async def test_stream_chat_is_answered_by_the_character_a_viewer_names(tmp_path):
    """A viewer who names Kai gets Kai's answer, posted to chat under his name; quiet mode lets nobody banter."""
    from companion.stream.chat import StreamChat
    from companion.stream.message import ChatMessage

    llm = ScriptedLLM(["Chess, obviously. Luna cheats.", "I do not!"])
    settings = group_settings(tmp_path, banter=2, luna_talk="1.0", kai_talk="1.0")
    posted: list[str] = []

    async def post(platform: str, text: str) -> None:
        posted.append(text)

    cast = cast_on(settings, llm)
    await cast.start()
    try:
        chat = StreamChat(cast.host, cast.host.settings, posters={"twitch": post}, cast=cast)
        cast.quiet = lambda: True  # the stream's quiet mode
        assert chat.ingest(ChatMessage("twitch", "v1", "viewer1", "hey Kai, what's your favourite game?")) == "queued"
        await chat.answer(chat.prioritiser.next())
        stored = await cast.host.history.recent("stream:twitch", 10)
    finally:
        await cast.close(0)
    assert posted == ["Kai: Chess, obviously. Luna cheats."]  # named: Kai alone; quiet: Luna does not answer back
    assert [m.speaker_name for m in stored] == ["viewer1", "Kai"]


async def test_one_discord_bot_posts_each_characters_line_under_her_name(tmp_path, fake_openai, settings_for):
    """In a group, the Discord bot answers a message naming both with two posts, each starting with who says it."""
    from companion.adapters.discord.bot import DiscordAdapter
    from companion.app import build_group
    from tests.adapters.discord.fakes import Channel, Guild, Message, User

    settings = settings_for(fake_openai)
    settings.characters = group_settings(tmp_path).characters
    settings.group.banter = 0
    settings.discord.debounce_seconds = 0.05
    settings.discord.channels = [99]
    cast = build_group(settings)
    await cast.start()
    adapter = DiscordAdapter(cast.host, cast.host.settings, bot_user_id=1, cast=cast)
    channel = Channel(99, Guild())
    try:
        await adapter.on_message(Message(User(5, "Alice"), "Luna and Kai, who is better at chess?", channel))
        await eventually(lambda: adapter.answered == 2, timeout=10, what="two answers")
    finally:
        await adapter.close()
        await cast.close(0)
    posts = [text for text, _ in channel.sent]
    assert len(posts) == 2 and posts[0].startswith("**Luna**: Hello there!") and posts[1].startswith("**Kai**: "), posts


async def test_in_a_game_the_host_plays_and_the_co_host_comments(tmp_path):
    """The game server decides as the host; what happens in the game is commented on by the co-host."""
    from companion.app import build_game_server

    llm = ScriptedLLM(["Nice move, Luna. Almost competent."])
    cast = cast_on(group_settings(tmp_path), llm)
    await cast.start()
    try:
        server = build_game_server(cast.host, cast.host.settings, port=0, cast=cast)
        assert server.display_name == "Luna"  # the host plays
        await server.commentator("game:chess", "I did move: e2e4 opens the centre")
        stored = await cast.host.history.recent("game:chess", 5)
    finally:
        await cast.close(0)
    assert [(m.role, m.speaker_name) for m in stored] == [("user", "chess"), ("assistant", "Kai")]
    assert "sarcastic co-host" in llm.prompts[0][0]["content"]


class StandInBot:
    """A co-host's own logged-in bot, as discord.py's Client: it sees the same channel under its own connection."""

    def __init__(self, channel_id: int) -> None:
        from tests.adapters.discord.fakes import Channel, Guild

        self.channel = Channel(channel_id, Guild())

    def get_channel(self, channel_id: int):
        return self.channel if channel_id == self.channel.id else None


async def test_a_co_host_with_her_own_discord_bot_posts_her_lines_herself(tmp_path, fake_openai, settings_for):
    """@-mentioning Kai's bot addresses Kai: the host's bot hears it, and Kai's line is posted by Kai's bot, unprefixed."""
    from companion.adapters.discord.bot import DiscordAdapter
    from companion.app import build_group
    from tests.adapters.discord.fakes import Channel, Guild, Message, User

    settings = settings_for(fake_openai)
    settings.characters = group_settings(tmp_path).characters
    settings.group.banter = 0
    settings.discord.debounce_seconds = 0.05
    cast = build_group(settings)
    await cast.start()
    adapter = DiscordAdapter(cast.host, cast.host.settings, bot_user_id=1, cast=cast)
    kai_bot, kai_user = StandInBot(42), User(77, "Kai", bot=True)
    adapter.bots["Kai"], adapter.bot_names[kai_user.id] = kai_bot, "Kai"
    channel = Channel(42, Guild())
    asked = Message(User(5, "Alice"), "<@77> what's your favourite game?", channel, mentions=[kai_user])
    try:
        await adapter.on_message(asked)
        await eventually(lambda: adapter.answered == 1, timeout=10, what="Kai's answer")
        await adapter.on_message(Message(kai_user, "Hello there!", channel))  # her own post: never answered
        assert not adapter._pending and not adapter._timers  # noqa: SLF001 - not even queued for an answer
    finally:
        await adapter.close()
        await cast.close(0)
    assert channel.sent == []  # the host's bot said nothing itself
    assert [text for text, _ in kai_bot.channel.sent] == ["Hello there! It is lovely to see you again, friend. How was your day?"]
    assert kai_bot.channel.references == [asked]  # a reply to Alice's message
    assert "Kai what's your favourite game?" in fake_openai.requests[0]["messages"][-1]["content"]  # @Kai named him
    assert adapter.answered == 1


@pytest.mark.slow
async def test_two_characters_on_the_embedded_model_talk_like_two_people(tmp_path):
    """On the embedded model and the defaults: every message is answered, never with the other's lines written for
    her, at most one defect a listener would notice in the exchange, and the co-host keeps it short."""
    from companion.app import build_group
    from companion.text.review import review_reply

    settings = Settings()
    settings.companion.data_dir = str(tmp_path / "data")
    settings.characters = group_settings(tmp_path).characters
    settings.group.banter = 0
    cast = build_group(settings)
    await cast.start()
    spoken: list[Line] = []
    answers: list[list[Line]] = []
    try:
        for text in ("Luna and Kai, which of you is better at chess?", "Kai, what do you do for fun?", "Luna, any plans for tonight?"):
            answers.append(await cast.respond(text, conversation_id="sam", speaker_id="sam", speaker_name="Sam"))
            spoken += answers[-1]
    finally:
        await cast.close(0)
    shown = "\n".join(f"- {line.character}: {line.text!r}" for line in spoken)
    # the tiny model sometimes has nothing new to say (all of it a repeat, left out): then that one is silent and
    # the message is still answered by someone
    assert len(answers) == 3 and all(answers), shown
    problems: dict[str, int] = {}
    for i, line in enumerate(spoken):
        assert line.result.error is None, shown
        earlier = [x.text for x in spoken[:i] if x.character == line.character][-3:]
        review = review_reply(line.result.reply, [s.speech for s in line.result.sentences], earlier, line.character)
        for key, value in review.counts().items():
            problems[key] = problems.get(key, 0) + value
        other = "Kai" if line.character == "Luna" else "Luna"
        assert f"{other}:" not in line.text, shown  # never the other's line, written for her
    # at most one thing a listener would notice in the whole exchange: the 135M model reads a group's prompt less
    # surely than a one-to-one chat (a markdown label taken for a script line, once in a few runs)
    assert sum(v for k, v in problems.items() if k != "copied") <= 1, shown
    assert all(len(line.text) <= 350 for line in spoken if line.character == "Kai"), shown  # his 60-token budget


async def test_when_chat_is_quiet_one_starts_something_and_another_answers(tmp_path):
    """A quiet stream: one character speaks up by herself and the other may answer her, within [group] banter."""
    from companion.stream.chat import StreamChat

    llm = ScriptedLLM(["Chat, who here likes chess? Kai thinks he is good.", "I am good, Luna."])
    cast = cast_on(group_settings(tmp_path, banter=1, luna_talk="1.0", kai_talk="0.0"), llm)  # Luna starts; Kai only when named
    await cast.start()
    try:
        chat = StreamChat(cast.host, cast.host.settings, cast=cast)
        await chat._speak_up()  # noqa: SLF001 - what run() does after [stream] speak_up_after seconds of silence
        stored = await cast.host.history.recent("stream:twitch", 10)
    finally:
        await cast.close(0)
    assert [m.speaker_name for m in stored] == ["Director", "Luna", "Kai"]


async def test_talking_over_the_group_stops_the_speaker_and_the_lines_still_to_come(tmp_path):
    """By voice the group answers (both named: Luna, then Kai); talking over Luna stops her, and Kai's line never starts."""
    from companion.testing import VirtualClock, feed_virtual
    from companion.voice.pipeline import VoicePipeline
    from companion.voice.playback import PacedOutput, PlaybackBuffer
    from companion.voice.policy import BargeIn
    from companion.voice.sources import QueueSource
    from companion.voice.vad import SileroVAD
    from tests.voice.conftest import speech_16k
    from tests.voice.test_pipeline import REPLY, ListSTT, ToneTTS, settle, silence

    clock = VirtualClock()
    llm = ScriptedLLM(["Hi there.", "Hey.", REPLY, "Okay, I will stop."], token_delay=0.01, sleep=clock.sleep)
    cast = cast_on(group_settings(tmp_path, banter=0, luna_talk="1.0", kai_talk="0.0"), llm)
    await cast.start()
    buffer = PlaybackBuffer(16000, clock=clock)
    output = PacedOutput(buffer, realtime=True, clock=clock, sleep=clock.sleep)
    output.start()
    stt = ListSTT(["Luna and Kai, hello.", "Luna and Kai, who is better at chess?", "Wait, stop."])
    pipeline = VoicePipeline(cast.host, vad=SileroVAD(), stt=stt, tts=ToneTTS(), buffer=buffer, barge_in=BargeIn("on"), clock=clock, cast=cast)
    stt.pipeline, stt.clock = pipeline, clock
    source = QueueSource()
    run = asyncio.create_task(pipeline.run(source))
    try:
        hello = speech_16k("Luna and Kai, hello", tmp_path, "h")
        await feed_virtual(source, np.concatenate([silence(0.3), hello, silence(0.5)]), clock)
        await settle(clock, lambda: len(pipeline.turns) >= 1 and len(llm.prompts) >= 2 and not pipeline.speaking(), source=source)
        buffer.first_play_at = None
        question = speech_16k("Luna and Kai, who is better at chess", tmp_path, "q")
        await feed_virtual(source, np.concatenate([silence(0.3), question, silence(0.5)]), clock)
        await settle(clock, lambda: buffer.first_play_at is not None, source=source)
        await feed_virtual(source, silence(1.5), clock)
        await feed_virtual(source, np.concatenate([speech_16k("Wait, stop", tmp_path, "i"), silence(0.6)]), clock)
        await settle(clock, lambda: len(pipeline.turns) >= 3 and not pipeline.speaking(), source=source)
        source.close()
        await settle(clock, run.done)
        stored = await cast.host.history.recent("voice", 10)
    finally:
        await output.close()
        await cast.close(0)
    said = [(m.role, m.speaker_name, m.interrupted) for m in stored]
    assert said[:3] == [("user", "User", False), ("assistant", "Luna", False), ("assistant", "Kai", False)], said
    # then Luna was cut off and Kai's line for the chess question never came: the next thing is the person again
    assert said[3:6] == [("user", "User", False), ("assistant", "Luna", True), ("user", "User", False)], said
    # hello (both), chess (Luna only), then already "Wait, stop.": nobody was asked to go on about chess
    assert "Wait, stop." in str(llm.prompts[3][-1]["content"]), said


async def test_a_character_with_nothing_to_add_is_silent_and_the_next_still_answers(tmp_path):
    """A reply that came out empty is no line at all (no empty message); the next character named answers the person."""
    lines, stored, llm = await ask_both_about_chess(tmp_path, ["", "Kai here, and I am better."])
    assert [(line.character, line.text) for line in lines] == [("Kai", "Kai here, and I am better.")]
    assert [(m.role, m.speaker_name) for m in stored] == [("user", "Sam"), ("assistant", "Kai")]
    assert llm.prompts[1][-1]["content"].endswith("Luna and Kai, which of you is better at chess?")  # Sam's, once
    assert sum("which of you" in str(m["content"]) for m in llm.prompts[1]) == 1


async def test_a_message_answered_after_a_line_cut_off_is_in_the_prompt_once(tmp_path):
    """The person talked over Kai; Luna answers the person: her prompt has their words once, not once as history and
    once as the new message (a cut-off line had come after them in the history)."""
    llm = ScriptedLLM(["Okay, stopping."])
    cast = cast_on(group_settings(tmp_path), llm)
    await cast.start()
    try:
        history = cast.host.history
        await history.add("default", "user", "Wait, stop.", speaker_id="local", speaker_name="Sam")
        await history.add("default", "assistant", "Actually Luna, you", speaker_id="local", speaker_name="Kai", interrupted=True)
        handle = cast.companions["Luna"].reply(
            "Wait, stop.", speaker_name="Sam", others=["Kai"], answering="Sam",
        )
        await handle.wait()
    finally:
        await cast.close(0)
    prompt = " ".join(str(m["content"]) for m in llm.prompts[0][1:])
    assert prompt.count("Wait, stop.") == 1, llm.prompts[0]
    assert "Actually Luna, you" in prompt  # the cut-off line is still history
