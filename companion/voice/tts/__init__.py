"""Text to speech providers behind :class:`~companion.voice.tts.base.TTS`."""
