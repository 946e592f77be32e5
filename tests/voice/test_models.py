"""One set of voice models per process."""

from companion.adapters.discord.bot import DiscordAdapter
from companion.adapters.web import WebChat
from companion.app import build_companion
from companion.voice.build import VoiceModels


async def test_web_and_discord_share_one_stt_and_one_tts_closed_by_their_owner(settings_for, fake_openai):
    """The browser voice and Discord get the same models, built once; closing an adapter leaves them to their owner."""
    settings = settings_for(fake_openai)
    settings.voice.tts.provider = "espeak"
    settings.voice.stt.provider = "openai"  # the stand-in: nothing to load
    models = VoiceModels(settings)
    comp = build_companion(settings)
    await comp.start()
    chat = WebChat(comp, settings, voice_models=models)
    discord = DiscordAdapter(comp, settings, voice_models=models)
    try:
        tts = await discord.voice_models.get_tts()
        stt, same_tts = await chat.voice_models.get()
        assert same_tts is tts and await models.get_stt() is stt
        assert models.builds == 2
    finally:
        await discord.close()
        assert models.tts is tts  # an adapter does not close what it was lent
        await models.close()
        await comp.close()
    assert models.tts is None
