"""The Discord adapter: answers messages, slash commands, speaks in voice channels.

The decisions (who is answered, debouncing, rate limits, splitting) are pure
logic in ``policy``; this module turns discord.py objects into those
decisions and the companion's replies back into messages, reactions and audio.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from companion.adapters.discord.audio import RATE, BufferAudioSource, VoiceBuffer
from companion.adapters.discord.policy import EMOJI_FOR, MessageFacts, RateLimiter, answer_reason, split_reply
from companion.core.speech import Voice, speak_text
from companion.runtime.events import AdapterStatus
from companion.voice.playback import PlaybackBuffer

if TYPE_CHECKING:
    from companion.config import Settings
    from companion.core.engine import Companion
    from companion.core.turn import TurnResult

log = logging.getLogger(__name__)

__all__ = ["DiscordAdapter", "run_discord"]

CANNOT_LISTEN = (
    "I can speak here, but I cannot listen in voice channels yet: Discord's end-to-end voice encryption (DAVE) "
    "is not supported by any released receive library. Talk to me in text and I will answer out loud."
)


def _allowed_mentions(ping_users: bool) -> Any:
    import discord

    return discord.AllowedMentions(everyone=False, roles=False, users=ping_users, replied_user=False)


@dataclass
class GuildVoice:
    """One guild's voice connection: its playback buffer and the conversations spoken there."""

    client: Any  # discord.VoiceClient
    buffer: PlaybackBuffer
    muted: bool = False
    wanted_channel: Any = None  # rejoin target after an unexpected disconnect
    listener: Any = None
    conversations: set[str] = field(default_factory=set)  # text channels (and the voice channel) whose replies are said here
    voice: Voice | None = None  # its entry in the companion's voice router
    remove: Callable[[], None] = lambda: None

    def __post_init__(self) -> None:
        if isinstance(self.buffer, VoiceBuffer):
            self.buffer.on_push = self.ensure_playing

    def ensure_playing(self) -> None:
        """Start Discord's player on the buffer if it is idle (it stops by itself 300 ms after the audio ends)."""
        if self.client.is_connected() and not self.client.is_playing():
            self.client.play(BufferAudioSource(self.buffer, linger_frames=15))


class DiscordAdapter:
    def __init__(
        self, companion: "Companion", settings: "Settings", *, bot_user_id: int = 0, voice_models: Any = None, cast: Any = None,
    ) -> None:
        self.companion = companion
        self.cast = cast  # [[characters]] (companion.group.Cast): the host's bot hears, each line is posted by...
        self.bots: dict[str, Any] = {}  # ...the co-host's own bot (a logged-in discord.Client) where she has one,
        self.bot_names: dict[int, str] = {}  # (their user ids: naming or answering one addresses that character)
        self.settings = settings
        self.cfg = settings.discord
        self.bot_user_id = bot_user_id
        self.user_limits = RateLimiter(self.cfg.user_messages_per_minute)
        self.channel_limits = RateLimiter(self.cfg.channel_messages_per_minute)
        self._pending: dict[int, list[Any]] = {}
        self._timers: dict[int, asyncio.Task[None]] = {}
        self.voice: dict[int, GuildVoice] = {}
        from companion.voice.build import VoiceModels

        self._own_models = voice_models is None
        self.voice_models = voice_models or VoiceModels(settings)  # shared with the other voices of the process
        self.answered = 0

    # -- text ------------------------------------------------------------------

    def facts(self, message: Any) -> MessageFacts:
        ref = getattr(message, "reference", None)
        resolved = getattr(ref, "resolved", None) if ref is not None else None
        replied_to = getattr(getattr(resolved, "author", None), "id", None)
        replies_to_bot = replied_to == self.bot_user_id or replied_to in self.bot_names
        channel = message.channel
        return MessageFacts(
            author_id=message.author.id,
            author_is_bot=bool(getattr(message.author, "bot", False)),
            is_self=message.author.id == self.bot_user_id or message.author.id in self.bot_names,
            is_dm=getattr(message, "guild", None) is None,
            mentions_bot=any(getattr(m, "id", None) in (self.bot_user_id, *self.bot_names) for m in getattr(message, "mentions", [])),
            replies_to_bot=replies_to_bot,
            channel_id=channel.id,
            text=message.content or "",
            has_images=bool(_images(message)),
        )

    async def on_message(self, message: Any) -> None:
        facts = self.facts(message)
        reason = answer_reason(
            facts, channels=set(self.cfg.channels), answer_dms=self.cfg.answer_dms, allow_bots=self.cfg.allow_bots,
            blocked=set(self.cfg.blocked_users),
        )
        if reason is None:
            return
        if not self.user_limits.allow(facts.author_id) or not self.channel_limits.allow(facts.channel_id):
            log.info("discord: rate limit: ignoring a message from %s in %s", facts.author_id, facts.channel_id)
            return
        self._pending.setdefault(facts.channel_id, []).append(message)
        timer = self._timers.get(facts.channel_id)
        if timer is not None and not timer.done():
            timer.cancel()  # another quick message: wait for the burst to end
        self._timers[facts.channel_id] = asyncio.create_task(self._flush_later(facts.channel_id))

    async def _flush_later(self, channel_id: int) -> None:
        await asyncio.sleep(self.cfg.debounce_seconds)
        messages = self._pending.pop(channel_id, [])
        try:
            if messages:
                await self.answer(messages)
        finally:
            if self._timers.get(channel_id) is asyncio.current_task():
                del self._timers[channel_id]  # one entry per channel with a burst in progress, not per channel ever seen

    def _clean(self, text: str) -> str:
        for bot_id, name in self.bot_names.items():  # @Kai's bot: the message names Kai
            text = re.sub(rf"<@!?{bot_id}>", name, text)
        return re.sub(rf"<@!?{self.bot_user_id}>", "", text).strip()

    async def answer(self, messages: list[Any]) -> None:
        last = messages[-1]
        authors = {m.author.id for m in messages}
        if len(authors) > 1:
            text = "\n".join(f"{m.author.display_name}: {self._clean(m.content)}" for m in messages if self._clean(m.content))
        else:
            text = "\n".join(self._clean(m.content) for m in messages if self._clean(m.content))
        images = [url for m in messages for url in _images(m)]  # providers without vision drop them, and log it
        channel = last.channel
        guild = getattr(last, "guild", None)
        conversation = f"discord:{channel.id}"
        voice = self.voice.get(guild.id) if guild is not None and self.cfg.speak_in_voice else None
        if voice is not None:
            voice.conversations.add(conversation)  # the router speaks this channel's replies in the voice channel
            self.companion.voices.interrupt(voice.buffer)  # a new reply replaces what she was still saying
        options: dict[str, Any] = {
            "conversation_id": conversation, "speaker_id": f"discord:{last.author.id}",
            "speaker_name": last.author.display_name, "platform": "discord", "images": images,
        }
        if self.cast is not None:
            async with channel.typing():
                await self.cast.respond(
                    text or "(sent an image)", on_line=lambda line: self._post_line(last, line), **options
                )
            return
        handle = self.companion.reply(text or "(sent an image)", **options)
        async with channel.typing():
            result = await handle.written()  # posted at once; the voice channel goes on speaking it
        await self._post(last, result)

    async def _post_line(self, last: Any, line: Any) -> None:
        """A group's line: by the character's own bot when she has one, else by this bot under her name."""
        bot = self.bots.get(line.character)
        if bot is None or not line.result.reply.strip():
            await self._post(last, line.result, f"**{line.character}**: ")
            return
        channel = bot.get_channel(last.channel.id) or await bot.fetch_channel(last.channel.id)
        allowed = _allowed_mentions(self.cfg.ping_users)
        for i, piece in enumerate(split_reply(line.result.reply)):
            await channel.send(piece, allowed_mentions=allowed, reference=last if i == 0 else None)
        self.answered += 1

    async def _post(self, last: Any, result: "TurnResult", prefix: str = "") -> None:
        """The reply to ``last`` in its channel, in pieces Discord accepts, with reactions for its emotions."""
        if not result.reply.strip():
            return  # nothing to post (a failure with no text, or everything left out as a repeat)
        channel = last.channel
        pieces = split_reply(prefix + result.reply)
        allowed = _allowed_mentions(self.cfg.ping_users)
        for i, piece in enumerate(pieces):
            if i == 0:
                await last.reply(piece, mention_author=False, allowed_mentions=allowed)
            else:
                await channel.send(piece, allowed_mentions=allowed)
        self.answered += 1
        if self.cfg.reactions:
            for emotion in dict.fromkeys(result.emotions):
                emoji = EMOJI_FOR.get(emotion)
                if emoji:
                    try:
                        await last.add_reaction(emoji)
                    except Exception:  # noqa: BLE001 - missing permission: not worth failing a reply
                        log.debug("discord: cannot react with %s", emoji)

    # -- slash commands (handlers take an Interaction; registered in `commands`) ---------------

    async def cmd_ask(self, interaction: Any, question: str) -> None:
        await interaction.response.defer(thinking=True)
        user = interaction.user
        result = await self.companion.respond(
            question, conversation_id=f"discord:{interaction.channel.id}", speaker_id=f"discord:{user.id}",
            speaker_name=user.display_name, platform="discord",
        )
        pieces = split_reply(result.reply) or ["…"]
        for piece in pieces:
            await interaction.followup.send(piece, allowed_mentions=_allowed_mentions(False))

    async def cmd_forget(self, interaction: Any) -> None:
        removed, said = await self.companion.forget_speaker(f"discord:{interaction.user.id}", platform="discord")
        await interaction.response.send_message(
            f"Done: I forgot {removed} memories about you and {said} of your messages.", ephemeral=True
        )

    async def cmd_persona(self, interaction: Any) -> None:
        character = self.companion.character
        about = (character.description or character.personality or "").strip()
        await interaction.response.send_message(f"**{character.name}**\n{about[:1800]}", ephemeral=True)

    async def cmd_join(self, interaction: Any) -> None:
        state = getattr(interaction.user, "voice", None)
        channel = getattr(state, "channel", None)
        if channel is None:
            await interaction.response.send_message("Join a voice channel first, then use /join.", ephemeral=True)
            return
        await interaction.response.defer(thinking=True)
        try:
            vc = await self._connect(channel)
        except Exception as exc:  # noqa: BLE001 - missing voice deps, permissions, timeouts
            await interaction.followup.send(f"I could not join {channel.name}: {exc}")
            return
        note = "" if self.cfg.experimental_voice_receive else f"\n{CANNOT_LISTEN}"
        await interaction.followup.send(f"Joined {channel.name}.{note}")
        del vc

    async def cmd_leave(self, interaction: Any) -> None:
        entry = self.voice.pop(interaction.guild.id, None) if interaction.guild else None
        if entry is None:
            await interaction.response.send_message("I am not in a voice channel here.", ephemeral=True)
            return
        entry.wanted_channel = None
        entry.remove()
        if entry.listener is not None:
            await entry.listener.close()
        await entry.client.disconnect(force=True)
        await interaction.response.send_message("Left the voice channel.")

    async def cmd_mute(self, interaction: Any) -> None:
        entry = self.voice.get(interaction.guild.id) if interaction.guild else None
        if entry is None:
            await interaction.response.send_message("I am not in a voice channel here.", ephemeral=True)
            return
        entry.muted = not entry.muted
        if entry.voice is not None:
            entry.voice.muted = entry.muted
        if entry.muted:
            self.companion.voices.interrupt(entry.buffer)
        await interaction.response.send_message("Muted: I will only write." if entry.muted else "Unmuted: I will speak again.")

    # -- voice ---------------------------------------------------------------------

    async def _connect(self, channel: Any) -> Any:
        import discord

        cls: Any = discord.VoiceClient
        if self.cfg.experimental_voice_receive:
            from companion.adapters.discord.receive import receive_client_class

            cls = receive_client_class()
        vc = await channel.connect(cls=cls, self_deaf=not self.cfg.experimental_voice_receive)
        buffer = VoiceBuffer(RATE, level=self.companion.audio_level)  # the avatar's mouth follows Discord speech too
        entry = GuildVoice(vc, buffer, wanted_channel=channel)
        entry.conversations.add(f"discord-voice:{channel.id}")
        await self.attach_voice(channel.guild.id, entry, name=channel.name)
        if self.cfg.experimental_voice_receive:
            from companion.adapters.discord.receive import start_listening

            entry.listener = await start_listening(
                self.companion, self.settings, self.voice_models, entry.client, entry.buffer, channel
            )
        self.companion.bus.publish(AdapterStatus("discord-voice", "connected", channel.name))
        return vc

    async def attach_voice(self, guild_id: int, entry: GuildVoice, name: str = "") -> None:
        """Speak in this guild's voice channel from now on: its replies, and what is said to the audience."""
        tts = await self.voice_models.get_tts()
        old = self.voice.get(guild_id)
        if old is not None:
            old.remove()
        entry.voice = Voice(f"discord:{name or guild_id}", entry.buffer, tts, owns=entry.conversations.__contains__,
                            broadcast=True, muted=entry.muted)
        entry.remove = self.companion.voices.add(entry.voice)
        self.voice[guild_id] = entry

    async def speak(self, guild_id: int, text: str) -> None:
        """Say ``text`` in the guild's voice channel, sentence by sentence, and return when it has been played."""
        entry = self.voice.get(guild_id)
        if entry is not None and entry.voice is not None and not entry.muted:
            await speak_text([entry.voice], text)

    async def on_voice_state_update(self, member: Any, before: Any, after: Any) -> None:
        """Rejoin when Discord drops our voice connection (not after /leave)."""
        if member.id != self.bot_user_id or after.channel is not None or before.channel is None:
            return
        entry = self.voice.pop(before.channel.guild.id, None)
        if entry is not None:
            entry.remove()
        if entry is None or entry.wanted_channel is None:
            return
        log.warning("discord: dropped from voice in %s; rejoining", before.channel.name)
        self.companion.bus.publish(AdapterStatus("discord-voice", "reconnecting", before.channel.name))
        for delay in (1, 2, 5, 10, 30):
            await asyncio.sleep(delay)
            try:
                await self._connect(entry.wanted_channel)
                return
            except Exception as exc:  # noqa: BLE001
                log.info("discord: rejoin failed (%s); retrying", exc)

    async def close(self) -> None:
        for entry in list(self.voice.values()):
            entry.wanted_channel = None
            entry.remove()
            if entry.listener is not None:
                await entry.listener.close()
            try:
                await entry.client.disconnect(force=True)
            except Exception:  # noqa: BLE001
                pass
        self.voice.clear()
        if self._own_models:
            await self.voice_models.close()


def _images(message: Any) -> list[str]:
    return [
        a.url for a in getattr(message, "attachments", [])
        if (getattr(a, "content_type", "") or "").startswith("image/")
    ]


def build_commands(adapter: DiscordAdapter) -> list[Any]:
    """The slash commands, bound to the adapter; admin-only ones need Manage Server."""
    import discord
    from discord import app_commands

    @app_commands.command(name="ask", description="Ask the companion something")
    @app_commands.describe(question="What do you want to ask?")
    async def ask(interaction: discord.Interaction, question: str) -> None:
        await adapter.cmd_ask(interaction, question)

    @app_commands.command(name="forget", description="Make the companion forget everything about you")
    async def forget(interaction: discord.Interaction) -> None:
        await adapter.cmd_forget(interaction)

    @app_commands.command(name="persona", description="Who is the companion?")
    async def persona(interaction: discord.Interaction) -> None:
        await adapter.cmd_persona(interaction)

    @app_commands.command(name="join", description="Join your voice channel and speak the replies there")
    @app_commands.guild_only()
    async def join(interaction: discord.Interaction) -> None:
        await adapter.cmd_join(interaction)

    @app_commands.command(name="leave", description="Leave the voice channel")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    async def leave(interaction: discord.Interaction) -> None:
        await adapter.cmd_leave(interaction)

    @app_commands.command(name="mute", description="Stop (or resume) speaking in voice")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    async def mute(interaction: discord.Interaction) -> None:
        await adapter.cmd_mute(interaction)

    return [ask, forget, persona, join, leave, mute]


async def run_discord(
    companion: "Companion", settings: "Settings", stop: asyncio.Event, voice_models: Any = None, cast: Any = None,
) -> None:
    """Run the bot until ``stop``; discord.py reconnects the gateway itself, we report status."""
    try:
        import discord
        from discord import app_commands
    except ImportError:
        log.error("discord is off: pip install 'companion[discord]'")
        return
    token = settings.discord_token()
    if not token:
        log.error("discord is off: no bot token; set %s (see README, Discord)", settings.discord.token_env)
        companion.bus.publish(AdapterStatus("discord", "error", "no bot token"))
        return
    intents = discord.Intents.default()
    intents.message_content = True  # privileged: enable "Message Content Intent" in the developer portal
    intents.voice_states = True
    client = discord.Client(intents=intents, allowed_mentions=_allowed_mentions(settings.discord.ping_users))
    tree = app_commands.CommandTree(client)
    adapter = DiscordAdapter(companion, settings, voice_models=voice_models, cast=cast)
    for command in build_commands(adapter):
        tree.add_command(command)

    @client.event
    async def on_ready() -> None:
        adapter.bot_user_id = client.user.id if client.user else 0
        try:
            await tree.sync()
        except discord.HTTPException as exc:
            log.warning("discord: slash commands not synced: %s", exc)
        companion.bus.publish(AdapterStatus("discord", "connected", str(client.user)))
        log.info("discord: logged in as %s", client.user)

    @client.event
    async def on_message(message: discord.Message) -> None:
        await adapter.on_message(message)

    @client.event
    async def on_voice_state_update(member: Any, before: Any, after: Any) -> None:
        await adapter.on_voice_state_update(member, before, after)

    runner = asyncio.create_task(client.start(token))
    co_hosts = _co_host_bots(discord, adapter, settings, cast)
    stopping = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait({runner, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if runner in done and runner.exception() is not None:
            exc = runner.exception()
            if isinstance(exc, discord.LoginFailure):
                log.error("discord: the bot token was rejected; create a new one in the developer portal")
            elif isinstance(exc, discord.PrivilegedIntentsRequired):
                log.error("discord: enable 'Message Content Intent' for the bot in the developer portal (README, Discord)")
            else:
                log.error("discord stopped: %s", exc)
            companion.bus.publish(AdapterStatus("discord", "error", type(exc).__name__))
    finally:
        stopping.cancel()
        await adapter.close()
        await client.close()
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        for bot, task in co_hosts:
            await bot.close()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def _co_host_bots(discord: Any, adapter: DiscordAdapter, settings: "Settings", cast: Any) -> list[tuple[Any, asyncio.Task[None]]]:
    """A group's co-hosts with a token of their own ([[characters]] discord_token_env) log in as their own bots.

    They only post their character's lines (the host's bot hears and decides); a token that is missing or
    refused leaves that character's lines to the host's bot, under her name, and is said once.
    """
    if cast is None:
        return []
    started = []
    for entry, name in zip(settings.characters, cast.names, strict=True):
        if not entry.discord_token_env or name == cast.host.character.display_name:
            continue
        token = os.environ.get(entry.discord_token_env, "")
        if not token:
            log.warning("discord: %s has no bot token in %s; the host's bot posts her lines", name, entry.discord_token_env)
            continue
        bot = discord.Client(intents=discord.Intents.default(), allowed_mentions=_allowed_mentions(settings.discord.ping_users))

        def ready(bot: Any = bot, name: str = name) -> Any:
            async def on_ready() -> None:
                adapter.bots[name] = bot
                adapter.bot_names[bot.user.id] = name
                log.info("discord: %s posts as %s", name, bot.user)

            return on_ready

        bot.event(ready())

        async def login(bot: Any = bot, token: str = token, name: str = name) -> None:
            try:
                await bot.start(token)
            except Exception as exc:  # noqa: BLE001 - her lines go on through the host's bot
                log.warning("discord: %s's bot could not log in (%s); the host's bot posts her lines", name, type(exc).__name__)
            adapter.bots.pop(name, None)

        started.append((bot, asyncio.create_task(login(), name=f"discord-{name}")))
    return started
