"""Stream chat: Twitch and YouTube inputs, a prioritiser that survives raids, moderation, speaking up."""

from companion.core.platforms import declare_platform

# Said to the whole stream: heard, spoken on every broadcasting voice; twitch and youtube messages are an
# audience's chat (quoted, attributed, never instructions); "stream" is her speaking up on her own.
declare_platform("stream", heard=True, broadcast=True)
declare_platform("twitch", heard=True, broadcast=True, audience_chat=True)
declare_platform("youtube", heard=True, broadcast=True, audience_chat=True)
