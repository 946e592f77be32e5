"""Where she lives besides this PC: [games] (Neuro game API), [minecraft], [discord], [stream] (Twitch, YouTube)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from companion.config.base import _Section


class GamesSection(_Section):
    enabled: bool = Field(False, description="Host the Neuro game API server so games can connect (`companion run`).")
    host: str = Field("127.0.0.1", description="Address to listen on. Anything but loopback requires a token.")
    port: int = Field(
        8000, ge=0, le=65535, description="Port; games find it through NEURO_SDK_WS_URL=ws://127.0.0.1:8000"
    )
    token: SecretStr | None = Field(
        None, description="Token games must send as ?token= in NEURO_SDK_WS_URL; prefer token_env."
    )
    token_env: str = Field("COMPANION_GAMES_TOKEN", description="Environment variable read for the games token.")
    max_connections: int = Field(32, ge=1, description="Game connections served at once; more are refused.")
    result_timeout: float = Field(20.0, gt=0, description="Seconds to wait for a game's action/result.")
    decision_timeout: float = Field(15.0, gt=0, description="Seconds the LLM may take to choose before a fallback choice.")
    decision_attempts: int = Field(3, ge=1, le=10, description="LLM answers tried before a generated valid choice.")
    action_retries: int = Field(2, ge=0, le=10, description="New choices after a game reports success: false.")
    chattiness: float = Field(
        0.3, ge=0, le=1, description="Share of game events (non-silent context, results) the companion comments on."
    )
    max_frame_bytes: int = Field(1_048_576, ge=1024, description="Largest websocket frame accepted from a game.")
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Browser origins allowed to connect as a game (e.g. \"http://localhost:5173\" for a web game). "
        "Native games send no Origin; any other web page is refused.",
    )


class MinecraftSection(_Section):
    enabled: bool = Field(False, description="Join a Minecraft server with `companion run` (needs Node.js 18+; `scripts/setup.sh minecraft`).")
    host: str = Field("127.0.0.1", description="The Minecraft server (Java edition, offline mode or a LAN world opened to LAN).")
    port: int = Field(25565, ge=1, le=65535, description="Its port (a LAN world shows it in chat when opened to LAN).")
    username: str = Field("Mika", min_length=3, max_length=16, description="The bot's player name.")
    version: str = Field("", description='Minecraft version, e.g. "1.20.4" (empty: ask the server).')
    owner: str = Field("", description="Your Minecraft player name: your chat counts as the owner's (owner-only skills).")
    autonomy: Literal["off", "when_asked", "always"] = Field(
        "when_asked", description='"off": only talk; "when_asked": carry out requests in chat ("get some wood"); '
        '"always": also keep busy when idle (fight nearby mobs, eat, follow the owner).',
    )
    chat_replies: bool = Field(True, description="Answer in the game chat (besides speaking, when voice is on).")
    chattiness: float = Field(0.3, ge=0, le=1, description="Share of game events (damage, night, items, players joining) she comments on.")
    radius: float = Field(64.0, gt=0, description="How far from where she spawned she may go, in blocks.")
    protect_spawn: float = Field(10.0, ge=0, description="Blocks closer than this to spawn are broken for the owner only (0: no protection).")
    node: str = Field("node", description="The Node.js executable.")


class DiscordSection(_Section):
    enabled: bool = Field(False, description="Run the Discord bot (`companion run`); the token comes from token_env.")
    token: SecretStr | None = Field(None, description="Bot token; prefer the environment variable named by token_env.")
    token_env: str = Field("DISCORD_TOKEN", description="Environment variable read for the bot token.")
    channels: list[int] = Field(default_factory=list, description="Channel ids where every message is answered (not only mentions).")
    answer_dms: bool = Field(True, description="Answer direct messages.")
    allow_bots: bool = Field(False, description="Answer messages from other bots too.")
    blocked_users: list[int] = Field(default_factory=list, description="User ids the companion ignores.")
    ping_users: bool = Field(False, description="Let replies mention (ping) users; @everyone and roles are never pinged.")
    debounce_seconds: float = Field(1.5, ge=0, le=30, description="Quick messages in a row within this time get one answer.")
    user_messages_per_minute: int = Field(6, ge=1, description="Answers per user per minute; more are ignored (spam).")
    channel_messages_per_minute: int = Field(20, ge=1, description="Answers per channel per minute.")
    reactions: bool = Field(True, description="Turn emotion tags into emoji reactions (else they are just removed).")
    speak_in_voice: bool = Field(True, description="After /join, speak replies in the voice channel.")
    experimental_voice_receive: bool = Field(
        False, description="Listen in voice channels (discord-ext-voice-recv + DAVE decrypt shim; experimental, see README)."
    )


class TwitchSection(_Section):
    enabled: bool = Field(False, description="Read Twitch chat and events through EventSub (`companion run`).")
    channel: str = Field("", description="Broadcaster login whose chat is read.")
    client_id: str = Field("", description="Your Twitch application's client id (dev.twitch.tv/console).")
    client_secret_env: str = Field("TWITCH_CLIENT_SECRET", description="Environment variable with the application's client secret.")
    post_replies: bool = Field(False, description="Also write the companion's answers into chat.")
    eventsub_url: str = Field("wss://eventsub.wss.twitch.tv/ws", description="EventSub websocket (changed only for tests).")
    api_url: str = Field("https://api.twitch.tv/helix", description="Helix API (changed only for tests).")
    auth_url: str = Field("https://id.twitch.tv/oauth2", description="OAuth endpoint (changed only for tests).")


class YouTubeSection(_Section):
    enabled: bool = Field(False, description="Read YouTube live chat through the Data API (`companion run`).")
    video_id: str = Field("", description="The live stream's video id (its live chat is found from it).")
    api_key_env: str = Field("YOUTUBE_API_KEY", description="Environment variable with a Data API key (read-only chat).")
    api_url: str = Field("https://www.googleapis.com/youtube/v3", description="Data API (changed only for tests).")


class StreamSection(_Section):
    blocked_terms: list[str] = Field(
        default_factory=list,
        description="Words never said, posted or answered (matched through case, leetspeak, spacing, look-alike letters).",
    )
    blocked_users: list[str] = Field(default_factory=list, description="Chat user ids or names that are ignored.")
    replacement: str = Field("Let's talk about something else.", description="Said instead of a sentence that hits the blocklist.")
    user_messages_per_minute: int = Field(10, ge=1, description="Chat messages taken from one user per minute.")
    speak_up_after: float = Field(90.0, ge=0, description="Seconds of silence after which the companion starts a topic itself (0: never).")
    speak_up_per_hour: int = Field(20, ge=0, description="At most this many unprompted remarks per hour.")
    quiet: bool = Field(False, description="Quiet mode: never speak up unprompted.")
    max_age: float = Field(45.0, gt=0, description="Chat messages not answered within this many seconds expire.")
    weights: dict[str, float] = Field(
        default_factory=dict, description="Ranking weights: mention, question, paid, event, regular, fairness, freshness."
    )
    twitch: TwitchSection = Field(default_factory=TwitchSection)
    youtube: YouTubeSection = Field(default_factory=YouTubeSection)
