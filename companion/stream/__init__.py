"""Stream chat: Twitch and YouTube inputs, a prioritiser that survives raids, moderation, speaking up."""
