"""The Discord adapter's behaviour with fake discord.py objects and a local OpenAI-compatible server."""

import asyncio

import numpy as np
import pytest

from companion.adapters.discord.audio import FRAME_BYTES, FRAME_SAMPLES, BufferAudioSource, VoiceBuffer
from companion.adapters.discord.bot import CANNOT_LISTEN, DiscordAdapter
from companion.app import build_companion
from companion.testing import eventually
from companion.voice.playback import PlaybackBuffer
from tests.adapters.discord.fakes import Attachment, Channel, Guild, Interaction, Message, PacedVoiceClient, Reference, User

BOT = User(1, "Mika", bot=True)
ALICE = User(5, "Alice")
BOB = User(6, "Bob")


@pytest.fixture
async def adapter(settings_for, fake_openai):
    settings = settings_for(fake_openai)
    settings.discord.debounce_seconds = 0.05
    settings.discord.channels = [99]
    comp = build_companion(settings)
    await comp.start()
    a = DiscordAdapter(comp, settings, bot_user_id=BOT.id)
    yield a
    await a.close()
    await comp.close()


async def settle(adapter: DiscordAdapter) -> None:
    """Until every burst of messages was answered (the debounce timers ran out)."""
    await eventually(lambda: not adapter._pending and all(t.done() for t in adapter._timers.values()), what="the answers")  # noqa: SLF001


async def test_answers_mentions_replies_dms_and_designated_channels_only(adapter, fake_openai):
    """Mention, reply, DM and channel 99 get answers; plain chatter and other bots do not."""
    general = Channel(10, Guild())
    designated = Channel(99, Guild())
    dm = Channel(50, None)
    bot_said = Message(BOT, "earlier", general)
    cases = [
        Message(ALICE, "<@1> hello!", general, mentions=[BOT]),
        Message(ALICE, "and you?", general, reference=Reference(bot_said)),
        Message(ALICE, "hi in dm", dm),
        Message(BOB, "anyone here?", designated),
        Message(ALICE, "just chatting with Bob", Channel(11, Guild())),
        Message(User(7, "OtherBot", bot=True), "<@1> beep", general, mentions=[BOT]),
    ]
    for message in cases:
        await adapter.on_message(message)
        await settle(adapter)
    assert len(general.sent) == 2 and len(dm.sent) == 1 and len(designated.sent) == 1
    assert adapter.answered == 4
    assert general.typing_count == 2
    assert "<@1>" not in fake_openai.requests[0]["messages"][-1]["content"]


async def test_context_per_channel_and_identity_per_user(adapter):
    """Each channel is its own conversation; each user is their own speaker."""
    a, b = Channel(20, Guild()), Channel(21, Guild())
    await adapter.on_message(Message(ALICE, "<@1> I like tea", a, mentions=[BOT]))
    await adapter.on_message(Message(BOB, "<@1> I like coffee", b, mentions=[BOT]))
    await settle(adapter)
    hist_a = await adapter.companion.history.recent("discord:20", 10)
    hist_b = await adapter.companion.history.recent("discord:21", 10)
    assert [(m.speaker_id, m.content) for m in hist_a if m.role == "user"] == [("discord:5", "I like tea")]
    assert [(m.speaker_id, m.content) for m in hist_b if m.role == "user"] == [("discord:6", "I like coffee")]


async def test_quick_messages_get_one_answer(adapter, fake_openai):
    """Three messages in a burst are answered once, with all three in the prompt."""
    ch = Channel(99, Guild())
    for text in ("wait", "I have a question", "what is your favourite colour?"):
        await adapter.on_message(Message(ALICE, text, ch))
        await asyncio.sleep(0)  # within the debounce window, as a quick typist
    await settle(adapter)
    assert len(fake_openai.requests) == 1 and len(ch.sent) == 1
    assert fake_openai.requests[0]["messages"][-1]["content"] == "wait\nI have a question\nwhat is your favourite colour?"


async def test_rate_limit_per_user(adapter):
    """A user flooding a channel gets at most user_messages_per_minute answers."""
    adapter.settings.discord.debounce_seconds = 0
    ch = Channel(99, Guild())
    for i in range(10):
        await adapter.on_message(Message(ALICE, f"spam {i}", ch))
        await settle(adapter)
    assert adapter.answered == adapter.settings.discord.user_messages_per_minute


async def test_long_replies_are_split_and_nobody_is_pinged(adapter, fake_openai):
    """A 5000-character reply arrives as messages under 2000 chars; mentions are disabled."""
    fake_openai.reply = " ".join(f"Sentence {i} contains extraordinarily lengthy placeholder verbiage." for i in range(100))  # no 6 words twice
    ch = Channel(99, Guild())
    await adapter.on_message(Message(ALICE, "tell me everything @everyone", ch))
    await settle(adapter)
    assert len(ch.sent) >= 3 and all(len(t) <= 2000 for t, _ in ch.sent)
    allowed = ch.sent[0][1]
    assert allowed.everyone is False and allowed.roles is False and allowed.users is False and allowed.replied_user is False


async def test_images_reach_the_llm_and_emotions_become_reactions(adapter, fake_openai):
    """An attached picture is an image part in the LLM request; [happy] becomes a reaction, not text."""
    fake_openai.reply = "[happy] What a cute cat!"
    ch = Channel(99, Guild())
    msg = Message(ALICE, "look!", ch, attachments=[Attachment("https://cdn.example/cat.png"), Attachment("https://cdn.example/a.txt", "text/plain")])
    await adapter.on_message(msg)
    await settle(adapter)
    parts = fake_openai.requests[0]["messages"][-1]["content"]
    assert [p["image_url"]["url"] for p in parts if p["type"] == "image_url"] == ["https://cdn.example/cat.png"]
    assert ch.sent[0][0] == "What a cute cat!" and msg.reactions == ["😊"]


async def test_slash_commands(adapter, fake_openai):
    """/ask answers through followups, /persona shows the card, /join needs a voice channel, /forget forgets."""
    ch = Channel(30, Guild(7))
    ask = Interaction(ALICE, ch, Guild(7))
    await adapter.cmd_ask(ask, "How are you?")
    assert ask.response.deferred and ask.followup.messages
    persona = Interaction(ALICE, ch, Guild(7))
    await adapter.cmd_persona(persona)
    assert adapter.companion.character.name in persona.response.messages[0][0]
    join = Interaction(ALICE, ch, Guild(7))
    await adapter.cmd_join(join)
    assert "voice channel first" in join.response.messages[0][0]
    forget = Interaction(ALICE, ch, Guild(7))
    await adapter.cmd_forget(forget)
    assert await adapter.companion.history.by_speaker("discord:5") == []
    assert forget.response.messages[0][1] is True  # ephemeral
    mute = Interaction(ALICE, ch, Guild(7))
    await adapter.cmd_mute(mute)
    assert "not in a voice channel" in mute.response.messages[0][0]
    assert "cannot listen" in CANNOT_LISTEN


def test_voice_source_gives_20ms_48k_stereo_frames():
    """TTS audio at 22.05 kHz comes out as 3840-byte stereo frames at 48 kHz, then the source ends."""
    buffer = PlaybackBuffer(48_000)
    t = np.arange(22050) / 22050
    buffer.push(0, "hello", (np.sin(2 * np.pi * 300 * t) * 0.5).astype(np.float32), 22050, final=True)
    source = BufferAudioSource(buffer)
    source.finish()
    frames = []
    while frame := source.read():
        frames.append(frame)
    assert all(len(f) == FRAME_BYTES for f in frames)
    assert len(frames) == 50  # one second
    pcm = np.frombuffer(frames[10], dtype="<i2").reshape(-1, 2)
    assert pcm.shape == (FRAME_SAMPLES, 2) and np.array_equal(pcm[:, 0], pcm[:, 1]) and np.abs(pcm).max() > 8000
    assert not source.is_opus()


class FakeVoiceClient:
    """Plays a source the way discord.py's player does: a 20 ms read, Opus-encoded, until an empty read."""

    def __init__(self) -> None:
        self.packets: list[bytes] = []
        self._task = None

    def is_connected(self) -> bool:
        return True

    def is_playing(self) -> bool:
        return self._task is not None and not self._task.done()

    def play(self, source) -> None:
        import discord.opus

        encoder = discord.opus.Encoder()

        async def player() -> None:
            while frame := source.read():
                self.packets.append(encoder.encode(frame, encoder.SAMPLES_PER_FRAME))
                await asyncio.sleep(0)

        self._task = asyncio.get_running_loop().create_task(player())

    async def disconnect(self, force: bool = False) -> None:
        pass


async def test_replies_are_spoken_in_voice_as_opus(adapter, tmp_path):
    """After /join, speak() streams TTS through the source; every frame Opus-encodes, and it decodes back to speech."""
    import discord.opus

    from companion.adapters.discord.bot import GuildVoice
    from tests.voice.conftest import espeak

    espeak("check", tmp_path / "check.wav")  # needs espeak-ng (CI installs it)
    adapter.settings.voice.tts.provider = "espeak"
    vc = FakeVoiceClient()
    await adapter.attach_voice(7, GuildVoice(vc, VoiceBuffer(48_000, level=adapter.companion.audio_level)))
    await adapter.speak(7, "[happy] Hello everyone in the voice channel. Nice to hear you!")
    assert len(vc.packets) > 50  # over a second of speech
    decoder = discord.opus.Decoder()
    pcm = np.concatenate([np.frombuffer(decoder.decode(p, fec=False), dtype="<i2") for p in vc.packets])
    assert np.abs(pcm).max() > 3000
    assert adapter.companion.audio_level.last_sound() > 0  # the avatar's mouth saw it too


async def test_voice_replies_stream_sentence_by_sentence_and_a_new_reply_interrupts(adapter, fake_openai, tmp_path):
    """In voice, the first sentence is heard before the model has finished the reply; a newer message cuts the old speech off."""
    import time

    from companion.adapters.discord.bot import GuildVoice
    from companion.runtime.events import TurnEnded
    from tests.voice.conftest import espeak

    espeak("check", tmp_path / "check.wav")
    adapter.settings.voice.tts.provider = "espeak"
    adapter.settings.discord.speak_in_voice = True
    fake_openai.reply = "Hello there, everyone. " + " ".join(f"This is sentence number {i} of a long answer." for i in range(8))
    fake_openai.token_delay = 0.04
    ended: list[float] = []
    adapter.companion.bus.subscribe(TurnEnded, lambda e: ended.append(time.monotonic()))
    vc = PacedVoiceClient()
    await adapter.attach_voice(1, GuildVoice(vc, VoiceBuffer(48_000, level=adapter.companion.audio_level)))
    general = Channel(10, Guild(1))
    await adapter.on_message(Message(ALICE, "<@1> tell me a long story", general, mentions=[BOT]))
    await eventually(lambda: bool(ended), timeout=15, what="the long reply being written")
    assert ended and vc.first_frame_at is not None and vc.first_frame_at < ended[0]  # heard before the reply was finished
    assert adapter.voice[1].buffer.busy  # still speaking the rest
    heard = len(vc.packets)
    fake_openai.reply = "Okay."
    fake_openai.token_delay = 0
    await adapter.on_message(Message(BOB, "<@1> stop, my turn", general, mentions=[BOT]))
    await settle(adapter)
    # "Okay." synthesised and played: its reply has ended, and the player stopped at the end of the audio
    await eventually(lambda: not adapter.companion.is_speaking() and not vc.is_playing(), timeout=10, what="the end of \"Okay.\"")
    # the long answer (over 8 s of speech) was cut: far fewer frames than it would have taken
    assert 0 < len(vc.packets) - heard < 150  # ...and "Okay." was said
    assert not vc.is_playing()  # idle again: the bot does not keep "speaking" silence between replies


async def test_listening_in_voice_plays_the_reply_and_ends_the_turn(adapter, fake_openai, tmp_path):
    """A scripted voice receiver: a user's speech is transcribed and answered, the answer is played, and the turn ends."""
    from companion.adapters.discord.bot import GuildVoice
    from companion.adapters.discord.receive import Listener
    from companion.runtime.events import VoiceTimings
    from companion.voice.audio import resample
    from tests.adapters.discord.fakes import User as FakeUser
    from tests.voice.conftest import speech_16k

    adapter.settings.voice.tts.provider = "espeak"
    adapter.settings.voice.stt.provider = "openai"  # the stand-in transcribes: no model load in this test
    fake_openai.reply = "It is sunny in Paris today."
    question = speech_16k("What is the weather like in Paris today", tmp_path)
    vc = PacedVoiceClient()
    entry = GuildVoice(vc, VoiceBuffer(48_000, level=adapter.companion.audio_level))
    await adapter.attach_voice(1, entry)
    listener = Listener(adapter.companion, adapter.settings, adapter.voice_models, vc, entry.buffer, Channel(77, Guild(1)))
    timings: list[VoiceTimings] = []
    adapter.companion.bus.subscribe(VoiceTimings, timings.append)
    alice = FakeUser(5, "Alice")
    pcm48 = resample(np.concatenate([np.zeros(4800, np.float32), question, np.zeros(24000, np.float32)]), 16000, 48000)
    for i in range(0, len(pcm48), 960):  # 20 ms packets, as Discord sends them, each taken before the next
        listener._feed(alice, pcm48[i : i + 960])  # noqa: SLF001
        source = listener.sources[alice.id]
        while source.pending():
            await asyncio.sleep(0)
    await eventually(lambda: bool(timings), timeout=20, what="the end of the spoken turn")
    await listener.close()
    assert timings, "the spoken turn never ended"
    assert vc.first_frame_at is not None and len(vc.packets) > 25  # the reply was played into the channel
    stored = await adapter.companion.history.recent("discord-voice:77", 5)
    assert [m.role for m in stored][-2:] == ["user", "assistant"] and stored[-2].speaker_id == "discord:5"
